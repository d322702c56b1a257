//! The dual active-set method of Goldfarb & Idnani for small, strictly convex QPs, dense:
//!
//! ```text
//! minimise 1/2 x'Px + q'x   subject to   a_i'x = b_i (i < me),   a_i'x <= b_i (i >= me)
//! ```
//!
//! with `P` positive definite. It starts at the unconstrained minimum `-P⁻¹q` and adds one
//! violated row at a time (every equality first, then the most violated inequality), moving
//! the point and the multipliers so that the rows already active stay active and every
//! multiplier stays feasible: an active inequality whose multiplier would turn negative is
//! dropped on the way. Each point is the optimum over the rows active at it, so when no row is
//! violated the point is the exact optimum (to rounding), with its multipliers. A row that
//! cannot be made active (its normal lies in the span of the active ones and no multiplier can
//! give way) proves the problem infeasible.
//!
//! The factored form of Powell's implementation (also quadprog's): with `P = L L'`, the
//! matrix `J = L⁻ᵀ Q` and the upper-triangular `R` of `J'N = [R; 0]` (`N`: the active rows'
//! normals) are updated by Givens rotations as rows enter and leave, so a step costs `O(n²)`
//! and nothing is refactored.
//!
//! Rows are taken in the `>=` form `n_i'x >= c_i` the method is written in: an inequality
//! `a'x <= b` as `-a'x >= -b`, an equality with the sign that its residual is violated in.
//! Multipliers `u >= 0` of that form satisfy `P x + q = N u`; the caller's `z` (of
//! `P x + q + A'z = 0`) is `u` times the sign the row was taken with.

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::csr::Csr;
use super::fastpath::linalg::{cholesky_factor, dot};

/// A QP with a dense `P` (`n x n`, symmetric, row-major) and sparse rows `a` (`m x n`: most
/// rows of a presolved program are one variable's bound), the first `me` rows equalities.
pub struct DenseQp<'a> {
    pub n: usize,
    pub p: &'a [f64],
    pub q: &'a [f64],
    pub a: &'a Csr,
    pub b: &'a [f64],
    pub me: usize,
}

/// How a solve ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The optimum `x`, the multipliers `z` of every row (`P x + q + A'z = 0`, `z >= 0` on the
    /// inequalities, 0 off the active set) and the number of steps taken.
    Optimal {
        x: Vec<f64>,
        z: Vec<f64>,
        steps: usize,
    },
    /// A row cannot be met together with the active ones.
    Infeasible,
    /// `P` is not clearly positive definite, the equalities are dependent, or the steps did not
    /// end (a degenerate or badly conditioned problem): another method must decide.
    Failed,
}

/// `P`'s smallest Cholesky pivot, squared, over its largest diagonal entry, below which `P`
/// counts as singular: the method's steps divide by it.
const MIN_PIVOT_RATIO: f64 = 1e-12;
/// A direction whose length is below this fraction of the row normal's, in the metric of
/// `P⁻¹`, means the row depends on the active ones.
const DEPENDENT: f64 = 1e-10;

/// The method's state: the point, the active rows and the factors `J`, `R`.
struct State {
    n: usize,
    x: Vec<f64>,
    /// `J` by columns: column `c` is `jt[c * n..(c + 1) * n]` (the updates rotate columns).
    jt: Vec<f64>,
    /// `n x n` row-major, upper triangle of the first `active.len()` columns used.
    r: Vec<f64>,
    /// Active rows, their multipliers (of the `>=` form) and the sign each was taken with.
    active: Vec<usize>,
    u: Vec<f64>,
    sign: Vec<f64>,
}

impl State {
    /// The unconstrained minimum and `J = L⁻ᵀ`; `None` when `P` is not clearly positive
    /// definite.
    fn start(qp: &DenseQp) -> Option<Self> {
        let n = qp.n;
        let mut l = qp.p.to_vec();
        let pmax = (0..n).fold(0.0f64, |s, i| s.max(l[i * n + i].abs()));
        if !cholesky_factor(&mut l, n) {
            return None;
        }
        let pmin = (0..n).fold(f64::INFINITY, |s, i| s.min(l[i * n + i] * l[i * n + i]));
        if pmin.is_nan() || pmin < MIN_PIVOT_RATIO * pmax {
            return None;
        }
        // Column c of J solves L'y = e_c: upper triangular, so only its first c + 1 entries,
        // found from the last up; once y_t is known, row t of L (contiguous) takes its share
        // out of the entries above it, which hold minus their sums until their turn.
        let mut jt = vec![0.0; n * n];
        for c in 0..n {
            let y = &mut jt[c * n..(c + 1) * n];
            y[c] = 1.0;
            for t in (0..=c).rev() {
                let row = &l[t * n..t * n + t + 1];
                let yt = y[t] / row[t];
                y[t] = yt;
                for (yi, &lti) in y[..t].iter_mut().zip(&row[..t]) {
                    *yi -= lti * yt;
                }
            }
        }
        // x = -J J'q.
        let mut x = vec![0.0; n];
        for col in jt.chunks_exact(n.max(1)) {
            let jq = dot(col, qp.q);
            for (xi, &ji) in x.iter_mut().zip(col) {
                *xi -= jq * ji;
            }
        }
        Some(Self {
            n,
            x,
            jt,
            r: vec![0.0; n * n],
            active: Vec::new(),
            u: Vec::new(),
            sign: Vec::new(),
        })
    }

    /// `d = J' n_p` for the normal `sign * a_p` of row `p`, from its nonzeros only.
    fn project(&self, a: &Csr, p: usize, sign: f64, d: &mut [f64]) {
        for (dc, col) in d.iter_mut().zip(self.jt.chunks_exact(self.n.max(1))) {
            *dc = sign * a.row_dot(p, col);
        }
    }

    /// The primal direction `z = J_2 d_2` (columns past the active ones) and the dual one
    /// `r = R⁻¹ d_1`.
    fn directions(&self, d: &[f64], z: &mut [f64], r: &mut Vec<f64>) {
        let (n, k) = (self.n, self.active.len());
        z.iter_mut().for_each(|v| *v = 0.0);
        for (c, col) in self.jt.chunks_exact(n.max(1)).enumerate().skip(k) {
            let dc = d[c];
            if dc != 0.0 {
                for (zi, &ji) in z.iter_mut().zip(col) {
                    *zi += dc * ji;
                }
            }
        }
        r.clear();
        r.extend_from_slice(&d[..k]);
        for i in (0..k).rev() {
            let mut s = r[i];
            for c in i + 1..k {
                s -= self.r[i * n + c] * r[c];
            }
            r[i] = s / self.r[i * n + i];
        }
    }

    /// Rotate columns `c` and `c + 1` of `J` by `(cos, sin)`.
    fn rotate_j(&mut self, c: usize, cos: f64, sin: f64) {
        let n = self.n;
        let (left, right) = self.jt[c * n..(c + 2) * n].split_at_mut(n);
        for (a, b) in left.iter_mut().zip(right.iter_mut()) {
            let (va, vb) = (*a, *b);
            *a = cos * va + sin * vb;
            *b = -sin * va + cos * vb;
        }
    }

    /// Make row `p` (normal projected to `d`) active: rotate `d`'s tail into its entry `k`,
    /// then `R` gains the column `d[..=k]`.
    fn add(&mut self, p: usize, sign: f64, u: f64, d: &mut [f64]) {
        let (n, k) = (self.n, self.active.len());
        for c in (k + 1..n).rev() {
            if d[c] == 0.0 {
                continue;
            }
            let h = norm2(d[c - 1], d[c]);
            let (cos, sin) = (d[c - 1] / h, d[c] / h);
            d[c - 1] = h;
            d[c] = 0.0;
            self.rotate_j(c - 1, cos, sin);
        }
        for i in 0..=k {
            self.r[i * n + k] = d[i];
        }
        self.active.push(p);
        self.u.push(u);
        self.sign.push(sign);
    }

    /// Drop the active row at position `l`: `R` loses its column and is made triangular
    /// again by rotations, which `J` follows.
    fn drop(&mut self, l: usize) {
        let (n, k) = (self.n, self.active.len());
        self.active.remove(l);
        self.u.remove(l);
        self.sign.remove(l);
        for i in 0..k {
            for c in l..k - 1 {
                self.r[i * n + c] = self.r[i * n + c + 1];
            }
            self.r[i * n + k - 1] = 0.0;
        }
        for c in l..k - 1 {
            let (a, b) = (self.r[c * n + c], self.r[(c + 1) * n + c]);
            if b == 0.0 {
                continue;
            }
            let h = norm2(a, b);
            let (cos, sin) = (a / h, b / h);
            for col in c..k - 1 {
                let (ra, rb) = (self.r[c * n + col], self.r[(c + 1) * n + col]);
                self.r[c * n + col] = cos * ra + sin * rb;
                self.r[(c + 1) * n + col] = -sin * ra + cos * rb;
            }
            self.r[(c + 1) * n + c] = 0.0;
            self.rotate_j(c, cos, sin);
        }
    }
}

/// `sqrt(a^2 + b^2)`, directly where the squares neither overflow nor underflow: libm's
/// `hypot` guards against both at several times the cost, and the rotations call this
/// `O(n)` times a step.
fn norm2(a: f64, b: f64) -> f64 {
    let s = a * a + b * b;
    if s.is_normal() && s < 1e300 {
        s.sqrt()
    } else {
        a.hypot(b)
    }
}

/// `sum |a_ij x_j|` over row `i`: the size against which its residual counts as rounding.
fn row_size(a: &Csr, i: usize, x: &[f64]) -> f64 {
    let (idx, val) = a.row(i);
    idx.iter().zip(val).map(|(&c, &v)| (v * x[c]).abs()).sum()
}

/// The row to add next: the first equality not yet active, else the most violated inequality
/// (by more than rounding, in units of its normal's length `norm`); with its sign in the `>=`
/// form.
fn next_row(qp: &DenseQp, norm: &[f64], x: &[f64], is_active: &[bool]) -> Option<(usize, f64)> {
    if let Some(i) = (0..qp.me).find(|&i| !is_active[i]) {
        // Below its right-hand side, the row is taken as a'x >= b, else as -a'x >= -b.
        let resid = qp.b[i] - qp.a.row_dot(i, x);
        return Some((i, if resid >= 0.0 { -1.0 } else { 1.0 }));
    }
    let mut best = None;
    let mut worst = 0.0;
    for i in qp.me..qp.b.len() {
        if is_active[i] || norm[i] == 0.0 {
            continue;
        }
        let excess = qp.a.row_dot(i, x) - qp.b[i];
        if excess <= 0.0 || excess / norm[i] <= worst {
            continue;
        }
        if excess > 1e-12 * (row_size(qp.a, i, x) + qp.b[i].abs()).max(1.0) {
            worst = excess / norm[i];
            best = Some((i, 1.0));
        }
    }
    best
}

/// Solve `qp` (see the module docs); `max_steps` bounds the steps (each adds or drops a row).
pub fn solve(qp: &DenseQp, max_steps: usize) -> Outcome {
    let (n, m) = (qp.n, qp.b.len());
    let Some(mut s) = State::start(qp) else {
        return Outcome::Failed;
    };
    let mut is_active = vec![false; m];
    let (mut d, mut z, mut r) = (vec![0.0; n], vec![0.0; n], Vec::with_capacity(n));
    let norm: Vec<f64> = (0..m)
        .map(|i| {
            let (_, val) = qp.a.row(i);
            dot(val, val).sqrt()
        })
        .collect();
    let mut steps = 0;
    while let Some((p, sign)) = next_row(qp, &norm, &s.x, &is_active) {
        // The row in the >= form: sign * (b - a'x) >= 0 is n'x >= c with n = -sign a.
        let target = -sign * qp.b[p];
        let mut u_p = 0.0;
        loop {
            steps += 1;
            if steps > max_steps {
                return Outcome::Failed;
            }
            s.project(qp.a, p, -sign, &mut d);
            s.directions(&d, &mut z, &mut r);
            // Partial step: the first active inequality whose multiplier reaches 0.
            let mut partial = (f64::INFINITY, usize::MAX);
            for (i, (&ri, &ui)) in r.iter().zip(&s.u).enumerate() {
                if s.active[i] >= qp.me && ri > 0.0 && ui / ri < partial.0 {
                    partial = (ui / ri, i);
                }
            }
            let d_norm = dot(&d, &d).sqrt();
            let zn = -sign * qp.a.row_dot(p, &z);
            let slack = -sign * qp.a.row_dot(p, &s.x) - target;
            let full = if zn > (DEPENDENT * d_norm).powi(2) {
                (-slack / zn).max(0.0)
            } else {
                f64::INFINITY
            };
            let t = full.min(partial.0);
            if t.is_infinite() {
                return if p < qp.me && s.active.iter().all(|&i| i < qp.me) {
                    // Dependent equalities: not a certificate of infeasibility here.
                    Outcome::Failed
                } else {
                    Outcome::Infeasible
                };
            }
            if full.is_finite() {
                for (xi, &zi) in s.x.iter_mut().zip(&z) {
                    *xi += t * zi;
                }
            }
            for (ui, &ri) in s.u.iter_mut().zip(&r) {
                *ui -= t * ri;
            }
            u_p += t;
            if full <= partial.0 {
                s.add(p, sign, u_p, &mut d);
                is_active[p] = true;
                break;
            }
            is_active[s.active[partial.1]] = false;
            s.drop(partial.1);
        }
    }
    let mut zc = vec![0.0; m];
    for ((&i, &u), &sign) in s.active.iter().zip(&s.u).zip(&s.sign) {
        zc[i] = sign * u;
    }
    Outcome::Optimal {
        x: s.x,
        z: zc,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp<'a>(p: &'a [f64], q: &'a [f64], a: &'a Csr, b: &'a [f64], me: usize) -> DenseQp<'a> {
        DenseQp {
            n: q.len(),
            p,
            q,
            a,
            b,
            me,
        }
    }

    /// The dense row-major rows `a` over `n` variables as a [`Csr`].
    fn rows(a: &[f64], n: usize) -> Csr {
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        for row in a.chunks_exact(n) {
            for (c, &v) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                indices.push(c);
                data.push(v);
            }
            indptr.push(indices.len());
        }
        Csr::new("rows", n, indptr, indices, data).unwrap()
    }

    #[test]
    fn projection_onto_the_simplex_by_hand() {
        // min |x - (0.8, 0.5, -0.4)|² / 2 s.t. sum x = 1, x >= 0: x3 = 0 and x1 - x2 = 0.3,
        // so x = (0.65, 0.35, 0); multipliers from P x + q + A'z = 0: the sum row's
        // z = 0.8 - 0.65 = 0.15, and x3's bound row -x3 <= 0 has 0.4 + 0.15 - z = 0, z = 0.55.
        let p = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let q = [-0.8, -0.5, 0.4];
        let a = [
            1.0, 1.0, 1.0, //
            -1.0, 0.0, 0.0, //
            0.0, -1.0, 0.0, //
            0.0, 0.0, -1.0,
        ];
        let b = [1.0, 0.0, 0.0, 0.0];
        let Outcome::Optimal { x, z, .. } = solve(&qp(&p, &q, &rows(&a, 3), &b, 1), 100) else {
            panic!("not solved");
        };
        for (got, want) in x.iter().zip([0.65, 0.35, 0.0]) {
            assert!((got - want).abs() < 1e-14, "{x:?}");
        }
        for (got, want) in z.iter().zip([0.15, 0.0, 0.0, 0.55]) {
            assert!((got - want).abs() < 1e-14, "{z:?}");
        }
    }

    #[test]
    fn two_rows_by_hand_and_an_infeasible_pair() {
        // min (x - 2)² + (y - 2)² s.t. x + y <= 2, x <= 0.5: the optimum (0.5, 1.5) has both
        // rows active.
        let p = [2.0, 0.0, 0.0, 2.0];
        let q = [-4.0, -4.0];
        let a = [1.0, 1.0, 1.0, 0.0];
        let b = [2.0, 0.5];
        let Outcome::Optimal { x, z, .. } = solve(&qp(&p, &q, &rows(&a, 2), &b, 0), 100) else {
            panic!("not solved");
        };
        assert!(
            (x[0] - 0.5).abs() < 1e-14 && (x[1] - 1.5).abs() < 1e-14,
            "{x:?}"
        );
        // 2(x - 2) + z0 + z1 = 0, 2(y - 2) + z0 = 0: z0 = 1, z1 = 2.
        assert!(
            (z[0] - 1.0).abs() < 1e-14 && (z[1] - 2.0).abs() < 1e-14,
            "{z:?}"
        );
        // x <= 0.5 and x >= 1.2 (-x <= -1.2): the second row's normal is the first's negated
        // and no multiplier can give way.
        let a = [1.0, 0.0, -1.0, 0.0];
        let b = [0.5, -1.2];
        assert_eq!(
            solve(&qp(&p, &q, &rows(&a, 2), &b, 0), 100),
            Outcome::Infeasible
        );
    }

    #[test]
    fn singular_p_and_dependent_equalities_are_left_to_another_method() {
        let q = [0.0, 0.0];
        let singular = [1.0, 1.0, 1.0, 1.0];
        assert_eq!(
            solve(&qp(&singular, &q, &rows(&[], 2), &[], 0), 10),
            Outcome::Failed
        );
        let p = [1.0, 0.0, 0.0, 1.0];
        let a = [1.0, 1.0, 2.0, 2.0];
        let b = [1.0, 2.0];
        assert_eq!(solve(&qp(&p, &q, &rows(&a, 2), &b, 2), 10), Outcome::Failed);
    }
}
