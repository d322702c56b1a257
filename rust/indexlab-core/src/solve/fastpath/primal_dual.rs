//! Primal-dual active-set iterations (Hintermüller, Ito & Kunisch) in factor form, for the
//! positive definite instances: `Q = γ (U U' + diag d)` with every `d > 0`.
//!
//! Each iteration solves the KKT system of a guessed working set (every variable held at a
//! bound or at its kink, or free in one segment; the budget and some group rows active) and
//! then moves every violated bound, kink or row into the working set and every wrong-signed
//! multiplier out of it, all at once. When no change is left the KKT conditions hold to
//! rounding and the point is the exact optimum. A KKT solve costs `O(k + rows)` cubed plus a
//! pass over the names: the free variables are eliminated through `diag(d)`, which leaves a
//! positive definite system of `k + rows` unknowns (see [`PrimalDual::solve_working_set`]), and
//! the sums that elimination needs are updated by rank-one terms as variables enter and leave
//! the free set.
//!
//! Plain HIK iterations can fail in three ways, each safeguarded here:
//!
//! * every variable held, so the budget row has no free variable (the step overshot, as an
//!   undamped Newton step on the budget multiplier does): the newly held variable with the
//!   smallest violation stays free;
//! * a violated row that would make the active rows linearly dependent on the free set (no
//!   free member, or the same free members as the budget): it waits, and when nothing else
//!   changes, its members held at the bound that pushes the violation are released;
//! * cycling (a working set seen before): from then on only the largest violation changes per
//!   iteration, and a second cycle ends the run.
//!
//! None of these affects exactness (only the final KKT check does); a run that does not settle
//! (a second cycle, a stuck or singular working set, or the iteration limit) says so and the
//! caller falls back to the primal method of [`super::active_set`]. The start comes from the exact optimum of the diagonal model
//! (`Q` replaced by its diagonal, groups ignored), found by a safeguarded Newton iteration on the
//! budget multiplier, and one Jacobi sweep from it ([`PrimalDual::start`]): it puts most
//! variables at the right bound before the first solve. A caller solving a sequence of nearby
//! problems over the same variables (a tracking-error budget's penalty search) may instead
//! start each from the working set the previous one settled on.

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::active_set::DEPENDENT;
use super::linalg::{back_sub, cholesky_factor, cholesky_solve, dot, forward_sub};
use super::place::{Active, Place, Range};
use super::problem::Problem;

/// `Q = γ (U U' + diag d)` on the variables of a [`Problem`]; `u` is `n x k` row-major.
#[derive(Debug, Default)]
pub(crate) struct Factor {
    pub gamma: f64,
    pub k: usize,
    pub u: Vec<f64>,
    pub d: Vec<f64>,
}

impl Factor {
    fn uj(&self, j: usize) -> &[f64] {
        &self.u[j * self.k..(j + 1) * self.k]
    }
}

/// What the factor form's sums are built from besides `gamma`: `U`, `d` and the rows `A`.
fn sums_data<'a>(qp: &'a Problem, f: &'a Factor) -> Option<[&'a [f64]; 3]> {
    let (n, k, m) = (qp.n, f.k, qp.m);
    Some([f.u.get(..n * k)?, f.d.get(..n)?, qp.a.get(..m * n)?])
}

/// Instances with more variables compute `u_a'u_b` afresh instead of caching it (the cache
/// takes `n²` entries).
const GRAM_CACHE_MAX: usize = 512;

/// What the hot loops read about one variable, in one place.
#[derive(Clone, Copy, Debug)]
struct VarInfo {
    range: Range,
    c: f64,
    d: f64,
}

/// How many of the proposed changes an iteration applies: all of them, or, once a working set
/// has come back (the iterations cycle), only the one with the largest violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    All,
    Largest,
}

/// One proposed working-set change and the size of the violation behind it, in gradient units.
#[derive(Clone, Copy, Debug)]
enum Change {
    Var(usize, Place, f64),
    Row(usize, Active, f64),
}

impl Change {
    fn size(&self) -> f64 {
        match *self {
            Change::Var(_, _, s) | Change::Row(_, _, s) => s,
        }
    }
}

/// The working set, the point and all scratch of the iterations, reused across the instances
/// a worker solves (sized on first use, then no allocation per instance).
#[derive(Debug, Default)]
pub(crate) struct PrimalDual {
    /// The solution after a successful [`PrimalDual::solve`].
    pub x: Vec<f64>,
    place: Vec<Place>,
    row: Vec<Active>,
    /// Box, kink, linear coefficient and specific variance of each variable.
    info: Vec<VarInfo>,
    /// Row multipliers (Lagrangian `f + λ'(A x - b)`), zero for inactive rows.
    lam: Vec<f64>,
    /// `|u_j|²`, `Q_jj` and its inverse.
    usq: Vec<f64>,
    qdiag: Vec<f64>,
    inv_q: Vec<f64>,
    /// `max_j Q_jj`, turning row violations into gradient units.
    qmax: f64,
    /// Whether any variable has a turnover kink.
    kinks: bool,
    /// The linear term of the diagonal model, and the places of its first optimum.
    lin: Vec<f64>,
    start_place: Vec<Place>,
    /// `U'x`.
    ux: Vec<f64>,
    // Sums over the free set S, with D = diag(d): P = U_S'D⁻¹U_S (k x k),
    // R = A_S D⁻¹ U_S (m x k), T = A_S D⁻¹ A_S' (m x m).
    in_s: Vec<bool>,
    p: Vec<f64>,
    r: Vec<f64>,
    t: Vec<f64>,
    /// What the sums were last built from (`gamma`, `U`, `d`, `A`), set when a solve settles:
    /// a warm start over the same data keeps the sums and updates them by the variables that
    /// change place, instead of rebuilding them from every free variable.
    sums_of: Vec<f64>,
    rows_e: Vec<usize>,
    /// The KKT matrix of a solve (free-space or factor form), then its Cholesky factor.
    lu: Vec<f64>,
    small: Vec<f64>,
    /// `U_F' x_F`, the held variables' share of `U'x`.
    v: Vec<f64>,
    /// `u_a'u_b` by `(a, b)` (row-major, `a > b`), filled as pairs are first needed; an entry
    /// is current when its stamp is this instance's (so no `n²` reset per instance).
    gram: Vec<f64>,
    gram_stamp: Vec<u32>,
    stamp: u32,
    /// The free and the held variables of the working set.
    fs: Vec<usize>,
    hs: Vec<usize>,
    /// `r2 = b_E - E_F x_F` of the active rows, and their multipliers `λ`.
    rhs2: Vec<f64>,
    mu: Vec<f64>,
    zmat: Vec<f64>,
    schur: Vec<f64>,
    changes: Vec<Change>,
    held_now: Vec<(usize, Place, f64)>,
    waiting: Vec<Change>,
    basis: Vec<f64>,
    basis_len: usize,
    seen: Vec<u64>,
    /// The working set of the last solve that settled, for a warm start.
    settled_place: Vec<Place>,
    settled_row: Vec<Active>,
}

impl PrimalDual {
    /// Solve `qp` with Hessian `f`: `Ok(solves)` with the optimum in `self.x`, or
    /// `Err(solves)` when the iterations did not settle (within `max_iter` solves, or because
    /// they cycled or got stuck).
    /// `warm`: start from the working set this solver settled on last (a nearby problem over
    /// the same variables, e.g. the next penalty of a tracking-error budget search) instead
    /// of the diagonal model's; ignored when that working set does not fit `qp`. A warm start
    /// over the same quadratic and rows also keeps the factor form's sums. Only the
    /// iteration count (and rounding in the sums) depends on the start: the end is the exact
    /// optimum either way.
    pub fn solve(
        &mut self,
        qp: &Problem,
        f: &Factor,
        max_iter: u32,
        warm: bool,
    ) -> Result<u32, u32> {
        let keep_sums = warm && self.sums_fit(qp, f);
        self.reset(qp, f, keep_sums);
        if !(warm && self.restore_settled(qp)) {
            self.start(qp, f);
        }
        let scale = qp.scale(self.qdiag.iter().copied());
        let tol = 1e-12 * scale;
        let mut pace = Pace::All;
        for it in 1..=max_iter {
            if !self.solve_working_set(qp, f) {
                return Err(it);
            }
            self.propose(qp, f, tol);
            if self.changes.is_empty() {
                self.clip(qp);
                self.settled_place.clone_from(&self.place);
                self.settled_row.clone_from(&self.row);
                self.record_sums_data(qp, f);
                return Ok(it);
            }
            let key = self.fingerprint();
            if self.seen.contains(&key) {
                // A cycle: slow down once; a second cycle is left to the primal method.
                if pace == Pace::Largest {
                    return Err(it);
                }
                pace = Pace::Largest;
                self.seen.clear();
            }
            self.seen.push(key);
            if pace == Pace::Largest {
                self.keep_largest_change();
            }
            if !self.apply(qp) {
                return Err(it);
            }
        }
        Err(max_iter)
    }

    /// Put the last settled working set in place if it fits `qp`: the same sizes, and every
    /// variable held at a finite value or free in a segment it has.
    fn restore_settled(&mut self, qp: &Problem) -> bool {
        let fits = self.settled_place.len() == qp.n
            && self.settled_row.len() == qp.m
            && self.settled_row.first() == Some(&Active::Lower)
            && self.settled_place.iter().zip(&self.info).all(|(&p, v)| {
                let needs_kink = matches!(p, Place::Kink | Place::Below);
                (!needs_kink || v.range.has_kink())
                    && v.range.value(p).is_none_or(|x| x.is_finite())
            });
        if fits {
            self.place.clone_from(&self.settled_place);
            self.row.clone_from(&self.settled_row);
        }
        fits
    }

    /// Whether the factor form's sums were built from `qp`'s rows and `f` (and still match
    /// the free set in `in_s`): the data of the last settled solve, compared value by value.
    fn sums_fit(&self, qp: &Problem, f: &Factor) -> bool {
        let (n, k, m) = (qp.n, f.k, qp.m);
        let Some(parts) = sums_data(qp, f) else {
            return false;
        };
        self.in_s.len() == n
            && (self.p.len(), self.r.len(), self.t.len()) == (k * k, m * k, m * m)
            && self.sums_of.first() == Some(&f.gamma)
            && self.sums_of[1..]
                .iter()
                .eq(parts.iter().flat_map(|p| p.iter()))
    }

    fn record_sums_data(&mut self, qp: &Problem, f: &Factor) {
        self.sums_of.clear();
        if let Some(parts) = sums_data(qp, f) {
            self.sums_of.push(f.gamma);
            parts.iter().for_each(|p| self.sums_of.extend_from_slice(p));
        }
    }

    /// The places of the last working set.
    pub fn places(&self) -> &[Place] {
        &self.place
    }

    /// Buffers sized for `qp`; the factor form's sums emptied unless `keep_sums`.
    fn reset(&mut self, qp: &Problem, f: &Factor, keep_sums: bool) {
        let (n, k, m) = (qp.n, f.k, qp.m);
        self.x.clear();
        self.x.resize(n, 0.0);
        self.place.clear();
        self.place.resize(n, Place::Lower);
        self.row.clear();
        self.row.resize(m, Active::No);
        self.row[0] = Active::Lower;
        self.info.clear();
        self.info.extend((0..n).map(|j| VarInfo {
            range: qp.range(j),
            c: qp.c[j],
            d: f.d[j],
        }));
        self.lam.clear();
        self.lam.resize(m, 0.0);
        self.usq.clear();
        self.usq.extend((0..n).map(|j| dot(f.uj(j), f.uj(j))));
        self.qdiag.clear();
        self.qdiag
            .extend((0..n).map(|j| f.gamma * (f.d[j] + self.usq[j])));
        self.inv_q.clear();
        self.inv_q.extend(self.qdiag.iter().map(|q| 1.0 / q));
        self.qmax = self.qdiag.iter().fold(0.0f64, |s, &q| s.max(q));
        self.kinks = (0..n).any(|j| qp.range(j).has_kink());
        self.ux.clear();
        self.ux.resize(k, 0.0);
        self.v.clear();
        self.v.resize(k, 0.0);
        // Until this solve settles, its sums are not a warm start's.
        self.sums_of.clear();
        if !keep_sums {
            self.in_s.clear();
            self.in_s.resize(n, false);
            for (buf, len) in [
                (&mut self.p, k * k),
                (&mut self.r, m * k),
                (&mut self.t, m * m),
            ] {
                buf.clear();
                buf.resize(len, 0.0);
            }
        }
        self.seen.clear();
        if n <= GRAM_CACHE_MAX {
            self.gram.resize(self.gram.len().max(n * n), 0.0);
            self.gram_stamp.resize(self.gram_stamp.len().max(n * n), 0);
            self.stamp = self.stamp.wrapping_add(1);
            if self.stamp == 0 {
                // After 2^32 instances: clear the stamps once rather than trust old ones.
                self.gram_stamp.iter_mut().for_each(|s| *s = 0);
                self.stamp = 1;
            }
        }
    }

    /// The start: the places of the optimum of the diagonal model (`Q` replaced by its
    /// diagonal, groups ignored), or of one Jacobi sweep from it (the diagonal model again,
    /// with the off-diagonal part of `Q x` at that optimum moved into the linear term: a
    /// proximal-gradient step with the diagonal of `Q` as metric), whichever point has the
    /// lower objective. Both points meet the budget and the boxes; the sweep usually saves
    /// more than one KKT solve for the cost of a fraction of one.
    fn start(&mut self, qp: &Problem, f: &Factor) {
        self.lin.clear();
        self.lin.extend_from_slice(&qp.c);
        let nu = self.diagonal_solve(qp, None);
        self.set_ux(f);
        let first = self.objective(qp, f);
        self.start_place.clone_from(&self.place);
        for j in 0..qp.n {
            let off = f.gamma * (dot(f.uj(j), &self.ux) - self.usq[j] * self.x[j]);
            self.lin[j] = qp.c[j] - off;
        }
        self.diagonal_solve(qp, Some(nu));
        self.set_ux(f);
        if self.objective(qp, f) > first {
            self.place.clone_from(&self.start_place);
        }
    }

    /// `ux = U'x` from scratch.
    fn set_ux(&mut self, f: &Factor) {
        self.ux.iter_mut().for_each(|v| *v = 0.0);
        for (j, &x) in self.x.iter().enumerate() {
            if x != 0.0 {
                for (acc, &ua) in self.ux.iter_mut().zip(f.uj(j)) {
                    *acc += ua * x;
                }
            }
        }
    }

    /// `0.5 x'Qx - c'x + turnover` at `self.x`, with `ux = U'x` already in place.
    fn objective(&self, qp: &Problem, f: &Factor) -> f64 {
        let mut value = 0.5 * f.gamma * dot(&self.ux, &self.ux);
        for j in 0..qp.n {
            let x = self.x[j];
            value +=
                x * (0.5 * f.gamma * f.d[j] * x - qp.c[j]) + qp.cost[j] * (x - qp.kink[j]).abs();
        }
        value
    }

    /// The optimum of `0.5 x' diag(Q) x - lin'x + turnover` under the budget and the boxes
    /// into `x` and `place`, returning its budget multiplier `ν`: `x_j(ν)` is a clipped soft
    /// threshold, and `sum x(ν) = target` is solved for `ν` by Newton steps (from `guess`)
    /// kept inside a shrinking bracket (the sum is monotone and piecewise linear in `ν`, so
    /// this ends in a few steps).
    fn diagonal_solve(&mut self, qp: &Problem, guess: Option<f64>) -> f64 {
        let n = qp.n;
        let target = qp.rlo[0];
        let (mut below, mut above) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut num, mut den) = (0.0, 0.0);
        let coefs = self
            .lin
            .iter()
            .zip(&qp.cost)
            .zip(self.qdiag.iter().zip(&self.inv_q));
        for (((&c, &cost), (&q, &inv_q)), (&lo, &hi)) in coefs.zip(qp.lo.iter().zip(&qp.hi)) {
            let (at_hi, at_lo) = (c - cost - q * hi, c + cost - q * lo);
            below = if at_hi < below { at_hi } else { below };
            above = if at_lo > above { at_lo } else { above };
            num += c * inv_q;
            den += inv_q;
        }
        // f(ν) = sum x(ν) - target is known at the bracket ends: every x at hi, every x at lo.
        let mut f_below = qp.hi.iter().sum::<f64>() - target;
        let mut f_above = qp.lo.iter().sum::<f64>() - target;
        // Into the bracket, by comparisons that cannot panic on NaN (overflowing data).
        let mut nu = guess.unwrap_or((num - target) / den);
        if nu.is_nan() || nu < below {
            nu = below;
        }
        if nu > above {
            nu = above;
        }
        // The sum's rounding: once Newton lands on the root's linear piece, `f` is of this size
        // and further steps only shrink the bracket.
        let rounding = 8.0 * n as f64 * f64::EPSILON * (1.0 + target.abs());
        for _ in 0..60 {
            let (sum, slope) = self.diagonal_sum(qp, nu);
            let f = sum - target;
            if f.abs() <= rounding {
                break;
            }
            if f > 0.0 {
                (below, f_below) = (nu, f);
            } else {
                (above, f_above) = (nu, f);
            }
            if above - below <= 1e-15 * (1.0 + nu.abs()) {
                break;
            }
            // Newton inside the bracket, else the secant of its ends (exact on one linear
            // piece), else its middle.
            let newton = nu - f / slope;
            let secant = below - f_below * (above - below) / (f_above - f_below);
            let inside = |t: f64| t > below && t < above;
            nu = if slope < 0.0 && inside(newton) {
                newton
            } else if inside(secant) {
                secant
            } else {
                0.5 * (below + above)
            };
        }
        let mut any_free = false;
        for j in 0..n {
            let (x, place) = self.diagonal_point(qp, j, nu);
            self.place[j] = place;
            self.x[j] = x;
            any_free |= place.is_free();
        }
        if !any_free {
            // Every name at a bound or kink (the budget met exactly by them): free the one
            // closest to moving, so that the budget row has a free variable.
            let mut nearest = (f64::INFINITY, 0);
            for j in 0..n {
                let outside = self.diagonal_outside(qp, j, nu);
                if outside < nearest.0 {
                    nearest = (outside, j);
                }
            }
            let j = nearest.1;
            self.place[j] = qp.range(j).side_of(self.x[j]);
        }
        nu
    }

    /// `(sum_j x_j(ν), d/dν sum_j x_j(ν))` of the diagonal model.
    fn diagonal_sum(&self, qp: &Problem, nu: f64) -> (f64, f64) {
        let (mut sum, mut slope) = (0.0, 0.0);
        if !self.kinks {
            // The common case in one tight pass: a clipped line per variable.
            let rows = self
                .lin
                .iter()
                .zip(&self.inv_q)
                .zip(qp.lo.iter().zip(&qp.hi));
            for ((&lin, &inv_q), (&lo, &hi)) in rows {
                let raw = (lin - nu) * inv_q;
                let inside = (raw > lo) & (raw < hi);
                sum += if raw <= lo {
                    lo
                } else if raw >= hi {
                    hi
                } else {
                    raw
                };
                slope -= inv_q * f64::from(u8::from(inside));
            }
            return (sum, slope);
        }
        for j in 0..qp.n {
            let (x, place) = self.diagonal_point(qp, j, nu);
            sum += x;
            if place.is_free() {
                slope -= self.inv_q[j];
            }
        }
        (sum, slope)
    }

    /// The unclipped minimiser of the diagonal model for variable `j` at budget multiplier
    /// `ν`, or `None` when it sits at the kink (the soft threshold's dead zone).
    fn diagonal_raw(&self, qp: &Problem, j: usize, nu: f64) -> Option<f64> {
        let (q, inv_q) = (self.qdiag[j], self.inv_q[j]);
        let r = qp.range(j);
        let v = self.lin[j] - nu;
        if !r.has_kink() {
            Some(v * inv_q)
        } else if v - r.cost > q * r.kink {
            Some((v - r.cost) * inv_q)
        } else if v + r.cost < q * r.kink {
            Some((v + r.cost) * inv_q)
        } else {
            None
        }
    }

    /// The diagonal model's minimiser for variable `j` at budget multiplier `ν`, and its place.
    fn diagonal_point(&self, qp: &Problem, j: usize, nu: f64) -> (f64, Place) {
        let (lo, hi) = (qp.lo[j], qp.hi[j]);
        let raw = if self.kinks {
            match self.diagonal_raw(qp, j, nu) {
                Some(raw) => raw,
                None => return (qp.kink[j], Place::Kink),
            }
        } else {
            (self.lin[j] - nu) * self.inv_q[j]
        };
        if raw <= lo {
            (lo, Place::Lower)
        } else if raw >= hi {
            (hi, Place::Upper)
        } else {
            (raw, qp.range(j).side_of(raw))
        }
    }

    /// How far the diagonal model's unconstrained minimiser for `j` lies outside the variable's
    /// segment (in the budget multiplier's units over `Q_jj`).
    fn diagonal_outside(&self, qp: &Problem, j: usize, nu: f64) -> f64 {
        let r = qp.range(j);
        match self.diagonal_raw(qp, j, nu) {
            None => {
                let v = self.lin[j] - nu;
                ((v - self.qdiag[j] * r.kink).abs() - r.cost).abs() * self.inv_q[j]
            }
            Some(raw) => (r.lo - raw).max(raw - r.hi).max(0.0),
        }
    }

    /// The KKT point of the working set: `x`, the row multipliers `lam` and `ux = U'x`;
    /// `false` when its KKT system is singular. With few free variables the free-space form
    /// is cheaper, with many the factor form.
    fn solve_working_set(&mut self, qp: &Problem, f: &Factor) -> bool {
        let (n, m, k) = (qp.n, qp.m, f.k);
        self.rows_e.clear();
        self.rows_e
            .extend((0..m).filter(|&r| self.row[r] != Active::No));
        self.fs.clear();
        self.hs.clear();
        for j in 0..n {
            if self.place[j].is_free() {
                self.fs.push(j);
            } else {
                self.hs.push(j);
            }
        }
        self.held_part(qp, f);
        let ok = if self.fs.len() <= k {
            self.solve_free_space(qp, f)
        } else {
            self.sync_sums(qp, f);
            self.solve_factor_form(qp, f)
        };
        if !ok {
            return false;
        }
        self.ux.copy_from_slice(&self.v);
        for &j in &self.fs {
            let xj = self.x[j];
            for (acc, &ua) in self.ux.iter_mut().zip(f.uj(j)) {
                *acc += ua * xj;
            }
        }
        self.lam.iter_mut().for_each(|l| *l = 0.0);
        for (e, &r) in self.rows_e.iter().enumerate() {
            self.lam[r] = self.mu[e];
        }
        true
    }

    /// The held variables' values into `x`, `v = U_F' x_F`, and `r2 = b_E - E_F x_F` for the
    /// active rows (in `rhs2`).
    fn held_part(&mut self, qp: &Problem, f: &Factor) {
        let n = qp.n;
        self.v.iter_mut().for_each(|x| *x = 0.0);
        self.rhs2.clear();
        self.rhs2.extend(self.rows_e.iter().map(|&r| {
            if self.row[r] == Active::Upper {
                qp.rhi[r]
            } else {
                qp.rlo[r]
            }
        }));
        for &j in &self.hs {
            let xj = self.info[j].range.value(self.place[j]).unwrap_or(0.0);
            self.x[j] = xj;
            if xj != 0.0 {
                for (acc, &ua) in self.v.iter_mut().zip(f.uj(j)) {
                    *acc += ua * xj;
                }
                for (e, &r) in self.rows_e.iter().enumerate() {
                    self.rhs2[e] -= qp.a[r * n + j] * xj;
                }
            }
        }
    }

    /// `r1_j = c_j/γ - u_j'v` of free variable `j` (its linear term less the held variables'
    /// share of its gradient, over γ).
    fn r1(&self, f: &Factor, j: usize) -> f64 {
        let v = &self.info[j];
        v.range.linear(v.c, self.place[j]) / f.gamma - dot(f.uj(j), &self.v)
    }

    /// The KKT system over the free variables, `[H_S E'; E 0] [x_S; λ] = [γ r1; r2]` with
    /// `H_S = γ (D_S + U_S U_S')`, solved through the Cholesky factor `L` of `H_S / γ` and
    /// the Schur complement `Z'Z`, `Z = L⁻¹E'` (positive definite when the active rows are
    /// independent on the free set). Multipliers `λ = γ μ`.
    fn solve_free_space(&mut self, qp: &Problem, f: &Factor) -> bool {
        let (n, ns, ne) = (qp.n, self.fs.len(), self.rows_e.len());
        self.lu.clear();
        self.lu.resize(ns * ns, 0.0);
        for a in 0..ns {
            let ja = self.fs[a];
            for b in 0..a {
                let entry = self.gram_entry(f, n, ja, self.fs[b]);
                self.lu[a * ns + b] = entry;
            }
            self.lu[a * ns + a] = self.usq[ja] + f.d[ja];
        }
        if !cholesky_factor(&mut self.lu, ns) {
            return false;
        }
        // z1 = L⁻¹ r1 (in `small`), Z = L⁻¹E' (row e of `zmat` is column e of Z).
        self.small.clear();
        for a in 0..ns {
            let r1 = self.r1(f, self.fs[a]);
            self.small.push(r1);
        }
        forward_sub(&self.lu, ns, &mut self.small);
        self.zmat.clear();
        for &r in &self.rows_e {
            self.zmat.extend(self.fs.iter().map(|&j| qp.a[r * n + j]));
        }
        for col in self.zmat.chunks_exact_mut(ns.max(1)).take(ne) {
            forward_sub(&self.lu, ns, col);
        }
        // S μ = Z'z1 - r2 with S = Z'Z (lower triangle in `schur`).
        self.schur.clear();
        self.schur.resize(ne * ne, 0.0);
        self.mu.clear();
        for e in 0..ne {
            let ze = &self.zmat[e * ns..(e + 1) * ns];
            for e2 in 0..=e {
                self.schur[e * ne + e2] = dot(ze, &self.zmat[e2 * ns..(e2 + 1) * ns]);
            }
            self.mu.push(dot(ze, &self.small) - self.rhs2[e]);
        }
        if !cholesky_factor(&mut self.schur, ne) {
            return false;
        }
        cholesky_solve(&self.schur, ne, &mut self.mu);
        // x_S = L⁻ᵀ (z1 - Z μ).
        for (e, &mu) in self.mu.iter().enumerate() {
            for (z, &ze) in self.small.iter_mut().zip(&self.zmat[e * ns..(e + 1) * ns]) {
                *z -= ze * mu;
            }
        }
        back_sub(&self.lu, ns, &mut self.small);
        for (a, &j) in self.fs.iter().enumerate() {
            self.x[j] = self.small[a];
        }
        for mu in &mut self.mu {
            *mu *= f.gamma;
        }
        true
    }

    /// `u_a'u_b` (`a > b`), computed once per pair and instance where the cache applies: the
    /// free sets of consecutive iterations overlap a lot.
    fn gram_entry(&mut self, f: &Factor, n: usize, a: usize, b: usize) -> f64 {
        if n > GRAM_CACHE_MAX {
            return dot(f.uj(a), f.uj(b));
        }
        let at = a * n + b;
        if self.gram_stamp[at] != self.stamp {
            self.gram[at] = dot(f.uj(a), f.uj(b));
            self.gram_stamp[at] = self.stamp;
        }
        self.gram[at]
    }

    /// Bring `P`, `R`, `T` in line with the free set, one rank-one term per variable that
    /// entered or left it since the last factor-form solve. `P` and `T` are symmetric and
    /// only their lower triangles are read ([`PrimalDual::solve_factor_form`]): only those
    /// are kept.
    fn sync_sums(&mut self, qp: &Problem, f: &Factor) {
        let (n, k, m) = (qp.n, f.k, qp.m);
        for j in 0..n {
            let free = self.place[j].is_free();
            if free == self.in_s[j] {
                continue;
            }
            self.in_s[j] = free;
            let w = if free { 1.0 } else { -1.0 } / f.d[j];
            let uj = f.uj(j);
            for (a, (prow, &ua)) in self.p.chunks_exact_mut(k.max(1)).zip(uj).enumerate() {
                let s = w * ua;
                for (x, &ub) in prow[..=a].iter_mut().zip(uj) {
                    *x += s * ub;
                }
            }
            for r in 0..m {
                let arj = qp.a[r * n + j];
                if arj == 0.0 {
                    continue;
                }
                let s = w * arj;
                for (x, &ua) in self.r[r * k..(r + 1) * k].iter_mut().zip(uj) {
                    *x += s * ua;
                }
                for r2 in 0..=r {
                    self.t[r * m + r2] += s * qp.a[r2 * n + j];
                }
            }
        }
    }

    /// The KKT system in factor form. With `y = U_S' x_S` and `λ = γ μ`, eliminating `x_S`
    /// through `D_S` leaves the `k + rows` system
    ///
    /// ```text
    /// [I + U'D⁻¹U   U'D⁻¹E'] [y]   [U'D⁻¹ r1       ]
    /// [E D⁻¹U       E D⁻¹E'] [μ] = [E D⁻¹ r1 - r2  ]
    /// ```
    ///
    /// (sums over the free set, kept by [`PrimalDual::sync_sums`]) and `x_S = D⁻¹ (r1 - U y -
    /// E'μ)`: an exact reformulation. Its matrix is positive definite (its Schur complement is
    /// `E (D + U U')⁻¹ E'`) when the active rows are independent on the free set.
    fn solve_factor_form(&mut self, qp: &Problem, f: &Factor) -> bool {
        let (n, k, m) = (qp.n, f.k, qp.m);
        let ne = self.rows_e.len();
        let dim = k + ne;
        // The lower triangle of the matrix.
        self.lu.clear();
        self.lu.resize(dim * dim, 0.0);
        for a in 0..k {
            self.lu[a * dim..a * dim + a + 1].copy_from_slice(&self.p[a * k..a * k + a + 1]);
            self.lu[a * dim + a] += 1.0;
        }
        for (e, &r) in self.rows_e.iter().enumerate() {
            let row = (k + e) * dim;
            self.lu[row..row + k].copy_from_slice(&self.r[r * k..(r + 1) * k]);
            for (e2, &r2) in self.rows_e[..=e].iter().enumerate() {
                self.lu[row + k + e2] = self.t[r * m + r2];
            }
        }
        if !cholesky_factor(&mut self.lu, dim) {
            return false;
        }
        self.small.clear();
        self.small.resize(k, 0.0);
        self.small.extend(self.rhs2.iter().map(|r2| -r2));
        for &j in &self.fs {
            let r1 = self.r1(f, j);
            // Kept in x for the back substitution.
            self.x[j] = r1;
            let s = r1 / f.d[j];
            for (acc, &ua) in self.small[..k].iter_mut().zip(f.uj(j)) {
                *acc += ua * s;
            }
            for (e, &r) in self.rows_e.iter().enumerate() {
                self.small[k + e] += qp.a[r * n + j] * s;
            }
        }
        cholesky_solve(&self.lu, dim, &mut self.small);
        for &j in &self.fs {
            let mut s = self.x[j] - dot(f.uj(j), &self.small[..k]);
            for (e, &r) in self.rows_e.iter().enumerate() {
                s -= qp.a[r * n + j] * self.small[k + e];
            }
            self.x[j] = s / f.d[j];
        }
        self.mu.clear();
        self.mu
            .extend(self.small[k..].iter().map(|mu| f.gamma * mu));
        true
    }

    /// Every violated constraint and wrong-signed multiplier at the current point, as changes.
    fn propose(&mut self, qp: &Problem, f: &Factor, tol: f64) {
        let (n, m) = (qp.n, qp.m);
        self.changes.clear();
        for &j in &self.fs {
            let (low, at_low, high, at_high) = self.info[j].range.segment(self.place[j]);
            let x = self.x[j];
            let room = 1e-12 * (1.0 + low.abs().max(high.abs()));
            if x < low - room {
                let size = (low - x) * self.qdiag[j];
                self.changes.push(Change::Var(j, at_low, size));
            } else if x > high + room {
                let size = (x - high) * self.qdiag[j];
                self.changes.push(Change::Var(j, at_high, size));
            }
        }
        for &j in &self.hs {
            let place = self.place[j];
            let VarInfo { range, c, d } = self.info[j];
            let mut glam = f.gamma * (dot(f.uj(j), &self.ux) + d * self.x[j]) - c;
            for &r in &self.rows_e {
                glam += self.lam[r] * qp.a[r * n + j];
            }
            let (up, down) = range.release_gain(place, glam);
            if up > tol && up >= down {
                self.changes
                    .push(Change::Var(j, range.released(place, true), up));
            } else if down > tol {
                self.changes
                    .push(Change::Var(j, range.released(place, false), down));
            }
        }
        let qmax = self.qmax;
        for r in 1..m {
            match self.row[r] {
                Active::No => {
                    let ax = dot(qp.row(r), &self.x);
                    let room = 1e-12 * (1.0 + ax.abs());
                    if ax > qp.rhi[r] + room {
                        let size = (ax - qp.rhi[r]) * qmax;
                        self.changes.push(Change::Row(r, Active::Upper, size));
                    } else if ax < qp.rlo[r] - room {
                        let size = (qp.rlo[r] - ax) * qmax;
                        self.changes.push(Change::Row(r, Active::Lower, size));
                    }
                }
                side => {
                    let lam = self.lam[r];
                    let wrong = if side == Active::Upper { -lam } else { lam };
                    if wrong > tol && qp.rlo[r] != qp.rhi[r] {
                        self.changes.push(Change::Row(r, Active::No, wrong));
                    }
                }
            }
        }
    }

    /// A hash of the working set (FNV-1a over the places and row states).
    fn fingerprint(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let codes = self
            .place
            .iter()
            .map(|&p| p as u8)
            .chain(self.row.iter().map(|&r| r as u8 | 0x10));
        for b in codes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    /// Keep only the largest proposed change (the first one on ties).
    fn keep_largest_change(&mut self) {
        let mut best = 0;
        for (i, c) in self.changes.iter().enumerate() {
            if c.size() > self.changes[best].size() {
                best = i;
            }
        }
        let keep = self.changes[best];
        self.changes.clear();
        self.changes.push(keep);
    }

    /// Apply the proposed changes with the safeguards of the module docs; `false` when no
    /// change could be made (the iterations are stuck).
    fn apply(&mut self, qp: &Problem) -> bool {
        let mut changed = false;
        self.held_now.clear();
        for i in 0..self.changes.len() {
            match self.changes[i] {
                Change::Var(j, place, size) => {
                    if self.place[j].is_free() && !place.is_free() {
                        self.held_now.push((j, self.place[j], size));
                    }
                    self.place[j] = place;
                    changed = true;
                }
                Change::Row(r, Active::No, _) => {
                    self.row[r] = Active::No;
                    changed = true;
                }
                Change::Row(..) => {}
            }
        }
        if !self.place.iter().any(|p| p.is_free()) {
            // The budget needs a free variable: keep the least violated one free.
            let mut keep = None;
            for &(j, old, size) in &self.held_now {
                if keep.is_none_or(|(_, _, s)| size < s) {
                    keep = Some((j, old, size));
                }
            }
            let Some((j, old, _)) = keep else {
                return false;
            };
            self.place[j] = old;
        }
        changed |= self.admit_rows(qp);
        if !changed {
            changed = self.release_for_waiting_row(qp);
        }
        changed
    }

    /// Keep the active rows independent on the new free set (dropping, in index order, any
    /// that became dependent) and activate the violated rows that stay independent, largest
    /// violation first; the others wait in `self.waiting`. Whether any row changed.
    fn admit_rows(&mut self, qp: &Problem) -> bool {
        let proposed = self.changes.iter().any(|c| matches!(c, Change::Row(..)));
        if !proposed && self.row[1..].iter().all(|&r| r == Active::No) {
            // The budget alone: independent whenever a variable is free, which `apply` ensures.
            self.waiting.clear();
            return false;
        }
        let mut changed = false;
        self.basis_len = 0;
        self.add_to_basis(qp, 0);
        for r in 1..qp.m {
            if self.row[r] != Active::No && !self.add_to_basis(qp, r) && qp.rlo[r] != qp.rhi[r] {
                self.row[r] = Active::No;
                changed = true;
            }
        }
        self.waiting.clear();
        self.waiting.extend(
            self.changes
                .iter()
                .filter(|c| matches!(c, Change::Row(_, side, _) if *side != Active::No)),
        );
        // Largest first, index order on ties (a stable sort keeps the proposal order).
        self.waiting.sort_by(|a, b| b.size().total_cmp(&a.size()));
        let mut i = 0;
        while i < self.waiting.len() {
            let Change::Row(r, side, _) = self.waiting[i] else {
                i += 1;
                continue;
            };
            if self.add_to_basis(qp, r) {
                self.row[r] = side;
                changed = true;
                self.waiting.remove(i);
            } else {
                i += 1;
            }
        }
        changed
    }

    /// When only dependent rows are violated: release the members of the most violated one
    /// that are held at the bound (or kink) pushing its violation, then admit it if it is now
    /// independent. Whether anything changed.
    fn release_for_waiting_row(&mut self, qp: &Problem) -> bool {
        let Some(&Change::Row(r, side, _)) = self.waiting.first() else {
            return false;
        };
        let n = qp.n;
        // Upper: a_r x is too large, so members with a_rj > 0 should move down.
        let sign = if side == Active::Upper { -1.0 } else { 1.0 };
        let mut released = false;
        for j in 0..n {
            let dir = sign * qp.a[r * n + j];
            if dir == 0.0 {
                continue;
            }
            let place = self.place[j];
            let movable = match place {
                Place::Lower => dir > 0.0,
                Place::Upper => dir < 0.0,
                Place::Kink => true,
                Place::Below | Place::Above => false,
            };
            if movable {
                self.place[j] = qp.range(j).released(place, dir > 0.0);
                released = true;
            }
        }
        if !released {
            return false;
        }
        self.basis_len = 0;
        for r2 in 0..qp.m {
            if self.row[r2] != Active::No {
                self.add_to_basis(qp, r2);
            }
        }
        if self.add_to_basis(qp, r) {
            self.row[r] = side;
        }
        true
    }

    /// Add row `r`, restricted to the free set, to the orthonormal basis of the active rows
    /// (modified Gram-Schmidt, twice); `false` when it is dependent on the basis.
    fn add_to_basis(&mut self, qp: &Problem, r: usize) -> bool {
        let n = qp.n;
        let start = self.basis_len * n;
        self.basis.resize(start + n, 0.0);
        let (done, v) = self.basis.split_at_mut(start);
        for j in 0..n {
            v[j] = if self.place[j].is_free() {
                qp.a[r * n + j]
            } else {
                0.0
            };
        }
        let before = dot(v, v).sqrt();
        for _ in 0..2 {
            for b in done.chunks_exact(n.max(1)) {
                let h = dot(b, v);
                for (x, y) in v.iter_mut().zip(b) {
                    *x -= h * y;
                }
            }
        }
        let after = dot(v, v).sqrt();
        if after > DEPENDENT * before && after > 0.0 {
            v.iter_mut().for_each(|x| *x /= after);
            self.basis_len += 1;
            true
        } else {
            false
        }
    }

    /// Round the final point into its places: held variables exactly at their values, free
    /// ones inside their segments (they may be outside by rounding only).
    fn clip(&mut self, qp: &Problem) {
        for j in 0..qp.n {
            self.x[j] = self.info[j].range.clip(self.x[j], self.place[j]);
        }
    }
}
