//! Exact batch solver for the capped-weight QP users hit constantly, with no conic solver:
//!
//! ```text
//! minimise   γ/2 (w - b)' Σ (w - b) - s'w + sum_j cost_j |w_j - prev_j|,   Σ = F Ω F' + diag(d)
//! subject to sum w = 1,  lo <= w <= hi,  glo <= G w <= ghi
//! ```
//!
//! which is `0.5 w'(γΣ)w - c'w + turnover + const` with `c = s + γ Σ b`. `γ = 0` is a linear
//! objective; the turnover term is optional.
//!
//! Per instance, names with `lo == hi` (a zero membership mask) are fixed and removed, so the
//! cost grows with the number of names an instance can hold, not with the universe
//! ([`reduce`]). A turnover kink `prev_j` at or outside a bound of its name is a constant slope
//! there and joins the linear term; one strictly inside `(lo_j, hi_j)` splits the name's range
//! into two segments, and both methods below treat the kink as one more place a variable can be
//! held at ([`place`]): the optimum is exact, not smoothed. Then:
//!
//! * positive definite instances (`γ > 0`, every held name with `d > 0`): safeguarded
//!   primal-dual active-set iterations ([`primal_dual`]). Each solves the KKT system of a
//!   working set, over the free names when they are at most `k`, else in factor form (`k +
//!   rows` unknowns, rank-one updates as names enter and leave); the start comes from the exact
//!   optimum of the diagonal model and one Jacobi sweep. They stop only when the KKT conditions
//!   hold to rounding, typically after 3-5 solves (one more with many kinks). If they do not
//!   settle (they cycle twice, or reach their iteration limit):
//! * the dense inertia-controlling primal active-set method ([`active_set`], via [`dense`]),
//!   started at the greedy fill "sort the segments by linear coefficient, fill to their ends
//!   until the weights sum to 1" (already the optimum of the linear case without groups). Group
//!   rows that the greedy start violates get a phase 1 (elastic slacks, minimise total
//!   violation); a positive phase-1 optimum proves infeasibility. This is also the path for
//!   `γ = 0` and for names with zero specific variance. With kinks it is the primal method on
//!   the split problem `w_j = lo_j + a_j + b_j` (`a_j` in `[0, prev_j - lo_j]` at `c_j + cost_j`,
//!   `b_j` in `[0, hi_j - prev_j]` at `c_j - cost_j`) without doubling the unknowns.
//!
//! Instances are independent and solved in parallel with rayon, each worker reusing one
//! scratch [`reduce::Workspace`], results collected in order, so the output does not depend on
//! the thread count.

mod active_set;
mod dense;
pub(crate) mod linalg;
mod place;
mod primal_dual;
mod problem;
mod reduce;
mod validate;

use crate::error::{Error, Result};
use linalg::{dot, for_each_difference};
use rayon::prelude::*;
use reduce::{Prepared, Workspace};

/// An argument given per name that may be shared by the batch or given per instance.
#[derive(Clone, Copy, Debug)]
pub enum PerInstance<'a> {
    /// One value for every name and instance.
    Scalar(f64),
    /// One row (length `len`) shared by every instance.
    Shared(&'a [f64]),
    /// One row per instance, row-major (`batch * len`).
    Rows(&'a [f64]),
}

impl PerInstance<'_> {
    fn get(&self, instance: usize, len: usize, j: usize) -> f64 {
        match self {
            PerInstance::Scalar(v) => *v,
            PerInstance::Shared(s) => s[j],
            PerInstance::Rows(s) => s[instance * len + j],
        }
    }

    /// The row of instance `i` (length `len`), borrowed when stored, else written to `buf`.
    fn row<'b>(&'b self, i: usize, len: usize, buf: &'b mut Vec<f64>) -> &'b [f64] {
        match self {
            PerInstance::Scalar(v) => {
                buf.clear();
                buf.resize(len, *v);
                buf
            }
            PerInstance::Shared(s) => s,
            PerInstance::Rows(s) => &s[i * len..(i + 1) * len],
        }
    }
}

/// The factor risk model `Σ = F Ω F' + diag(d)`, shared by the batch.
#[derive(Clone, Copy, Debug)]
pub struct RiskModel<'a> {
    /// Number of factors `k`.
    pub factors: usize,
    /// `F`, names x factors, row-major (`n * k`).
    pub loadings: &'a [f64],
    /// `Ω`, factors x factors, symmetric positive semidefinite.
    pub factor_cov: &'a [f64],
    /// `d`, the specific variances (`n`, >= 0).
    pub specific_var: &'a [f64],
}

/// Linear group constraints `glo <= G w <= ghi`, `G` shared by the batch.
#[derive(Clone, Copy, Debug)]
pub struct Groups<'a> {
    /// Number of group rows `m`.
    pub rows: usize,
    /// `G`, rows x names, row-major.
    pub matrix: &'a [f64],
    /// Lower bounds (`-inf` for none), per row.
    pub lo: PerInstance<'a>,
    /// Upper bounds (`+inf` for none), per row.
    pub hi: PerInstance<'a>,
}

/// The L1 turnover term `sum_j cost_j |w_j - prev_j|` of the objective.
#[derive(Clone, Copy, Debug)]
pub struct Turnover<'a> {
    /// `prev`, the weights turnover is measured from (finite), per name.
    pub prev: PerInstance<'a>,
    /// `cost`, the cost per unit of turnover (finite, >= 0), per name.
    pub cost: PerInstance<'a>,
}

/// A batch of capped-weight problems over one universe of `names`.
#[derive(Clone, Copy, Debug)]
pub struct CappedQp<'a> {
    pub batch: usize,
    pub names: usize,
    /// `s`, batch x names.
    pub scores: &'a [f64],
    /// `b`, the benchmark weights (optional; zero when absent).
    pub bench: Option<PerInstance<'a>>,
    /// Required when `gamma > 0`.
    pub risk: Option<RiskModel<'a>>,
    pub gamma: f64,
    pub lo: PerInstance<'a>,
    pub hi: PerInstance<'a>,
    pub groups: Option<Groups<'a>>,
    /// The optional turnover term.
    pub turnover: Option<Turnover<'a>>,
}

/// Outcome of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Optimal,
    Infeasible,
    /// The active-set method stopped without an optimum on this instance (a bug or an
    /// extremely ill-conditioned risk model); weights and objective are NaN, and the other
    /// instances of the batch are unaffected.
    SolverError,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Optimal => "optimal",
            Status::Infeasible => "infeasible",
            Status::SolverError => "solver_error",
        }
    }
}

/// Results in instance order; infeasible and solver-error instances hold NaN weights and
/// objective.
#[derive(Clone, Debug, PartialEq)]
pub struct FastBatch {
    /// batch x names, row-major.
    pub weights: Vec<f64>,
    /// `γ/2 (w-b)'Σ(w-b) - s'w + sum_j cost_j |w_j - prev_j|`, per instance.
    pub objective: Vec<f64>,
    pub status: Vec<Status>,
    pub iterations: Vec<u32>,
}

/// Slack on `sum(hi) >= 1` and on a phase-1 optimum before calling an instance infeasible.
const FEASIBILITY_TOL: f64 = 1e-10;

/// KKT solves the primal-dual iterations may take before the dense fallback: a few times what
/// they need on realistic instances, far below the cost of the fallback.
fn primal_dual_limit(n: usize, m: usize) -> u32 {
    (20 + n + m).min(200) as u32
}

/// One instance's outcome; its weights are written to the caller's row.
struct InstanceOut {
    status: Status,
    iterations: u32,
}

fn infeasible(w: &mut [f64], iterations: u32) -> InstanceOut {
    w.fill(f64::NAN);
    InstanceOut {
        status: Status::Infeasible,
        iterations,
    }
}

fn optimal(iterations: u32) -> InstanceOut {
    InstanceOut {
        status: Status::Optimal,
        iterations,
    }
}

/// One instance; a numerical failure of the method becomes [`Status::SolverError`] so that
/// it never takes down the batch (bad inputs are validated before and stay errors).
fn solve_or_flag(
    p: &CappedQp<'_>,
    prep: &Prepared,
    i: usize,
    w: &mut [f64],
    ws: &mut Workspace,
) -> Result<InstanceOut> {
    let flagged = |w: &mut [f64]| {
        w.fill(f64::NAN);
        Ok(InstanceOut {
            status: Status::SolverError,
            iterations: 0,
        })
    };
    match solve_one(p, prep, i, w, ws) {
        Err(Error::Solver(_)) => flagged(w),
        // A claimed optimum that breaks a constraint (found by tests/proptest_entry.rs: scores
        // near 1e20 next to a unit risk model lost every weight to rounding) is flagged, never
        // returned as a silent wrong answer.
        Ok(out) if out.status == Status::Optimal && !satisfies_constraints(p, i, w, &ws.held) => {
            flagged(w)
        }
        other => other,
    }
}

/// Whether instance `i`'s weights are finite, within their bounds and group bounds, and sum to
/// 1, each within a tolerance far above rounding and far below any visible error. Only the
/// `held` names can be nonzero: the others sit at their (validated) `lo == hi == 0`.
fn satisfies_constraints(p: &CappedQp<'_>, i: usize, w: &[f64], held: &[usize]) -> bool {
    const TOL: f64 = 1e-8;
    let n = p.names;
    let mut sum = 0.0;
    for &j in held {
        let (lo, hi, x) = (p.lo.get(i, n, j), p.hi.get(i, n, j), w[j]);
        // Written so that a NaN weight fails.
        let inside = x >= lo - TOL * lo.abs().max(1.0) && x <= hi + TOL * hi.abs().max(1.0);
        if !inside {
            return false;
        }
        sum += x;
    }
    // Absolute, not relative to the weights' size: weights of 1e24 that cancel to a sum of 0
    // (bounds far beyond any index) have no representable answer and must be flagged.
    if (sum - 1.0).abs() > TOL {
        return false;
    }
    let Some(g) = &p.groups else { return true };
    (0..g.rows).all(|row| {
        let coef = &g.matrix[row * n..(row + 1) * n];
        let (value, size) = held.iter().fold((0.0, 0.0), |(v, s), &j| {
            let t = coef[j] * w[j];
            (v + t, s + t.abs())
        });
        let tol = TOL * f64::max(size, 1.0);
        let (lo, hi) = (g.lo.get(i, g.rows, row), g.hi.get(i, g.rows, row));
        value >= lo - tol && value <= hi + tol
    })
}

/// One instance; its weights go to `w` (length `names`).
fn solve_one(
    p: &CappedQp<'_>,
    prep: &Prepared,
    i: usize,
    w: &mut [f64],
    ws: &mut Workspace,
) -> Result<InstanceOut> {
    // A warm start is asked for one solve at a time, and only fits the same free names; a
    // solve that does not settle on the primal-dual path leaves none for the next.
    let warm = std::mem::take(&mut ws.warm);
    if !ws.reduce(p, prep, i, w) {
        ws.last_free.clear();
        return Ok(infeasible(w, 0));
    }
    let warm = warm && ws.last_free == ws.free;
    ws.last_free.clear();
    let (nf, m) = (ws.qp.n, ws.qp.m);
    if nf == 0 {
        // Every name fixed, and their weights meet the budget (checked by `reduce`).
        return Ok(optimal(0));
    }
    let mut iterations = 0;
    let pd = ws.factor_form(p, prep);
    if pd {
        match ws
            .pd
            .solve(&ws.qp, &ws.factor, primal_dual_limit(nf, m), warm)
        {
            Ok(its) => {
                for (a, &j) in ws.free.iter().enumerate() {
                    w[j] = ws.pd.x[a];
                }
                ws.last_free.clone_from(&ws.free);
                return Ok(optimal(its));
            }
            Err(its) => iterations = its,
        }
    }
    // The last working set of the primal-dual iterations guides the dense method's start.
    let crash = pd.then(|| ws.pd.places());
    let Some((x, its)) = dense::solve(p, prep, i, (&ws.qp, &ws.free), crash)? else {
        return Ok(infeasible(w, iterations));
    };
    for (a, &j) in ws.free.iter().enumerate() {
        w[j] = x[a];
    }
    Ok(optimal(iterations + its))
}

/// The objective of an optimal instance in tracking-error form,
/// `γ/2 (w-b)'Σ(w-b) - s'w + sum_j cost_j |w_j - prev_j|`, over the whole universe (only the
/// names in `ws.held` can have a nonzero weight).
fn objective(p: &CappedQp<'_>, prep: &Prepared, i: usize, w: &[f64], ws: &mut Workspace) -> f64 {
    let n = p.names;
    let scores = &p.scores[i * n..(i + 1) * n];
    let mut obj = -ws.held.iter().map(|&j| scores[j] * w[j]).sum::<f64>();
    if let Some(r) = p.risk.filter(|_| p.gamma > 0.0) {
        // (w-b)'Σ(w-b) = |U'(w-b)|² + Σ d (w-b)², over the names where w or b is nonzero.
        let k = r.factors;
        let ue = &mut ws.scratch;
        ue.clear();
        ue.resize(k, 0.0);
        let mut spec = 0.0;
        let mut add = |j: usize, e: f64| {
            for (acc, &ua) in ue.iter_mut().zip(&prep.u[j * k..(j + 1) * k]) {
                *acc += ua * e;
            }
            spec += r.specific_var[j] * e * e;
        };
        match &p.bench {
            None => ws.held.iter().for_each(|&j| add(j, w[j])),
            Some(b) => for_each_difference(w, b.row(i, n, &mut ws.bench_buf), add),
        }
        obj += 0.5 * p.gamma * (dot(ue, ue) + spec);
    }
    if let Some(t) = &p.turnover {
        obj += (0..n)
            .map(|j| t.cost.get(i, n, j) * (w[j] - t.prev.get(i, n, j)).abs())
            .sum::<f64>();
    }
    obj
}

/// Solve a contiguous range of instances `[start, end)` of the batch in parallel.
///
/// Infeasible instances get [`Status::Infeasible`] and NaN weights, instances on which the
/// method fails numerically [`Status::SolverError`] and NaN weights; bad inputs are a
/// [`Error::Data`] naming the argument and the instance.
pub fn capped_qp_range(p: &CappedQp<'_>, start: usize, end: usize) -> Result<FastBatch> {
    let end = end.min(p.batch);
    let start = start.min(end);
    let mut weights = vec![0.0; (end - start) * p.names];
    let s = capped_qp_range_into(p, start, end, &mut weights)?;
    Ok(FastBatch {
        weights,
        objective: s.objective,
        status: s.status,
        iterations: s.iterations,
    })
}

/// Per-instance outcomes of [`capped_qp_range_into`], whose weights go to the caller's buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct FastStats {
    pub objective: Vec<f64>,
    pub status: Vec<Status>,
    pub iterations: Vec<u32>,
}

/// [`capped_qp_range`] writing the weights of instances `[start, end)` to `weights`
/// (`(end - start) x names`, row-major) instead of a new buffer.
pub fn capped_qp_range_into(
    p: &CappedQp<'_>,
    start: usize,
    end: usize,
    weights: &mut [f64],
) -> Result<FastStats> {
    PreparedBatch::new(p)?.solve_range_into(start, end, weights)
}

/// A batch whose shared inputs are checked and whose risk model is factored once, to be
/// solved in ranges (the binding solves in chunks, checking for Ctrl-C in between).
pub struct PreparedBatch<'a> {
    problem: CappedQp<'a>,
    prep: Prepared,
}

impl<'a> PreparedBatch<'a> {
    /// Check the inputs shared by the batch (shapes, the risk model, the group matrix) and
    /// factor the risk model; the per-instance inputs are checked with each range.
    pub fn new(p: &CappedQp<'a>) -> Result<Self> {
        validate::validate(p, 0, 0)?;
        Ok(PreparedBatch {
            problem: *p,
            prep: reduce::prepare(p)?,
        })
    }

    /// [`capped_qp_range_into`] with the preparation already done.
    pub fn solve_range_into(
        &self,
        start: usize,
        end: usize,
        weights: &mut [f64],
    ) -> Result<FastStats> {
        let p = &self.problem;
        let end = end.min(p.batch);
        let start = start.min(end);
        let n = p.names;
        if weights.len() != (end - start) * n {
            return Err(Error::Data(format!(
                "weights buffer has {} values, expected {} instances x {n} names",
                weights.len(),
                end - start
            )));
        }
        validate::validate(p, start, end)?;
        let prep = &self.prep;
        // Instance `i` with its objective (NaN without an optimum).
        let one = |ws: &mut Workspace, w: &mut [f64], i: usize| {
            let out = solve_or_flag(p, prep, i, w, ws)?;
            let value = match out.status {
                Status::Optimal => objective(p, prep, i, w, ws),
                _ => f64::NAN,
            };
            Ok((out, value))
        };
        let outs: Vec<Result<(InstanceOut, f64)>> = if n == 0 {
            (start..end)
                .into_par_iter()
                .map_init(Workspace::default, |ws, i| one(ws, &mut [], i))
                .collect()
        } else {
            weights
                .par_chunks_mut(n)
                .zip(start..end)
                .map_init(Workspace::default, |ws, (w, i)| one(ws, w, i))
                .collect()
        };
        let mut out = FastStats {
            objective: Vec::with_capacity(end - start),
            status: Vec::with_capacity(end - start),
            iterations: Vec::with_capacity(end - start),
        };
        for o in outs {
            let (o, value) = o?;
            out.objective.push(value);
            out.status.push(o.status);
            out.iterations.push(o.iterations);
        }
        Ok(out)
    }
}

/// The shared inputs of a capped QP (shapes, risk model, group matrix) checked and the risk
/// model factored once, for callers that build their instances one at a time
/// ([`solve_instance`]).
pub(crate) struct SharedPrep(Prepared);

impl SharedPrep {
    /// From a problem whose shared inputs are final (its per-instance arrays are not read).
    pub fn new(p: &CappedQp<'_>) -> Result<Self> {
        validate::validate_shared(p)?;
        Ok(SharedPrep(reduce::prepare(p)?))
    }

    /// `F Ω` of the risk model, names x factors, row-major (empty without one).
    pub fn f_omega(&self) -> &[f64] {
        &self.0.f_omega
    }
}

/// One worker's scratch for [`solve_instance`], reused across its instances.
#[derive(Default)]
pub(crate) struct Scratch(Workspace);

impl Scratch {
    /// Start the next [`solve_instance`] from the working set the last one settled on, when
    /// it has the same free names (the next penalty of a tracking-error budget search): fewer
    /// iterations, the same exact optimum.
    pub fn warm_start_next(&mut self) {
        self.0.warm = true;
    }
}

/// Status and iterations of [`solve_instance`].
pub(crate) type Outcome = (Status, u32);

/// Solve the one instance of `p` (`p.batch == 1`, built with the shared inputs `prep` was made
/// from); its weights go to `w`. Its callers value the weights in their own objective.
pub(crate) fn solve_instance(
    p: &CappedQp<'_>,
    prep: &SharedPrep,
    w: &mut [f64],
    scratch: &mut Scratch,
) -> Result<Outcome> {
    validate::validate_instances(p, 0, 1)?;
    let out = solve_or_flag(p, &prep.0, 0, w, &mut scratch.0)?;
    Ok((out.status, out.iterations))
}

/// Solve the whole batch. See [`capped_qp_range`].
pub fn capped_qp_batch(p: &CappedQp<'_>) -> Result<FastBatch> {
    capped_qp_range(p, 0, p.batch)
}

#[cfg(test)]
mod tests;
