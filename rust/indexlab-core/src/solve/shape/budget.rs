//! A tracking-error budget `||M w + m|| <= budget` met exactly with the fast path.
//!
//! The penalised problem `min c'w + alpha/2 w'Σ1 w + lambda/2 ||M w + m||^2` (`M'M = Σ1`) is,
//! divided by `alpha + lambda`, the fast path's problem with the quadratic `Σ1` and the scores
//! `-g - tau (c - alpha g)` (`g = M'm`, `tau = 1/(alpha + lambda)`, turnover costs times
//! `tau`): its weights are piecewise affine in `tau`. `tau = 0` gives the smallest tracking
//! error the constraints allow (above the budget: infeasible, and that smallest budget is
//! reported); `lambda = 0` the objective alone (within the budget: done). In between, the root
//! of `TE(tau) = budget` is bracketed and found by interpolating the weights between the
//! bracket's ends (the exact root once both ends lie on one affine piece), each guess confirmed
//! by a solve at it: the solve's tracking error equal to the budget to [`BUDGET_RTOL`] is the
//! certificate (the KKT conditions of the constrained problem with multiplier `lambda`). An
//! Illinois-style safeguard bisects after two moves of the same end.

use super::super::csr::Csr;
use super::super::fastpath::Status;
use super::instance::{Model, Scratch as InstanceScratch};
use super::{IndexShape, ShapeStatus, TeBudget, BUDGET_RTOL};
use crate::error::{Error, Result};

/// Interpolation steps before the feasible end of the bracket is returned, flagged.
const MAX_STEPS: usize = 80;
/// Growth steps of `tau` for a linear objective (each multiplies it by 8).
const MAX_GROWTH: usize = 200;

/// Buffers of the search, reused across instances.
#[derive(Default)]
pub(super) struct Scratch {
    m: Vec<f64>,
    g: Vec<f64>,
    resid: Vec<f64>,
    diff: Vec<f64>,
    r1: Vec<f64>,
    w_lo: Vec<f64>,
    w_hi: Vec<f64>,
}

/// `M w + m` into `out`, from `M'` (rows per weight).
fn residual(m_by_weight: &Csr, m: &[f64], w: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend_from_slice(m);
    m_by_weight.add_transpose_mul(w, out);
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |s, (x, y)| s + x * y)
}

/// Where on `[0, 1]` between the bracket's ends the interpolated weights meet the budget:
/// the larger root of `||r0 + t r1||^2 = budget^2`, the midpoint when that fails or after two
/// moves of the same end.
fn interpolate(r0: &[f64], r1: &[f64], budget: f64, same_side_moves: i32) -> f64 {
    if same_side_moves.abs() >= 2 {
        return 0.5;
    }
    let (a2, a1, a0) = (dot(r1, r1), dot(r0, r1), dot(r0, r0) - budget * budget);
    let disc = (a1 * a1 - a2 * a0).max(0.0).sqrt();
    let t = if a2 > 0.0 { (-a1 + disc) / a2 } else { 0.5 };
    if t.is_nan() {
        0.5
    } else {
        t.clamp(0.0, 1.0)
    }
}

/// The state of one instance's search.
struct Search<'a> {
    shape: &'a IndexShape,
    b: &'a TeBudget,
    m_by_weight: &'a Csr,
    budget: f64,
    tol: f64,
    iterations: u32,
}

impl Search<'_> {
    /// Solve at `tau` with scores `-g - tau (c - alpha g)`; `linear`: the objective alone
    /// with no quadratic (`alpha = 0`, `lambda = 0`), scores `-c`.
    fn solve_at(
        &mut self,
        s: &mut InstanceScratch,
        bs: &Scratch,
        tau: f64,
        model: Model,
    ) -> Result<Status> {
        let alpha = self.b.alpha;
        s.scores.clear();
        if model == Model::Linear {
            s.scores.extend(s.c.iter().map(|c| -c));
        } else if tau.is_infinite() {
            s.scores.extend(s.c.iter().map(|c| -c / alpha));
        } else {
            let step =
                s.c.iter()
                    .zip(&bs.g)
                    .map(|(c, g)| -g - tau * (c - alpha * g));
            s.scores.extend(step);
        }
        let scale = if tau.is_infinite() { 1.0 / alpha } else { tau };
        let (_, status, its) = self.shape.solve_weights(s, model, scale)?;
        self.iterations += its;
        Ok(status)
    }

    fn te(&self, bs: &mut Scratch, w: &[f64]) -> f64 {
        residual(self.m_by_weight, &bs.m, w, &mut bs.resid);
        dot(&bs.resid, &bs.resid).sqrt()
    }
}

impl IndexShape {
    fn budget_spec(&self) -> Result<&TeBudget> {
        self.spec
            .budget
            .as_ref()
            .ok_or_else(|| Error::Solver("no tracking-error budget in this problem".into()))
    }

    /// Status, iterations and the smallest feasible budget of the loaded instance; the weights
    /// go to `s.w`.
    pub(super) fn solve_budget(
        &self,
        theta: &[f64],
        s: &mut InstanceScratch,
    ) -> Result<(ShapeStatus, u32, f64)> {
        let b = self.budget_spec()?;
        let mut bs = std::mem::take(&mut s.budget);
        let out = self.search(b, theta, s, &mut bs);
        s.budget = bs;
        out
    }

    fn search(
        &self,
        b: &TeBudget,
        theta: &[f64],
        s: &mut InstanceScratch,
        bs: &mut Scratch,
    ) -> Result<(ShapeStatus, u32, f64)> {
        let nw = self.spec.weight_cols.len();
        let missing = || Error::Solver("no tracking-error budget in this problem".into());
        let (Some(m_by_weight), Some(m_map), Some(budget_map)) =
            (&self.m_by_weight, &self.maps.m, &self.maps.budget)
        else {
            return Err(missing());
        };
        m_map.eval_into(theta, &mut bs.m);
        bs.g.clear();
        bs.g.resize(nw, 0.0);
        b.m.add_transpose_mul(&bs.m, &mut bs.g);
        let budget = budget_map.at(0, theta);
        let mut run = Search {
            shape: self,
            b,
            m_by_weight,
            budget,
            tol: BUDGET_RTOL * budget.max(1e-300),
            iterations: 0,
        };
        // A solve without an optimum ends the instance with its status.
        let failed = |run: &Search, st: Status, smallest: f64| {
            Ok((ShapeStatus::of(st), run.iterations, smallest))
        };
        // lambda = infinity: the smallest tracking error the constraints allow.
        let st = run.solve_at(s, bs, 0.0, Model::Budget)?;
        if st != Status::Optimal {
            return failed(&run, st, f64::NAN);
        }
        let smallest = run.te(bs, &s.w);
        if smallest > budget + run.tol || budget < 0.0 {
            return Ok((ShapeStatus::Infeasible, run.iterations, smallest));
        }
        bs.w_lo.clone_from(&s.w);
        // lambda = 0: the objective alone.
        let (tau0, model0) = if b.alpha > 0.0 {
            (f64::INFINITY, Model::Budget)
        } else {
            (1.0, Model::Linear)
        };
        let st = run.solve_at(s, bs, tau0, model0)?;
        if st != Status::Optimal {
            return failed(&run, st, smallest);
        }
        if run.te(bs, &s.w) <= budget + run.tol {
            return Ok((ShapeStatus::Optimal, run.iterations, smallest));
        }
        bs.w_hi.clone_from(&s.w);
        let mut t_lo = 0.0;
        let mut t_hi = if b.alpha > 0.0 {
            1.0 / b.alpha
        } else {
            self.grow(&mut run, s, bs, &mut t_lo)?
        };
        let mut sides = 0i32;
        for _ in 0..MAX_STEPS {
            residual(m_by_weight, &bs.m, &bs.w_lo, &mut bs.resid);
            bs.diff.clear();
            bs.diff
                .extend(bs.w_hi.iter().zip(&bs.w_lo).map(|(h, l)| h - l));
            bs.r1.clear();
            bs.r1.resize(b.m.rows(), 0.0);
            m_by_weight.add_transpose_mul(&bs.diff, &mut bs.r1);
            let at = interpolate(&bs.resid, &bs.r1, budget, sides);
            let t_c = t_lo + at * (t_hi - t_lo);
            let st = run.solve_at(s, bs, t_c, Model::Budget)?;
            if st != Status::Optimal {
                return failed(&run, st, smallest);
            }
            let te = run.te(bs, &s.w);
            if (te - budget).abs() <= run.tol {
                return Ok((ShapeStatus::Optimal, run.iterations, smallest));
            }
            if te <= budget {
                t_lo = t_c;
                bs.w_lo.clone_from(&s.w);
                sides = if sides < 0 { sides - 1 } else { -1 };
            } else {
                t_hi = t_c;
                bs.w_hi.clone_from(&s.w);
                sides = if sides > 0 { sides + 1 } else { 1 };
            }
            if sides.abs() > 2 {
                sides = 0;
            }
        }
        s.w.clone_from(&bs.w_lo);
        Ok((ShapeStatus::OptimalInaccurate, run.iterations, smallest))
    }

    /// A linear objective: grow `tau` from a scale-free start until the tracking error passes
    /// the budget (`w(tau)` reaches the linear optimum's vertex), moving the bracket's feasible
    /// end along; the bracket's other end is `bs.w_hi` (the linear optimum if it never passes).
    fn grow(
        &self,
        run: &mut Search,
        s: &mut InstanceScratch,
        bs: &mut Scratch,
        t_lo: &mut f64,
    ) -> Result<f64> {
        let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let scale = max_abs(&s.c).max(1e-300);
        let mut t_hi = 1.0 / scale * max_abs(&bs.g).max(1e-12);
        for _ in 0..MAX_GROWTH {
            if run.solve_at(s, bs, t_hi, Model::Budget)? == Status::Optimal {
                let te = run.te(bs, &s.w);
                if te > run.budget + run.tol {
                    bs.w_hi.clone_from(&s.w);
                    return Ok(t_hi);
                }
                *t_lo = t_hi;
                bs.w_lo.clone_from(&s.w);
            }
            t_hi *= 8.0;
        }
        Ok(t_hi)
    }
}
