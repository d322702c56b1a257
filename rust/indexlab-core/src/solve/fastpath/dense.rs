//! The dense path: the inertia-controlling primal method of [`super::active_set`] with the
//! dense Hessian of the free names. It serves the instances that are not positive definite
//! (`γ = 0`, names without specific variance) and the rare positive definite ones on which the
//! primal-dual iterations do not settle.
//!
//! It starts at the greedy vertex (already the optimum of the linear case without groups);
//! group rows that vertex violates get a phase 1 (elastic slacks, minimise total violation)
//! whose positive optimum proves infeasibility.

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::active_set::{self, Failure, Qp, State};
use super::place::{Active, Place};
use super::problem::Problem;
use super::reduce::Prepared;
use super::{CappedQp, FEASIBILITY_TOL};
use crate::error::{Error, Result};

/// Dense Hessian `γ (F_R Ω F_R' + diag d_R)` on the free names.
pub(super) fn dense_hessian(p: &CappedQp<'_>, prep: &Prepared, free: &[usize]) -> Vec<f64> {
    let (nf, gamma) = (free.len(), p.gamma);
    let mut q = vec![0.0; nf * nf];
    let Some(r) = p.risk.filter(|_| gamma > 0.0) else {
        return q;
    };
    let k = r.factors;
    for (a, &ja) in free.iter().enumerate() {
        let fo = &prep.f_omega[ja * k..(ja + 1) * k];
        for (b, &jb) in free.iter().enumerate().skip(a) {
            let fl = &r.loadings[jb * k..(jb + 1) * k];
            let v = gamma * fo.iter().zip(fl).map(|(x, y)| x * y).sum::<f64>();
            q[a * nf + b] = v;
            q[b * nf + a] = v;
        }
        q[a * nf + a] += gamma * r.specific_var[ja];
    }
    q
}

/// The greedy vertex: every variable's segments (one, or two around a kink) by linear
/// coefficient, highest first (`c + cost` below a kink, `c - cost` above it; ties by variable,
/// then segment), each filled to its end until the budget is met. The variable whose segment
/// completes the budget is basic. With no groups and `Q = 0` this is the optimum.
pub(super) fn greedy_vertex(qp: &Problem) -> (Vec<f64>, Vec<Place>) {
    let nf = qp.n;
    let mut segments: Vec<(f64, usize, bool)> = Vec::with_capacity(2 * nf);
    for j in 0..nf {
        let r = qp.range(j);
        segments.push((r.linear(qp.c[j], Place::Below), j, false));
        if r.has_kink() {
            segments.push((r.linear(qp.c[j], Place::Above), j, true));
        }
    }
    segments.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut x = qp.lo.clone();
    let mut var = vec![Place::Lower; nf];
    let mut rem = qp.rlo[0] - qp.lo.iter().sum::<f64>();
    let mut basic = None;
    for &(_, j, upper_part) in &segments {
        let r = qp.range(j);
        let (start, end, end_place, free_place) = match (r.has_kink(), upper_part) {
            (false, _) => (r.lo, r.hi, Place::Upper, Place::Above),
            (true, false) => (r.lo, r.kink, Place::Kink, Place::Below),
            (true, true) => (r.kink, r.hi, Place::Upper, Place::Above),
        };
        let take = (end - start).min(rem.max(0.0));
        x[j] += take;
        rem -= take;
        if rem <= 0.0 {
            basic = Some((j, free_place));
            break;
        }
        var[j] = end_place;
        x[j] = end;
    }
    // sum(hi) within tolerance of the target: everything full, the last segment basic.
    let basic = basic.or_else(|| segments.last().map(|&(_, j, _)| (j, Place::Above)));
    if let Some((j, place)) = basic {
        var[j] = place;
        let others: f64 = (0..nf).filter(|&t| t != j).map(|t| x[t]).sum();
        x[j] = qp.rlo[0] - others;
    }
    (x, var)
}

/// Whether `x` violates a group row by more than the feasibility tolerance.
fn groups_violated(qp: &Problem, x: &[f64]) -> bool {
    (1..qp.m).any(|r| {
        let ax: f64 = qp.row(r).iter().zip(x).map(|(u, v)| u * v).sum();
        ax > qp.rhi[r] + FEASIBILITY_TOL * (1.0 + ax.abs())
            || ax < qp.rlo[r] - FEASIBILITY_TOL * (1.0 + ax.abs())
    })
}

/// The places of a point: held at a bound it touches, free on its side of the kink otherwise.
fn places_of(qp: &Problem, x: &[f64]) -> Vec<Place> {
    (0..qp.n)
        .map(|j| {
            let r = qp.range(j);
            if x[j] <= r.lo {
                Place::Lower
            } else if x[j] >= r.hi {
                Place::Upper
            } else {
                r.side_of(x[j])
            }
        })
        .collect()
}

fn failure(i: usize, f: Failure) -> Error {
    Error::Solver(format!(
        "instance {i}: the active-set method failed ({f:?}); this is a bug or an extremely \
         ill-conditioned risk model"
    ))
}

/// Solve instance `i` (reduced in `qp`, free names `free`) on the dense path. `crash`: for a
/// positive definite Hessian, a guess of the optimal places; a held variable of the start whose
/// guess differs is freed, which shortens the iterations (any working set is nonsingular then).
/// `None` when infeasible; else the solution and the iterations.
pub(super) fn solve(
    p: &CappedQp<'_>,
    prep: &Prepared,
    i: usize,
    (qp, free): (&Problem, &[usize]),
    crash: Option<&[Place]>,
) -> Result<Option<(Vec<f64>, u32)>> {
    let nf = qp.n;
    let (x, var) = greedy_vertex(qp);
    let max_iter = 50 * (nf as u32 + 2 * (qp.m as u32 - 1)) + 100;
    let q = dense_hessian(p, prep, free);
    let violated = groups_violated(qp, &x);
    if violated && crash.is_none() {
        return phase1_then_solve(i, qp, &q, (x, var), max_iter, true);
    }
    let (x, mut var, phase1_iters) = if violated {
        // Phase 1 only (an LP, cheap at vertices); the optimisation restarts from its point.
        let Some((x, its)) = phase1_then_solve(i, qp, &[], (x, var), max_iter, false)? else {
            return Ok(None);
        };
        let var = places_of(qp, &x);
        (x, var, its)
    } else {
        (x, var, 0)
    };
    if let Some(guess) = crash {
        for j in 0..nf {
            if !var[j].is_free() && var[j] != guess[j] {
                var[j] = qp.range(j).side_of(x[j]);
            }
        }
        // The budget row needs a free variable to keep the working set full rank.
        if var.iter().all(|v| !v.is_free()) {
            var[0] = qp.range(0).side_of(x[0]);
        }
    }
    let mut row = vec![Active::No; qp.m];
    row[0] = Active::Lower; // the budget (an equality)
    let mut st = State {
        x,
        var,
        row,
        row_mult: Vec::new(),
        iterations: phase1_iters,
    };
    let dense = Qp { q, p: qp.clone() };
    active_set::solve(&dense, &mut st, max_iter).map_err(|f| failure(i, f))?;
    Ok(Some((st.x, st.iterations)))
}

/// Phase 1 minimises the total group violation with elastic slacks from the vertex `start`;
/// phase 2 (when `phase2`) fixes the slacks at zero and optimises from the phase-1 vertex with
/// the dense Hessian `q`. `None`: infeasible.
pub(super) fn phase1_then_solve(
    i: usize,
    base: &Problem,
    q: &[f64],
    start: (Vec<f64>, Vec<Place>),
    max_iter: u32,
    phase2: bool,
) -> Result<Option<(Vec<f64>, u32)>> {
    let (nf, m) = (base.n, base.m - 1);
    let (mut qp, mut st, scale) = elastic(base, start);
    active_set::solve(&qp, &mut st, max_iter).map_err(|f| failure(i, f))?;
    let violation: f64 = st.x[nf..].iter().sum();
    if violation > FEASIBILITY_TOL * scale {
        return Ok(None);
    }
    if !phase2 {
        st.x.truncate(nf);
        for j in 0..nf {
            st.x[j] = st.x[j].clamp(base.lo[j], base.hi[j]);
        }
        return Ok(Some((st.x, st.iterations)));
    }
    let nt = nf + 2 * m;
    for j in nf..nt {
        st.x[j] = 0.0;
        qp.p.hi[j] = 0.0;
        qp.p.c[j] = 0.0;
    }
    qp.p.c[..nf].copy_from_slice(&base.c);
    qp.p.kink[..nf].copy_from_slice(&base.kink);
    qp.p.cost[..nf].copy_from_slice(&base.cost);
    for a in 0..nf {
        qp.q[a * nt..a * nt + nf].copy_from_slice(&q[a * nf..(a + 1) * nf]);
    }
    let limit = st.iterations + max_iter;
    active_set::solve(&qp, &mut st, limit).map_err(|f| failure(i, f))?;
    st.x.truncate(nf);
    Ok(Some((st.x, st.iterations)))
}

/// The phase-1 problem: variables `w` (as in `base`, the kinks kept as breakpoints without
/// cost, so that the start stays a vertex), then per group
/// row `r` a pair `(down_r, up_r) >= 0` entering as `G_r w + down_r - up_r`, cost 1 each; the
/// start point with the slacks that absorb the violations of `start`, and the size of `G w`.
fn elastic(base: &Problem, start: (Vec<f64>, Vec<Place>)) -> (Qp, State, f64) {
    let (nf, m) = (base.n, base.m - 1);
    let nt = nf + 2 * m;
    let mut at = vec![0.0; (1 + m) * nt];
    for r in 0..=m {
        at[r * nt..r * nt + nf].copy_from_slice(base.row(r));
        if r > 0 {
            at[r * nt + nf + 2 * (r - 1)] = 1.0;
            at[r * nt + nf + 2 * (r - 1) + 1] = -1.0;
        }
    }
    let (mut x, mut var) = start;
    x.resize(nt, 0.0);
    var.resize(nt, Place::Lower);
    let mut row = vec![Active::No; 1 + m];
    row[0] = Active::Lower;
    let mut scale = 1.0f64;
    for r in 1..=m {
        let ax: f64 = base.row(r).iter().zip(&x).map(|(u, v)| u * v).sum();
        scale = scale.max(ax.abs());
        if ax > base.rhi[r] {
            x[nf + 2 * (r - 1) + 1] = ax - base.rhi[r];
            var[nf + 2 * (r - 1) + 1] = Place::Above;
            row[r] = Active::Upper;
        } else if ax < base.rlo[r] {
            x[nf + 2 * (r - 1)] = base.rlo[r] - ax;
            var[nf + 2 * (r - 1)] = Place::Above;
            row[r] = Active::Lower;
        }
    }
    let mut lo = base.lo.clone();
    lo.resize(nt, 0.0);
    let mut hi = base.hi.clone();
    hi.resize(nt, f64::INFINITY);
    let mut c = vec![0.0; nt];
    for v in &mut c[nf..] {
        *v = -1.0;
    }
    let mut kink = base.kink.clone();
    kink.resize(nt, 0.0);
    let p = Problem {
        n: nt,
        c,
        lo,
        hi,
        kink,
        cost: vec![0.0; nt],
        m: 1 + m,
        a: at,
        rlo: base.rlo.clone(),
        rhi: base.rhi.clone(),
    };
    let qp = Qp {
        q: vec![0.0; nt * nt],
        p,
    };
    let st = State {
        x,
        var,
        row,
        row_mult: Vec::new(),
        iterations: 0,
    };
    (qp, st, scale)
}
