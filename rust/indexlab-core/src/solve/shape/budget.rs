//! A tracking-error budget `||M w + m|| <= budget` met exactly with the fast path.
//!
//! The penalised problem `min c'w + alpha/2 w'Σ1 w + lambda/2 ||M w + m||^2` (`M'M = Σ1`) is,
//! divided by `alpha + lambda`, the fast path's problem with the quadratic `Σ1` and the scores
//! `-g - tau (c - alpha g)` (`g = M'm`, `tau = 1/(alpha + lambda)`, turnover costs times
//! `tau`): its weights are piecewise affine in `tau`, and the tracking error grows with `tau`.
//! `tau = 0` gives the smallest tracking error the constraints allow (above the budget:
//! infeasible, and that smallest budget is reported). From there each step solves at the
//! root of `TE(tau) = budget` on the affine piece through the last solve ([`super::piece`]):
//! exact when the piece reaches the budget, so a binding budget typically takes two or three
//! solves. The root is kept inside a bracket `[t_lo, t_hi]` (`TE <= budget` at `t_lo`, above at
//! `t_hi`); when a piece gives no root inside it, or a step along a piece does not move the
//! tracking error (or, with the bracket closed, does not halve its distance to the budget),
//! the next point comes from the bracket: its upper end first (`lambda = 0`, the objective
//! alone: within the budget it is the answer; with a linear objective `tau` then grows until
//! the budget is passed), then interpolation of the weights between its ends with an
//! Illinois-style safeguard (bisection after two moves of the same end). Every point is a
//! solve, and the solve's tracking error equal to the budget to [`BUDGET_RTOL`] is the
//! certificate (the KKT conditions of the constrained problem, with multiplier `lambda`): a
//! poor step costs a solve, never a wrong answer.

use super::super::csr::Csr;
use super::super::fastpath::linalg::dot;
use super::super::fastpath::Status;
use super::instance::{Model, Scratch as InstanceScratch};
use super::piece::Piece;
use super::{IndexShape, ShapeStatus, TeBudget, BUDGET_RTOL};
use crate::error::Result;

/// Interpolation steps before the feasible end of the bracket is returned, flagged.
const MAX_STEPS: usize = 80;
/// Growth steps of `tau` for a linear objective, each multiplying it by [`GROWTH`].
const MAX_GROWTH: usize = 200;
const GROWTH: f64 = 8.0;

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// The first `tau` a linear objective tries: where the objective's slope `c` and the
/// tracking error's `g` are of one size, whatever their units.
fn growth_start(c: &[f64], g: &[f64]) -> f64 {
    1.0 / max_abs(c).max(1e-300) * max_abs(g).max(1e-12)
}

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
    /// `s'(tau) = alpha g - c`, the scores' slope.
    ds: Vec<f64>,
    piece: Piece,
}

/// `M w + m` into `out`, from `M'` (rows per weight).
fn residual(m_by_weight: &Csr, m: &[f64], w: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend_from_slice(m);
    m_by_weight.add_transpose_mul(w, out);
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

/// How the search for the bracket's upper end ended.
enum UpperEnd {
    /// The instance is decided: the objective alone meets the budget, or a solve failed.
    Done(ShapeStatus),
    /// The upper end, and whether `s.w` holds the solve there.
    At(f64, bool),
}

/// The state of one instance's search.
struct Search<'a> {
    shape: &'a IndexShape,
    b: &'a TeBudget,
    m_by_weight: &'a Csr,
    budget: f64,
    tol: f64,
    iterations: u32,
    /// Fast-path solves so far.
    solves: u32,
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
        // The instance's later solves start from the working set of its last one: the
        // bounds are the same, the penalty moved a little.
        if self.solves > 0 {
            s.warm_start_next();
        }
        self.solves += 1;
        let (status, its) = self.shape.solve_weights(s, model, scale)?;
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
        self.spec.budget.as_ref().ok_or_else(super::no_budget)
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
        let (Some(m_by_weight), Some(m_map), Some(budget_map)) =
            (&self.m_by_weight, &self.maps.m, &self.maps.budget)
        else {
            return Err(super::no_budget());
        };
        m_map.eval_into(theta, &mut bs.m);
        if let Some(g) = &self.budget_g {
            bs.g.clone_from(g);
        } else {
            bs.g.clear();
            bs.g.resize(nw, 0.0);
            b.m.add_transpose_mul(&bs.m, &mut bs.g);
        }
        let budget = budget_map.at(0, theta);
        bs.ds.clear();
        bs.ds
            .extend(s.c.iter().zip(&bs.g).map(|(c, g)| b.alpha * g - c));
        let mut run = Search {
            shape: self,
            b,
            m_by_weight,
            budget,
            tol: BUDGET_RTOL * budget.max(1e-300),
            iterations: 0,
            solves: 0,
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
        let mut t_lo = 0.0;
        // The bracket's upper end: lambda = 0 (tau = 1/alpha) bounds it before any solve
        // there; with a linear objective it is found when needed.
        let mut t_hi = if b.alpha > 0.0 {
            1.0 / b.alpha
        } else {
            f64::INFINITY
        };
        let mut have_hi = false;
        let (mut t_last, mut last) = (0.0, true);
        let mut te_last = smallest;
        let mut sides = 0i32;
        for _ in 0..MAX_STEPS {
            let on_piece = if last {
                self.piece_root(&run, s, bs, t_last, (t_lo, t_hi))
            } else {
                None
            };
            let t_c = match on_piece {
                Some(t) => t,
                None if !have_hi => match self.upper_end(&mut run, s, bs, &mut t_lo)? {
                    UpperEnd::Done(st) => return Ok((st, run.iterations, smallest)),
                    UpperEnd::At(t, solved_there) => {
                        (t_hi, have_hi) = (t, true);
                        (t_last, last) = (t, solved_there);
                        continue;
                    }
                },
                None => {
                    residual(m_by_weight, &bs.m, &bs.w_lo, &mut bs.resid);
                    bs.diff.clear();
                    bs.diff
                        .extend(bs.w_hi.iter().zip(&bs.w_lo).map(|(h, l)| h - l));
                    bs.r1.clear();
                    bs.r1.resize(b.m.rows(), 0.0);
                    m_by_weight.add_transpose_mul(&bs.diff, &mut bs.r1);
                    let at = interpolate(&bs.resid, &bs.r1, budget, sides);
                    t_lo + at * (t_hi - t_lo)
                }
            };
            let st = run.solve_at(s, bs, t_c, Model::Budget)?;
            if st != Status::Optimal {
                return failed(&run, st, smallest);
            }
            let te = run.te(bs, &s.w);
            // A step along a piece must move the tracking error, and, once the bracket is
            // closed, halve its distance to the budget; when it does not (the weights are
            // stuck at a vertex, or the steps cycle across pieces), the next step is the
            // bracket's: its upper end, or interpolation.
            let moved = (te - te_last).abs() > run.tol;
            let halved = (te - budget).abs() <= 0.5 * (te_last - budget).abs();
            let trust = on_piece.is_none() || (moved && (halved || !have_hi));
            (t_last, last, te_last) = (t_c, trust, te);
            if (te - budget).abs() <= run.tol {
                return Ok((ShapeStatus::Optimal, run.iterations, smallest));
            }
            if te <= budget {
                t_lo = t_c;
                bs.w_lo.clone_from(&s.w);
                sides = if sides < 0 { sides - 1 } else { -1 };
            } else {
                (t_hi, have_hi) = (t_c, true);
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

    /// The bracket's upper end when no piece gave one: the objective alone (lambda = 0). Within
    /// the budget it is the answer; else, with `alpha > 0`, it is the upper end, and with a
    /// linear objective `tau` grows from the bracket's lower end until the budget is passed.
    fn upper_end(
        &self,
        run: &mut Search,
        s: &mut InstanceScratch,
        bs: &mut Scratch,
        t_lo: &mut f64,
    ) -> Result<UpperEnd> {
        let alpha = run.b.alpha;
        let (tau0, model0) = if alpha > 0.0 {
            (f64::INFINITY, Model::Budget)
        } else {
            (1.0, Model::Linear)
        };
        let st = run.solve_at(s, bs, tau0, model0)?;
        if st != Status::Optimal {
            return Ok(UpperEnd::Done(ShapeStatus::of(st)));
        }
        if run.te(bs, &s.w) <= run.budget + run.tol {
            return Ok(UpperEnd::Done(ShapeStatus::Optimal));
        }
        bs.w_hi.clone_from(&s.w);
        if alpha > 0.0 {
            return Ok(UpperEnd::At(1.0 / alpha, true));
        }
        let (t, solved_there) = self.grow(run, s, bs, t_lo)?;
        Ok(UpperEnd::At(t, solved_there))
    }

    /// A linear objective: grow `tau` from a scale-free start until the tracking error passes
    /// the budget (`w(tau)` reaches the linear optimum's vertex), moving the bracket's feasible
    /// end along; the bracket's other end is `bs.w_hi` (the linear optimum if it never passes).
    /// Returns the upper end and whether `s.w` holds the solve there.
    fn grow(
        &self,
        run: &mut Search,
        s: &mut InstanceScratch,
        bs: &mut Scratch,
        t_lo: &mut f64,
    ) -> Result<(f64, bool)> {
        let mut t_hi = growth_start(&s.c, &bs.g).max(GROWTH * *t_lo);
        for _ in 0..MAX_GROWTH {
            if run.solve_at(s, bs, t_hi, Model::Budget)? == Status::Optimal {
                let te = run.te(bs, &s.w);
                if te > run.budget + run.tol {
                    bs.w_hi.clone_from(&s.w);
                    return Ok((t_hi, true));
                }
                *t_lo = t_hi;
                bs.w_lo.clone_from(&s.w);
            }
            t_hi *= GROWTH;
        }
        Ok((t_hi, false))
    }

    /// Where the affine piece through the solve in `s.w` (at `tau`) meets the budget, if that
    /// lies strictly inside the bracket (see [`super::piece`]).
    fn piece_root(
        &self,
        run: &Search,
        s: &InstanceScratch,
        bs: &mut Scratch,
        tau: f64,
        (t_lo, t_hi): (f64, f64),
    ) -> Option<f64> {
        let f_omega = self.budget_prep().ok()?.f_omega();
        if !bs
            .piece
            .direction(&self.spec, &run.b.risk, f_omega, s, &bs.ds)
        {
            return None;
        }
        residual(run.m_by_weight, &bs.m, &s.w, &mut bs.resid);
        bs.r1.clear();
        bs.r1.resize(run.b.m.rows(), 0.0);
        run.m_by_weight.add_transpose_mul(bs.piece.v(), &mut bs.r1);
        let (r, dr) = (&bs.resid, &bs.r1);
        let (a2, a1, a0) = (dot(dr, dr), dot(r, dr), dot(r, r) - run.budget * run.budget);
        let disc = a1 * a1 - a2 * a0;
        if !(a2 > 0.0 && disc >= 0.0) {
            return None;
        }
        // The root nearest the solve in the direction of the budget (the tracking error
        // grows with tau): up from below it, down from above.
        let delta = (-a1 + disc.sqrt()) / a2;
        let toward = (a0 < 0.0 && delta > 0.0) || (a0 > 0.0 && delta < 0.0);
        let t = tau + delta;
        if !toward || t <= t_lo {
            return None;
        }
        if t_hi.is_infinite() {
            // No upper end yet: at most a growth step further, so that a direction that is
            // rounding noise (at the linear optimum's vertex) cannot send tau to 1e15.
            return Some(t.min(GROWTH * tau.max(growth_start(&s.c, &bs.g))));
        }
        (t < t_hi).then_some(t)
    }
}
