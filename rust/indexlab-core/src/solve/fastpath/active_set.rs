//! A small dense primal active-set method for convex QPs with box bounds, turnover kinks and a
//! few general rows (the [`Problem`] with a dense Hessian `Q`):
//!
//! ```text
//! minimise 0.5 x'Qx - c'x + sum_j cost_j |x_j - kink_j|   s.t.  lo <= x <= hi,  rlo <= A x <= rhi
//! ```
//!
//! `Q` is only required to be positive *semi*definite (a linear objective is `Q = 0`). The method
//! is inertia-controlling (Fletcher's scheme): the working set always has full row rank and a
//! positive definite reduced Hessian, so every KKT system it solves is nonsingular. It starts at
//! a vertex (where the reduced Hessian is empty); when a constraint with a wrong-signed
//! multiplier is dropped it moves along the direction that leaves exactly that constraint, which
//! is Q-conjugate to the old null space, either to the minimiser along it or, when the curvature
//! is zero, to the first blocking constraint. Steps are exact linear algebra, so the method
//! terminates at the exact optimum (up to rounding) after finitely many working-set changes.
//!
//! A kink is one more bound inside the box ([`super::place`]): a variable moving in one segment
//! is blocked by the kink as by a bound and is then held there; a held variable is released
//! into the segment (below or above) whose directional derivative is negative. This is the
//! textbook method applied to the equivalent split problem `x = lo + a + b`, `a` in `[0, p - lo]`
//! with cost `+cost`, `b` in `[0, hi - p]` with cost `-cost`, without doubling the unknowns.

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::linalg::{dot, lu_factor, lu_solve};
use super::place::{Active, Place};
use super::problem::Problem;

/// A convex QP: the problem data and its row-major dense Hessian (`n x n`).
pub(crate) struct Qp {
    pub q: Vec<f64>,
    pub p: Problem,
}

/// Point and working set; the caller supplies a vertex with a nonsingular KKT system.
pub(crate) struct State {
    pub x: Vec<f64>,
    pub var: Vec<Place>,
    pub row: Vec<Active>,
    /// Multipliers of the rows at the end (sign: Lagrangian `f + sum l_i (a_i x - b_i)`).
    pub row_mult: Vec<f64>,
    pub iterations: u32,
}

/// Why the method stopped without an optimum (a bug or extreme ill-conditioning, never bad data).
#[derive(Debug)]
pub(crate) enum Failure {
    Singular,
    MaxIterations,
    Unbounded,
}

impl Qp {
    fn n(&self) -> usize {
        self.p.n
    }

    fn scale(&self) -> f64 {
        let n = self.n();
        self.p.scale((0..n).map(|i| self.q[i * n + i]))
    }

    /// `out = Q x`.
    fn q_mul(&self, x: &[f64], out: &mut [f64]) {
        let n = self.n();
        for i in 0..n {
            out[i] = dot(&self.q[i * n..(i + 1) * n], x);
        }
    }

    /// `g = Qx - c`, the gradient of the smooth part (without the turnover term).
    fn gradient(&self, x: &[f64], g: &mut [f64]) {
        self.q_mul(x, g);
        for (gi, ci) in g.iter_mut().zip(&self.p.c) {
            *gi -= ci;
        }
    }

    /// The gradient of a variable free at `place`, whose segment adds `±cost` to `g_raw`.
    fn free_gradient(&self, j: usize, g_raw: f64, place: Place) -> f64 {
        let c = self.p.c[j];
        g_raw + c - self.p.range(j).linear(c, place)
    }
}

/// The factorised KKT matrix `[Q_SS E_S'; E_S 0]` of one working set.
struct Kkt {
    free: Vec<usize>,
    rows: Vec<usize>,
    lu: Vec<f64>,
    piv: Vec<usize>,
}

impl Kkt {
    fn build(qp: &Qp, st: &State) -> Option<Kkt> {
        let n = qp.n();
        let free: Vec<usize> = (0..n).filter(|&j| st.var[j].is_free()).collect();
        let rows: Vec<usize> = (0..qp.p.m).filter(|&r| st.row[r] != Active::No).collect();
        let (ns, ne) = (free.len(), rows.len());
        let dim = ns + ne;
        let mut lu = vec![0.0; dim * dim];
        for (a, &i) in free.iter().enumerate() {
            for (b, &j) in free.iter().enumerate() {
                lu[a * dim + b] = qp.q[i * n + j];
            }
        }
        for (e, &r) in rows.iter().enumerate() {
            let arow = qp.p.row(r);
            for (b, &j) in free.iter().enumerate() {
                lu[(ns + e) * dim + b] = arow[j];
                lu[b * dim + ns + e] = arow[j];
            }
        }
        let mut piv = vec![0; dim];
        if dim > 0 && !lu_factor(&mut lu, dim, &mut piv) {
            return None;
        }
        Some(Kkt {
            free,
            rows,
            lu,
            piv,
        })
    }

    /// Solve in place: `rhs = [r1 (free); r2 (rows)]` becomes `[p; λ]`.
    fn solve(&self, rhs: &mut [f64]) {
        let dim = self.free.len() + self.rows.len();
        if dim > 0 {
            lu_solve(&self.lu, dim, &self.piv, rhs);
        }
    }
}

/// Blocking constraint found by a ratio test, or a constraint to drop.
#[derive(Clone, Copy)]
enum Block {
    /// A variable and the place it is held at (blocking) or leaves (dropped).
    Var(usize, Place),
    Row(usize, Active),
}

/// Orthonormal basis (rows, each over all `n` coordinates, zero off the free set) of the
/// active rows restricted to the free variables: the working set's normals span exactly the
/// bound normals of the held variables plus this basis. Modified Gram-Schmidt, twice.
fn free_row_basis(qp: &Qp, st: &State) -> Vec<Vec<f64>> {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for r in 0..qp.p.m {
        if st.row[r] == Active::No {
            continue;
        }
        let mut v = free_row(qp, st, r);
        let (before, after) = orthogonalise(&mut v, &basis);
        if after > DEPENDENT * before {
            basis.push(v.iter().map(|x| x / after).collect());
        }
    }
    basis
}

/// Row `r` of the constraint matrix restricted to the free variables (zero elsewhere).
fn free_row(qp: &Qp, st: &State, r: usize) -> Vec<f64> {
    let arow = qp.p.row(r);
    (0..qp.n())
        .map(|j| if st.var[j].is_free() { arow[j] } else { 0.0 })
        .collect()
}

/// Removes from `v` its components along the orthonormal `basis` (two Gram-Schmidt passes,
/// for stability) and returns `v`'s norm before and after.
fn orthogonalise(v: &mut [f64], basis: &[Vec<f64>]) -> (f64, f64) {
    let before = dot(v, v).sqrt();
    for _ in 0..2 {
        for b in basis {
            let h = dot(b, v);
            for (x, y) in v.iter_mut().zip(b) {
                *x -= h * y;
            }
        }
    }
    (before, dot(v, v).sqrt())
}

/// Relative residual below which a constraint normal counts as linearly dependent on the
/// working set. Adding such a constraint would make the KKT matrix singular; in exact
/// arithmetic every direction in the working set's null space leaves it unchanged, so it can
/// never block a step and is skipped by the ratio test.
pub(crate) const DEPENDENT: f64 = 1e-9;

/// Whether the bound of free variable `j` is linearly dependent on the working set.
fn var_dependent(basis: &[Vec<f64>], j: usize) -> bool {
    let proj: f64 = basis.iter().map(|b| b[j] * b[j]).sum();
    1.0 - proj <= DEPENDENT
}

/// Whether row `r` is linearly dependent on the working set.
fn row_dependent(qp: &Qp, st: &State, basis: &[Vec<f64>], r: usize) -> bool {
    let mut v = free_row(qp, st, r);
    let (before, after) = orthogonalise(&mut v, basis);
    after <= DEPENDENT * before
}

/// Largest step in `[0, limit]` along `p` that keeps every constraint outside the working set,
/// the kinks included (a free variable stays in its segment).
///
/// Constraints linearly dependent on the working set are never added (the working set stays
/// full rank, so every KKT matrix stays nonsingular); a dependent variable's component of `p`,
/// zero in exact arithmetic, is set to zero so that rounding does not move it. Ties go to the
/// lowest index (variables before rows), which keeps the method deterministic.
fn ratio_test(qp: &Qp, st: &State, p: &mut [f64], limit: f64) -> (f64, Option<Block>) {
    let mut alpha = limit;
    let mut block = None;
    let pnorm = p.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    let eps = 1e-13 * pnorm;
    let mut basis: Option<Vec<Vec<f64>>> = None;
    for j in 0..qp.n() {
        if !st.var[j].is_free() {
            continue;
        }
        let pj = p[j];
        if pj == 0.0 {
            continue;
        }
        if var_dependent(basis.get_or_insert_with(|| free_row_basis(qp, st)), j) {
            p[j] = 0.0;
            continue;
        }
        let (low, at_low, high, at_high) = qp.p.range(j).segment(st.var[j]);
        let (room, place) = if pj > eps {
            (high - st.x[j], at_high)
        } else if pj < -eps {
            (low - st.x[j], at_low)
        } else {
            continue;
        };
        let t = (room / pj).max(0.0);
        if t < alpha {
            alpha = t;
            block = Some(Block::Var(j, place));
        }
    }
    for r in 0..qp.p.m {
        if st.row[r] != Active::No {
            continue;
        }
        let arow = qp.p.row(r);
        let ap = dot(arow, p);
        let scale = eps * arow.iter().fold(0.0f64, |s, v| s.max(v.abs())) * 10.0;
        let (room, side) = if ap > scale {
            (qp.p.rhi[r] - dot(arow, &st.x), Active::Upper)
        } else if ap < -scale {
            (qp.p.rlo[r] - dot(arow, &st.x), Active::Lower)
        } else {
            continue;
        };
        let t = (room / ap).max(0.0);
        if t < alpha {
            if row_dependent(
                qp,
                st,
                basis.get_or_insert_with(|| free_row_basis(qp, st)),
                r,
            ) {
                continue;
            }
            alpha = t;
            block = Some(Block::Row(r, side));
        }
    }
    (alpha, block)
}

fn take_step(qp: &Qp, st: &mut State, p: &[f64], alpha: f64, block: Option<Block>) {
    for (x, d) in st.x.iter_mut().zip(p) {
        *x += alpha * d;
    }
    match block {
        Some(Block::Var(j, place)) => {
            st.var[j] = place;
            st.x[j] = qp.p.range(j).value(place).unwrap_or(st.x[j]);
        }
        Some(Block::Row(r, side)) => st.row[r] = side,
        None => {}
    }
}

/// The constraint to drop at a stationary point of the working set, with the direction a
/// dropped variable leaves in (`true`: up), or `None` at an optimum. The most violated
/// multiplier, or past [`BLAND_AFTER`] zero-length steps the lowest-indexed violated one.
fn choose_drop(
    qp: &Qp,
    st: &State,
    kkt: &Kkt,
    g: &[f64],
    lam_rows: &[f64],
    tol: f64,
    bland_mode: bool,
) -> Option<(Block, bool)> {
    let n = qp.n();
    let mut worst = tol;
    let mut drop: Option<(Block, bool)> = None;
    let mut bland: Option<(Block, bool)> = None;
    for (e, &r) in kkt.rows.iter().enumerate() {
        if qp.p.rlo[r] == qp.p.rhi[r] {
            continue;
        }
        let viol = if st.row[r] == Active::Upper {
            -lam_rows[e]
        } else {
            lam_rows[e]
        };
        if viol > worst {
            worst = viol;
            drop = Some((Block::Row(r, st.row[r]), false));
        }
        if bland_mode && viol > tol && bland.is_none() {
            bland = Some((Block::Row(r, st.row[r]), false));
        }
    }
    for j in 0..n {
        if st.var[j].is_free() || qp.p.lo[j] == qp.p.hi[j] {
            continue;
        }
        let mut glam = g[j];
        for (e, &r) in kkt.rows.iter().enumerate() {
            glam += lam_rows[e] * qp.p.a[r * n + j];
        }
        let (up, down) = qp.p.range(j).release_gain(st.var[j], glam);
        let (viol, dir_up) = if up >= down {
            (up, true)
        } else {
            (down, false)
        };
        if viol > worst {
            worst = viol;
            drop = Some((Block::Var(j, st.var[j]), dir_up));
        }
        if bland_mode && viol > tol && !matches!(bland, Some((Block::Var(..), _))) {
            bland = Some((Block::Var(j, st.var[j]), dir_up));
        }
    }
    bland.or(drop)
}

/// Run the active-set iterations from a vertex `st` until the KKT conditions hold.
pub(crate) fn solve(qp: &Qp, st: &mut State, max_iter: u32) -> Result<(), Failure> {
    let n = qp.n();
    let scale = qp.scale();
    let tol = 1e-12 * scale;
    let mut g = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut stationary = false;
    // Consecutive zero-length steps; past `BLAND_AFTER` of them the dropped constraint is the
    // lowest-indexed one with a wrong-signed multiplier (Bland's rule), not the most violated,
    // so degenerate vertices (a zero basic weight, tied bounds) cannot make the method cycle.
    let mut degenerate = 0u32;
    loop {
        if st.iterations >= max_iter {
            return Err(Failure::MaxIterations);
        }
        st.iterations += 1;
        let kkt = Kkt::build(qp, st).ok_or(Failure::Singular)?;
        let ns = kkt.free.len();
        qp.gradient(&st.x, &mut g);
        let mut rhs = vec![0.0; ns + kkt.rows.len()];
        for (a, &j) in kkt.free.iter().enumerate() {
            rhs[a] = -qp.free_gradient(j, g[j], st.var[j]);
        }
        kkt.solve(&mut rhs);
        p.iter_mut().for_each(|v| *v = 0.0);
        for (a, &j) in kkt.free.iter().enumerate() {
            p[j] = rhs[a];
        }
        if !stationary {
            let (alpha, block) = ratio_test(qp, st, &mut p, 1.0);
            take_step(qp, st, &p, alpha, block);
            stationary = block.is_none();
            if alpha == 0.0 && block.is_some() {
                degenerate += 1;
            }
            continue;
        }
        // Stationary on the working set: the multipliers decide optimality.
        let lam_rows = &rhs[ns..];
        let bland_mode = degenerate >= BLAND_AFTER;
        let Some((dropped, up)) = choose_drop(qp, st, &kkt, &g, lam_rows, tol, bland_mode) else {
            st.row_mult = vec![0.0; qp.p.m];
            for (e, &r) in kkt.rows.iter().enumerate() {
                st.row_mult[r] = lam_rows[e];
            }
            polish(qp, st, &kkt);
            return Ok(());
        };
        leaving_direction(qp, st, &kkt, dropped, up, &mut p);
        // The slope along p with the gradient of each moving variable's new segment.
        let slope: f64 = (0..n)
            .filter(|&j| p[j] != 0.0)
            .map(|j| qp.free_gradient(j, g[j], st.var[j]) * p[j])
            .sum();
        let mut qp_p = vec![0.0; n];
        qp.q_mul(&p, &mut qp_p);
        let curv = dot(&p, &qp_p);
        let pn2 = dot(&p, &p);
        let to_min = if curv > 1e-13 * scale * pn2 && slope < 0.0 {
            -slope / curv
        } else {
            f64::INFINITY
        };
        let (alpha, block) = ratio_test(qp, st, &mut p, to_min);
        if !alpha.is_finite() {
            return Err(Failure::Unbounded);
        }
        take_step(qp, st, &p, alpha, block);
        stationary = block.is_none();
        degenerate = if alpha == 0.0 && block.is_some() {
            degenerate + 1
        } else {
            0
        };
    }
}

/// The direction `p` that leaves exactly the dropped constraint (moving a dropped variable up
/// when `up`), every other constraint of the working set kept; the dropped constraint leaves
/// the working set (a variable into the segment it moves in).
fn leaving_direction(qp: &Qp, st: &mut State, kkt: &Kkt, dropped: Block, up: bool, p: &mut [f64]) {
    let n = qp.n();
    let ns = kkt.free.len();
    let mut rhs = vec![0.0; ns + kkt.rows.len()];
    p.iter_mut().for_each(|v| *v = 0.0);
    match dropped {
        Block::Var(v, place) => {
            let sigma = if up { 1.0 } else { -1.0 };
            for (a, &j) in kkt.free.iter().enumerate() {
                rhs[a] = -qp.q[j * n + v] * sigma;
            }
            for (e, &r) in kkt.rows.iter().enumerate() {
                rhs[ns + e] = -qp.p.a[r * n + v] * sigma;
            }
            kkt.solve(&mut rhs);
            p[v] = sigma;
            st.var[v] = qp.p.range(v).released(place, up);
        }
        Block::Row(r, side) => {
            let sigma = if side == Active::Lower { 1.0 } else { -1.0 };
            let e = kkt.rows.iter().position(|&x| x == r).unwrap_or(0);
            rhs[ns + e] = sigma;
            kkt.solve(&mut rhs);
            st.row[r] = Active::No;
        }
    }
    for (a, &j) in kkt.free.iter().enumerate() {
        p[j] = rhs[a];
    }
}

/// Zero-length steps in a row before [`solve`] switches to Bland's rule.
const BLAND_AFTER: u32 = 3;

/// Recompute the free variables from the final working set in one solve (no accumulated
/// rounding from the steps), then clip them into their segments.
fn polish(qp: &Qp, st: &mut State, kkt: &Kkt) {
    let n = qp.n();
    let ns = kkt.free.len();
    let mut rhs = vec![0.0; ns + kkt.rows.len()];
    let mut xf = vec![0.0; n];
    for j in 0..n {
        if !st.var[j].is_free() {
            xf[j] = st.x[j];
        }
    }
    let mut qxf = vec![0.0; n];
    qp.q_mul(&xf, &mut qxf);
    for (a, &i) in kkt.free.iter().enumerate() {
        rhs[a] = qp.p.range(i).linear(qp.p.c[i], st.var[i]) - qxf[i];
    }
    for (e, &r) in kkt.rows.iter().enumerate() {
        let b = if st.row[r] == Active::Upper {
            qp.p.rhi[r]
        } else {
            qp.p.rlo[r]
        };
        rhs[ns + e] = b - dot(qp.p.row(r), &xf);
    }
    kkt.solve(&mut rhs);
    for (a, &j) in kkt.free.iter().enumerate() {
        st.x[j] = qp.p.range(j).clip(rhs[a], st.var[j]);
    }
    for (e, &r) in kkt.rows.iter().enumerate() {
        st.row_mult[r] = rhs[ns + e];
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The split-variable form of `qp` (see the module docs): every variable with a kink
    /// becomes `a + b` over `[lo, kink]` and `[0, hi - kink]`, with the same Hessian on both
    /// parts (only positive semidefinite) and the turnover as linear terms. Returns the split
    /// problem and, per original variable, the index of its second part (if split).
    pub(crate) fn split(qp: &Qp) -> (Qp, Vec<Option<usize>>) {
        let (n, m) = (qp.n(), qp.p.m);
        let mut parts: Vec<usize> = (0..n).collect();
        let mut second = vec![None; n];
        for j in 0..n {
            if qp.p.range(j).has_kink() {
                second[j] = Some(parts.len());
                parts.push(j);
            }
        }
        let nt = parts.len();
        let mut q = vec![0.0; nt * nt];
        for (a, &i) in parts.iter().enumerate() {
            for (b, &j) in parts.iter().enumerate() {
                q[a * nt + b] = qp.q[i * n + j];
            }
        }
        let mut p = Problem {
            n: nt,
            m,
            rlo: qp.p.rlo.clone(),
            rhi: qp.p.rhi.clone(),
            ..Problem::default()
        };
        for (t, &j) in parts.iter().enumerate() {
            let cost = qp.p.cost[j];
            let first = t < n;
            let (lo, hi) = match (second[j].is_some(), first) {
                (false, _) => (qp.p.lo[j], qp.p.hi[j]),
                (true, true) => (qp.p.lo[j], qp.p.kink[j]),
                (true, false) => (0.0, qp.p.hi[j] - qp.p.kink[j]),
            };
            p.lo.push(lo);
            p.hi.push(hi);
            p.c.push(if first {
                qp.p.c[j] + cost
            } else {
                qp.p.c[j] - cost
            });
            p.kink.push(lo);
            p.cost.push(0.0);
        }
        for r in 0..m {
            for &j in &parts {
                p.a.push(qp.p.a[r * n + j]);
            }
        }
        (Qp { q, p }, second)
    }

    /// A random positive definite dense QP with a budget row, one group row and kinks on every
    /// other variable.
    fn random_qp(seed: u64, n: usize, k: usize) -> Qp {
        let mut r = crate::solve::fastpath::tests::rng(seed);
        let u: Vec<f64> = (0..n * k).map(|_| 0.3 * (r() - 0.5)).collect();
        let d: Vec<f64> = (0..n).map(|_| 0.01 + 0.05 * r()).collect();
        let mut q = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                q[i * n + j] = 4.0 * dot(&u[i * k..(i + 1) * k], &u[j * k..(j + 1) * k]);
            }
            q[i * n + i] += 4.0 * d[i];
        }
        let mut a = vec![1.0; n];
        a.extend((0..n).map(|j| if j % 3 == 0 { 1.0 } else { 0.0 }));
        let kink: Vec<f64> = (0..n).map(|_| 0.005 + 0.07 * r()).collect();
        let cost: Vec<f64> = (0..n)
            .map(|j| if j % 2 == 0 { 0.01 * r() } else { 0.0 })
            .collect();
        let p = Problem {
            n,
            c: (0..n).map(|_| 0.05 * r()).collect(),
            lo: vec![0.0; n],
            hi: vec![0.08; n],
            kink,
            cost,
            m: 2,
            a,
            rlo: vec![1.0, f64::NEG_INFINITY],
            rhi: vec![1.0, 0.2],
        };
        Qp { q, p }
    }

    /// A feasible vertex of `random_qp`'s rows: 12 names at the cap, one at 4%, the rest at
    /// zero (names outside the group row). `split`: the vertex of the split form.
    fn start(qp: &Qp, second: Option<&[Option<usize>]>) -> State {
        let n = qp.n();
        let mut x = vec![0.0; n];
        let mut var = vec![Place::Lower; n];
        let order: Vec<usize> = (1..30).filter(|j| j % 3 != 0).take(13).collect();
        for (t, &j) in order.iter().enumerate() {
            let value: f64 = if t < 12 { 0.08 } else { 0.04 };
            match second.and_then(|s| s.get(j).copied().flatten()) {
                Some(b) => {
                    // The first part fills [lo, kink] before the second part moves.
                    let top = qp.p.hi[j];
                    let first = value.min(top);
                    x[j] = first;
                    x[b] = value - first;
                    (var[j], var[b]) = match (t < 12, first < top) {
                        (true, _) => (Place::Upper, Place::Upper),
                        (false, true) => (Place::Above, Place::Lower),
                        (false, false) => (Place::Upper, Place::Above),
                    };
                }
                None => {
                    x[j] = value;
                    var[j] = if t < 12 {
                        Place::Upper
                    } else {
                        qp.p.range(j).side_of(value)
                    };
                }
            }
        }
        State {
            x,
            var,
            row: vec![Active::Lower, Active::No],
            row_mult: Vec::new(),
            iterations: 0,
        }
    }

    #[test]
    fn native_kinks_match_the_split_form() {
        for seed in 0..40 {
            let qp = random_qp(seed, 30, 5);
            let mut st = start(&qp, None);
            solve(&qp, &mut st, 1000).unwrap_or_else(|e| panic!("seed {seed}: {e:?}"));
            let (sq, second) = split(&qp);
            let mut ss = start(&sq, Some(&second));
            solve(&sq, &mut ss, 1000).unwrap_or_else(|e| panic!("seed {seed} split: {e:?}"));
            for j in 0..qp.n() {
                let xs = ss.x[j] + second[j].map_or(0.0, |b| ss.x[b]);
                assert!(
                    (st.x[j] - xs).abs() < 1e-10,
                    "seed {seed}, var {j}: {} vs {xs}",
                    st.x[j]
                );
            }
        }
    }
}
