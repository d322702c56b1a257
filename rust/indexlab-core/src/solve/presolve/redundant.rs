//! Pass 5: nonnegative rows that can never bind, dropped. Such a row is slack by a margin at
//! every point the variables' bound rows allow, so its dual is 0 in every solution of the full
//! program and the reduced program has the same solutions. That covers rows of several
//! variables (a sector cap the held names' caps cannot reach) and bound rows a tighter bound of
//! the same variable dominates (`w <= 0.08` where the liquidity cap says `w <= 0.05`): each
//! dropped row is one less row in every iteration of the solver. Rows within the margin of
//! binding are kept (two equal caps both stay): there the full program's duals may be shared
//! between rows, and cvxpy reports Clarabel's share.

use super::work::Work;

/// How far (relative to `1 + |b| + sum |terms|`) a row must be from binding to be dropped.
const MARGIN: f64 = 1e-7;

/// The tightest bounds `lo[j] <= x_j <= hi[j]` of each kept column from its bound rows
/// (infinite where it has none).
pub(super) struct BoxBounds {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

/// Whether row `r` is a nonnegative row still kept with a single variable left: a bound
/// `a x_j <= b` of that variable (upper if `a > 0`, lower if `a < 0`).
fn is_bound_row(w: &Work, r: usize) -> bool {
    w.rows.is_nonneg(r) && w.left[r] == 1 && w.keep_row[r]
}

/// The tightest bounds of the kept columns.
pub(super) fn box_bounds(w: &Work, kept: &[usize]) -> BoxBounds {
    let n = w.c.a.n;
    let mut bx = BoxBounds {
        lo: vec![f64::NEG_INFINITY; n],
        hi: vec![f64::INFINITY; n],
    };
    for &j in kept {
        for (r, v) in w.column(j).filter(|&(r, _)| is_bound_row(w, r)) {
            let bound = w.b[r] / v;
            if v > 0.0 {
                bx.hi[j] = bx.hi[j].min(bound);
            } else {
                bx.lo[j] = bx.lo[j].max(bound);
            }
        }
    }
    bx
}

/// Drop a nonnegative row whose largest value over the bounds, `sum_j max(a_j lo_j, a_j hi_j)`,
/// is below its right-hand side by more than the margin (relative to the sizes of the terms,
/// which covers the rounding of the sum). A bound row of one variable cannot drop itself (its
/// own bound is in the box): only a strictly tighter row of the same variable drops it, and
/// that row stays, so the box is the same after the drops.
pub(super) fn drop_redundant_rows(w: &mut Work, kept: &[usize], bx: &BoxBounds) {
    let is_candidate = |w: &Work, r: usize| w.rows.is_nonneg(r) && w.left[r] >= 1 && w.keep_row[r];
    let m = w.c.a.m;
    let (mut most, mut size) = (vec![0.0f64; m], vec![0.0f64; m]);
    for &j in kept {
        for (r, v) in w.column(j).filter(|&(r, _)| is_candidate(w, r)) {
            let term = v * if v > 0.0 { bx.hi[j] } else { bx.lo[j] };
            most[r] += term;
            size[r] += term.abs();
        }
    }
    for r in w.rows.n_zero..w.rows.n_lin {
        if is_candidate(w, r) && most[r] < w.b[r] - MARGIN * (1.0 + w.b[r].abs() + size[r]) {
            w.keep_row[r] = false;
        }
    }
}
