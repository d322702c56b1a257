//! The index shape of a compiled problem, solved per instance from its flattened parameters.
//!
//! Python recognises the shape in cvxpy's canonical data (`indexlab.optimise.structure`):
//! weights `w` with bounds and group rows, auxiliaries defined by equality rows, a
//! diagonal-plus-low-rank objective, optionally an L1 turnover term and a tracking-error budget
//! (one second-order cone). Every matrix is constant; the bounds, the linear term and the
//! previous weights are affine maps of `theta` (`(B, n_theta)`, last entry the constant 1).
//! Here each instance goes, in one pass with no batch-sized intermediate arrays, from its row of
//! `theta` to the fast path's inputs ([`instance`]), through the capped-QP fast path (once,
//! or the exact penalty search of [`budget`] for a tracking-error budget), to the canonical
//! point and objective cvxpy's program would have ([`canonical`]).
//!
//! Instances are independent and solved in parallel, each worker reusing one scratch, results
//! collected in order: the output does not depend on the thread count.

mod batch;
mod bounds;
mod budget;
mod canonical;
mod check;
mod instance;
mod piece;
#[cfg(test)]
mod tests;
mod theta;

use super::csr::{check_constant_entry, Csr};
use super::fastpath::{SharedPrep, Status};
use crate::data_err;
use crate::error::{Error, Result};
pub use batch::{gather_rows, row_admitted, SignRule, ThetaBatch, ThetaPart};
use bounds::BoundSide;
use instance::{Model, Scratch};
use rayon::prelude::*;
use theta::ThetaMap;

/// Relative tolerance of the tracking-error budget certificate.
pub const BUDGET_RTOL: f64 = 1e-9;

/// `Σ = F Ω F' + diag(d)` over the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Risk {
    pub factors: usize,
    /// `F`, weights x factors, row-major.
    pub loadings: Vec<f64>,
    /// `Ω`, factors x factors.
    pub factor_cov: Vec<f64>,
    /// `d`, one per weight.
    pub specific_var: Vec<f64>,
}

/// One-weight bound rows: row `r` of `map` (over `theta`) bounds weight `weight[r]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundRows {
    pub map: Csr,
    pub weight: Vec<usize>,
}

/// Rows over several weights, `lo <= G w <= hi`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRows {
    /// `G`, rows x weights, row-major.
    pub matrix: Vec<f64>,
    pub lo: Csr,
    pub hi: Csr,
    /// Rows with no lower (upper) side: `-inf` (`+inf`) whatever the map gives.
    pub lo_inf: Vec<bool>,
    pub hi_inf: Vec<bool>,
}

/// L1 turnover `sum_j cost_j |w_j - prev_j(theta)|`, with cvxpy's epigraph variables
/// `x[cols[t]] = sigma[t] |w - prev|` of the weights `weights[t]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnoverRows {
    pub weights: Vec<usize>,
    pub cols: Vec<usize>,
    pub sigma: Vec<f64>,
    /// Per weight (0 where a weight has no turnover term).
    pub cost: Vec<f64>,
    /// Previous weights, one row per entry of `weights`.
    pub prev: Csr,
}

/// Auxiliary canonical variables `x[cols] = T w + E theta`.
#[derive(Debug, Clone, PartialEq)]
pub struct Auxiliaries {
    pub cols: Vec<usize>,
    pub from_weights: Csr,
    pub from_theta: Csr,
}

/// `||M w + m(theta)|| <= budget(theta)` with `M'M = Σ1 = F1 F1' + diag(d1)` and the
/// objective's Hessian `alpha Σ1` (`alpha = 0`: a linear objective).
#[derive(Debug, Clone, PartialEq)]
pub struct TeBudget {
    pub m: Csr,
    pub m_map: Csr,
    /// One row.
    pub budget: Csr,
    /// `Σ1`, its factor covariance the identity.
    pub risk: Risk,
    pub alpha: f64,
    /// cvxpy's variable `t` of `||.|| <= t <= budget` and the map of its value, if any (`None`
    /// map: no value is known, NaN).
    pub var: Option<(usize, Option<Csr>)>,
}

/// Everything Python found in the canonical data.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeSpec {
    /// Canonical variables.
    pub n: usize,
    pub n_theta: usize,
    /// The canonical column of each weight.
    pub weight_cols: Vec<usize>,
    pub lo: BoundRows,
    pub hi: Option<BoundRows>,
    /// The linear term `c'w` of the objective in the weights (the fast path's `-scores`).
    pub c: Csr,
    /// `None`: a linear objective.
    pub risk: Option<Risk>,
    pub groups: Option<GroupRows>,
    pub turnover: Option<TurnoverRows>,
    pub aux: Auxiliaries,
    /// The canonical objective `1/2 x'Px + q'x + offset`: `P` symmetric (`n x n`), `q_map`
    /// `n + 1` rows (the last one the offset).
    pub p: Csr,
    pub q_map: Csr,
    pub budget: Option<TeBudget>,
}

/// Outcome of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeStatus {
    Optimal,
    /// A tracking-error budget whose penalty search did not settle: the weights are the
    /// feasible end of its last bracket.
    OptimalInaccurate,
    Infeasible,
    SolverError,
}

impl ShapeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ShapeStatus::Optimal => "optimal",
            ShapeStatus::OptimalInaccurate => "optimal_inaccurate",
            ShapeStatus::Infeasible => "infeasible",
            ShapeStatus::SolverError => "solver_error",
        }
    }

    fn of(s: Status) -> Self {
        match s {
            Status::Optimal => ShapeStatus::Optimal,
            Status::Infeasible => ShapeStatus::Infeasible,
            Status::SolverError => ShapeStatus::SolverError,
        }
    }

    fn has_solution(&self) -> bool {
        matches!(self, ShapeStatus::Optimal | ShapeStatus::OptimalInaccurate)
    }
}

/// Per-instance results of [`IndexShape::solve_range_into`] (the canonical points go to the
/// caller's buffer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShapeStats {
    /// `1/2 x'Px + q'x + offset`, NaN without a solution.
    pub objective: Vec<f64>,
    pub status: Vec<ShapeStatus>,
    /// Active-set iterations, summed over the instance's fast-path solves.
    pub iterations: Vec<u32>,
    /// Weights not fixed by their bounds (`lo < hi`).
    pub held: Vec<u32>,
    /// With a tracking-error budget: the smallest budget the other constraints allow (NaN
    /// where no weights are feasible at all); empty without one.
    pub smallest_budget: Vec<f64>,
}

/// One instance's outcome.
struct InstanceOut {
    objective: f64,
    status: ShapeStatus,
    iterations: u32,
    held: u32,
    smallest_budget: f64,
}

/// A checked [`ShapeSpec`] with its risk models prepared for the fast path.
pub struct IndexShape {
    spec: ShapeSpec,
    prep: SharedPrep,
    linear_prep: SharedPrep,
    budget_prep: Option<SharedPrep>,
    /// `T'` of the auxiliaries and `M'` of the budget (rows per weight): products with a
    /// weight vector cost its nonzero weights only.
    aux_by_weight: Csr,
    m_by_weight: Option<Csr>,
    /// `g = M'm` of the budget when `m` reads no parameter (a constant benchmark): the same
    /// for every instance.
    budget_g: Option<Vec<f64>>,
    /// Canonical variables with a term in the objective (a row of `P` or of the `q` map).
    objective_vars: Vec<usize>,
    /// `P`'s diagonal when `P` is diagonal (the usual canonical form).
    p_diag: Option<Vec<f64>>,
    /// Whether the canonical point's weights, auxiliaries, turnover and budget variables are
    /// all its columns: then no column needs the NaN of an unknown value first.
    writes_every_column: bool,
    maps: Maps,
    /// Whether no lower bound reads a parameter: then rounding that crosses the bounds raises
    /// the upper bound (the lower one is the user's constant), else lowers the lower one.
    lo_constant: bool,
}

impl IndexShape {
    /// Check the spec's shapes and indices and prepare its risk models.
    pub fn new(spec: ShapeSpec) -> Result<Self> {
        check::spec(&spec)?;
        let prep = instance::prepare(&spec, spec.risk.as_ref())?;
        let linear_prep = instance::prepare(&spec, None)?;
        let budget_prep = match &spec.budget {
            Some(b) => Some(instance::prepare(&spec, Some(&b.risk))?),
            None => None,
        };
        let lo_constant = spec.lo.map.only_reads(spec.n_theta - 1);
        let objective_vars = (0..spec.n)
            .filter(|&r| !spec.p.row(r).0.is_empty() || !spec.q_map.row(r).0.is_empty())
            .collect();
        let p_diag = diagonal(&spec.p);
        let writes_every_column = written_columns(&spec).iter().all(|&w| w);
        let maps = Maps::of(&spec)?;
        let budget_g = spec
            .budget
            .as_ref()
            .and_then(|b| constant_g(b, spec.n_theta));
        Ok(Self {
            budget_g,
            p_diag,
            writes_every_column,
            maps,
            aux_by_weight: spec.aux.from_weights.transpose(),
            m_by_weight: spec.budget.as_ref().map(|b| b.m.transpose()),
            objective_vars,
            spec,
            prep,
            linear_prep,
            budget_prep,
            lo_constant,
        })
    }

    pub fn n(&self) -> usize {
        self.spec.n
    }

    pub fn n_theta(&self) -> usize {
        self.spec.n_theta
    }

    pub fn has_budget(&self) -> bool {
        self.spec.budget.is_some()
    }

    fn budget_prep(&self) -> Result<&SharedPrep> {
        self.budget_prep.as_ref().ok_or_else(no_budget)
    }

    /// Solve instances `[start, end)` of the batch `theta`, writing their canonical points to
    /// `x` (`(end - start) x n`); NaN rows where an instance has no solution. `theta_rows`
    /// (`(end - start) x n_theta`), when given, receives each instance's row of `theta` as it
    /// is read (a copy of the parameters for a later use of the solution, made by the
    /// workers that read them anyway).
    pub fn solve_range_into(
        &self,
        theta: &ThetaBatch,
        start: usize,
        end: usize,
        x: &mut [f64],
        theta_rows: Option<&mut [f64]>,
    ) -> Result<ShapeStats> {
        let (n, nt) = (self.spec.n, self.spec.n_theta);
        let batch = theta.batch(nt)?;
        let end = end.min(batch);
        let start = start.min(end);
        if x.len() != (end - start) * n {
            return data_err!(
                "x buffer has {} values, expected {} instances x {n} variables",
                x.len(),
                end - start
            );
        }
        // Instance `i` into its row of `x`, its row of theta read into `kept` when given.
        let one = |lent: &mut Lent, row: &mut [f64], i: usize, kept: Option<&mut [f64]>| {
            let s = lent.scratch();
            let out = match kept {
                Some(t) => theta
                    .row_into(i, t)
                    .and_then(|()| self.solve_one(t, row, s)),
                None => {
                    let mut buf = std::mem::take(&mut s.theta);
                    let out = theta
                        .row(i, nt, &mut buf)
                        .and_then(|t| self.solve_one(t, row, s));
                    s.theta = buf;
                    out
                }
            };
            out.map_err(|e| at_instance(e, i))
        };
        let rows = x.par_chunks_mut(n.max(1)).zip(start..end);
        let outs: Vec<Result<InstanceOut>> = match theta_rows {
            None => rows
                .map_init(Lent::take, |lent, (row, i)| one(lent, row, i, None))
                .collect(),
            Some(kept) => {
                if kept.len() != (end - start) * nt {
                    return data_err!(
                        "theta rows buffer has {} values, expected {} instances x {nt}",
                        kept.len(),
                        end - start
                    );
                }
                rows.zip(kept.par_chunks_mut(nt))
                    .map_init(Lent::take, |lent, ((row, i), t)| one(lent, row, i, Some(t)))
                    .collect()
            }
        };
        let mut stats = ShapeStats::default();
        for o in outs {
            let o = o?;
            stats.objective.push(o.objective);
            stats.status.push(o.status);
            stats.iterations.push(o.iterations);
            stats.held.push(o.held);
            if self.has_budget() {
                stats.smallest_budget.push(o.smallest_budget);
            }
        }
        Ok(stats)
    }

    /// One instance: its fast-path inputs, the solve, the canonical point.
    fn solve_one(&self, theta: &[f64], x: &mut [f64], s: &mut Scratch) -> Result<InstanceOut> {
        check_constant_entry(theta)?;
        let feasible = self.load(theta, s);
        let held = s.held();
        let (status, iterations, smallest_budget) = if !feasible {
            (ShapeStatus::Infeasible, 0, f64::NAN)
        } else if self.spec.budget.is_some() {
            self.solve_budget(theta, s)?
        } else {
            let (st, its) = self.solve_weights(s, Model::Objective, 1.0)?;
            (ShapeStatus::of(st), its, f64::NAN)
        };
        if !status.has_solution() {
            x.fill(f64::NAN);
            return Ok(InstanceOut {
                objective: f64::NAN,
                status,
                iterations,
                held,
                smallest_budget,
            });
        }
        self.write_canonical(theta, s, x);
        Ok(InstanceOut {
            objective: self.canonical_objective(theta, x),
            status,
            iterations,
            held,
            smallest_budget,
        })
    }
}

/// The spec's maps of `theta` in their evaluation form.
struct Maps {
    lo: BoundSide,
    hi: Option<BoundSide>,
    c: ThetaMap,
    glo: Option<ThetaMap>,
    ghi: Option<ThetaMap>,
    prev: Option<ThetaMap>,
    aux: ThetaMap,
    q: ThetaMap,
    /// The budget's `m`, the budget, and its variable's value.
    m: Option<ThetaMap>,
    budget: Option<ThetaMap>,
    var: Option<ThetaMap>,
}

impl Maps {
    fn of(s: &ShapeSpec) -> Result<Self> {
        let b = s.budget.as_ref();
        let nw = s.weight_cols.len();
        Ok(Maps {
            lo: BoundSide::of(&s.lo, nw, false)?,
            hi: s
                .hi
                .as_ref()
                .map(|h| BoundSide::of(h, nw, true))
                .transpose()?,
            c: ThetaMap::of(&s.c),
            glo: s.groups.as_ref().map(|g| ThetaMap::of(&g.lo)),
            ghi: s.groups.as_ref().map(|g| ThetaMap::of(&g.hi)),
            prev: s.turnover.as_ref().map(|t| ThetaMap::of(&t.prev)),
            aux: ThetaMap::of(&s.aux.from_theta),
            q: ThetaMap::of(&s.q_map),
            m: b.map(|b| ThetaMap::of(&b.m_map)),
            budget: b.map(|b| ThetaMap::of(&b.budget)),
            var: b
                .and_then(|b| b.var.as_ref())
                .and_then(|(_, m)| m.as_ref())
                .map(ThetaMap::of),
        })
    }
}

/// Per canonical column, whether [`IndexShape::write_canonical`] gives it a value.
fn written_columns(spec: &ShapeSpec) -> Vec<bool> {
    let mut written = vec![false; spec.n];
    let turnover = spec.turnover.iter().flat_map(|t| t.cols.iter());
    let budget = spec
        .budget
        .iter()
        .filter_map(|b| b.var.as_ref().map(|(v, _)| v));
    let columns = spec.weight_cols.iter().chain(&spec.aux.cols);
    for &c in columns.chain(turnover).chain(budget) {
        written[c] = true;
    }
    written
}

/// The diagonal of a square matrix that has no entry off it.
fn diagonal(p: &Csr) -> Option<Vec<f64>> {
    let mut d = vec![0.0; p.rows()];
    for (r, v) in d.iter_mut().enumerate() {
        let (idx, val) = p.row(r);
        for (&c, &x) in idx.iter().zip(val) {
            if c != r {
                return None;
            }
            *v += x;
        }
    }
    Some(d)
}

/// The budget's `g = M'm` when `m` is the same for every instance.
fn constant_g(b: &TeBudget, n_theta: usize) -> Option<Vec<f64>> {
    let constant = n_theta.checked_sub(1)?;
    if !b.m_map.only_reads(constant) {
        return None;
    }
    let mut unit = vec![0.0; n_theta];
    unit[constant] = 1.0;
    let mut m = Vec::new();
    ThetaMap::of(&b.m_map).eval_into(&unit, &mut m);
    let mut g = vec![0.0; b.m.cols()];
    b.m.add_transpose_mul(&m, &mut g);
    Some(g)
}

/// Asked for the tracking-error budget's parts in a problem without one (a bug).
fn no_budget() -> Error {
    Error::Solver("no tracking-error budget in this problem".into())
}

thread_local! {
    /// The buffers of this thread's last run of instances, lent to its next one: rayon gives
    /// each piece of a batch it splits off a fresh value, and a fresh scratch grows (allocates
    /// and zeroes) every buffer again on its first instance. What a solve reads of a scratch
    /// it sets first, so the results do not depend on what ran before.
    static SPARE: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

/// A scratch lent from this thread's [`SPARE`] (or a fresh one when it is out), given back when
/// dropped.
struct Lent(Option<Scratch>);

impl Lent {
    fn take() -> Self {
        Lent(Some(
            SPARE.with(|c| c.borrow_mut().take()).unwrap_or_default(),
        ))
    }

    fn scratch(&mut self) -> &mut Scratch {
        self.0.get_or_insert_with(Scratch::default)
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            // A thread already holding a spare keeps it; this one is freed.
            SPARE.with(|c| {
                c.borrow_mut().get_or_insert(s);
            });
        }
    }
}

/// A data error found on one instance names it (the fast path sees each instance alone).
fn at_instance(e: Error, i: usize) -> Error {
    match e {
        Error::Data(m) => Error::Data(format!("instance {i} of the batch: {m}")),
        other => other,
    }
}
