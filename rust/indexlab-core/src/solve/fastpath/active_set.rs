//! A small dense primal active-set method for convex QPs with box bounds and a few general rows:
//!
//! ```text
//! minimise 0.5 x'Qx - c'x   s.t.  lo <= x <= hi,  rlo <= A x <= rhi
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

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

/// Which bound of a variable or row is in the working set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Active {
    /// Not in the working set (a free variable, an inactive row).
    No,
    Lower,
    Upper,
}

/// The Hessian: dense, or `γ (U U' + diag d)` with `d > 0` (factor form; `U = F L` where
/// `Ω = L L'`), whose KKT systems reduce to `k + rows` unknowns by eliminating the diagonal.
pub(crate) enum Hessian {
    /// Row-major `n x n`.
    Dense(Vec<f64>),
    /// `u` is `n x k` row-major, `d` strictly positive.
    Factor {
        gamma: f64,
        k: usize,
        u: Vec<f64>,
        d: Vec<f64>,
    },
}

/// A convex QP; `a` is row-major.
pub(crate) struct Qp {
    pub n: usize,
    pub q: Hessian,
    pub c: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub m: usize,
    pub a: Vec<f64>,
    pub rlo: Vec<f64>,
    pub rhi: Vec<f64>,
}

/// Point and working set; the caller supplies a vertex with a nonsingular KKT system.
pub(crate) struct State {
    pub x: Vec<f64>,
    pub var: Vec<Active>,
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
    fn scale(&self) -> f64 {
        let mut s = 1.0f64;
        for &v in &self.c {
            s = s.max(v.abs());
        }
        for i in 0..self.n {
            s = s.max(self.q_entry(i, i).abs());
        }
        s
    }

    fn q_entry(&self, i: usize, j: usize) -> f64 {
        match &self.q {
            Hessian::Dense(q) => q[i * self.n + j],
            Hessian::Factor { gamma, k, u, d } => {
                let s = dot(&u[i * k..(i + 1) * k], &u[j * k..(j + 1) * k]);
                gamma * (s + if i == j { d[i] } else { 0.0 })
            }
        }
    }

    /// `out = Q x`.
    fn q_mul(&self, x: &[f64], out: &mut [f64]) {
        match &self.q {
            Hessian::Dense(q) => {
                for i in 0..self.n {
                    out[i] = dot(&q[i * self.n..(i + 1) * self.n], x);
                }
            }
            Hessian::Factor { gamma, k, u, d } => {
                let k = *k;
                let mut ux = vec![0.0; k];
                // `k.max(1)`: with no factors `u` is empty and so is the loop.
                for (ui, &xi) in u.chunks_exact(k.max(1)).zip(x) {
                    if xi != 0.0 {
                        for (acc, &v) in ux.iter_mut().zip(ui) {
                            *acc += v * xi;
                        }
                    }
                }
                for i in 0..self.n {
                    out[i] = gamma * (dot(&u[i * k..(i + 1) * k], &ux) + d[i] * x[i]);
                }
            }
        }
    }

    fn gradient(&self, x: &[f64], g: &mut [f64]) {
        self.q_mul(x, g);
        for i in 0..self.n {
            g[i] -= self.c[i];
        }
    }

    fn row(&self, r: usize) -> &[f64] {
        &self.a[r * self.n..(r + 1) * self.n]
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Dense LU with partial pivoting, in place; `false` when a pivot is negligible.
fn lu_factor(a: &mut [f64], n: usize, piv: &mut [usize]) -> bool {
    let mut amax = 0.0f64;
    for v in a.iter() {
        amax = amax.max(v.abs());
    }
    let tiny = 1e-14 * amax.max(f64::MIN_POSITIVE);
    for k in 0..n {
        let mut p = k;
        let mut best = a[k * n + k].abs();
        for i in k + 1..n {
            let v = a[i * n + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if best <= tiny {
            return false;
        }
        piv[k] = p;
        if p != k {
            for j in 0..n {
                a.swap(k * n + j, p * n + j);
            }
        }
        let d = a[k * n + k];
        // Rows as slices (row k above row i), so the update runs without bounds checks.
        let (top, bottom) = a[..n * n].split_at_mut((k + 1) * n);
        let rowk = &top[k * n + k + 1..(k + 1) * n];
        for rowi in bottom.chunks_exact_mut(n) {
            let f = rowi[k] / d;
            rowi[k] = f;
            if f != 0.0 {
                for (x, &y) in rowi[k + 1..].iter_mut().zip(rowk) {
                    *x -= f * y;
                }
            }
        }
    }
    true
}

fn lu_solve(lu: &[f64], n: usize, piv: &[usize], b: &mut [f64]) {
    for k in 0..n {
        b.swap(k, piv[k]);
    }
    for i in 0..n {
        let mut s = b[i];
        for j in 0..i {
            s -= lu[i * n + j] * b[j];
        }
        b[i] = s;
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for j in i + 1..n {
            s -= lu[i * n + j] * b[j];
        }
        b[i] = s / lu[i * n + i];
    }
}

/// Factor form: `P = U_S' G⁻¹ U_S`, `R = A G⁻¹ U_S` and `T = A G⁻¹ A'` over the free set `S`
/// (`G = γ D`, `A` all rows), kept up to date by rank-one changes as names enter and leave.
pub(crate) struct FactorSums {
    in_s: Vec<bool>,
    p: Vec<f64>,
    r: Vec<f64>,
    t: Vec<f64>,
}

impl FactorSums {
    fn new(qp: &Qp) -> FactorSums {
        let k = match &qp.q {
            Hessian::Factor { k, .. } => *k,
            Hessian::Dense(_) => 0,
        };
        FactorSums {
            in_s: vec![false; qp.n],
            p: vec![0.0; k * k],
            r: vec![0.0; qp.m * k],
            t: vec![0.0; qp.m * qp.m],
        }
    }

    /// Bring the sums in line with the free set of `st`.
    fn sync(&mut self, qp: &Qp, st: &State) {
        let Hessian::Factor { gamma, k, u, d } = &qp.q else {
            return;
        };
        let (k, m) = (*k, qp.m);
        for j in 0..qp.n {
            let free = st.var[j] == Active::No;
            if free == self.in_s[j] {
                continue;
            }
            self.in_s[j] = free;
            let w = if free { 1.0 } else { -1.0 } / (gamma * d[j]);
            let uj = &u[j * k..(j + 1) * k];
            for (prow, &ua) in self.p.chunks_exact_mut(k.max(1)).zip(uj) {
                let v = w * ua;
                for (x, &ub) in prow.iter_mut().zip(uj) {
                    *x += v * ub;
                }
            }
            for r in 0..m {
                let arj = qp.a[r * qp.n + j];
                if arj != 0.0 {
                    let v = w * arj;
                    for (x, &ua) in self.r[r * k..(r + 1) * k].iter_mut().zip(uj) {
                        *x += v * ua;
                    }
                    for r2 in 0..m {
                        self.t[r * m + r2] += v * qp.a[r2 * qp.n + j];
                    }
                }
            }
        }
    }
}

/// The factorised KKT matrix `[Q_SS E_S'; E_S 0]` of one working set.
struct Kkt {
    free: Vec<usize>,
    rows: Vec<usize>,
    lu: Vec<f64>,
    piv: Vec<usize>,
    /// Factor form: the LU above is of the `(k + rows)` reduced system, not the full KKT.
    reduced: bool,
}

impl Kkt {
    fn build(qp: &Qp, st: &State, sums: &mut FactorSums) -> Option<Kkt> {
        let free: Vec<usize> = (0..qp.n).filter(|&j| st.var[j] == Active::No).collect();
        let rows: Vec<usize> = (0..qp.m).filter(|&r| st.row[r] != Active::No).collect();
        if let Hessian::Factor { gamma, k, .. } = &qp.q {
            sums.sync(qp, st);
            return Self::build_factor(qp, free, rows, *gamma, *k, sums);
        }
        let (ns, ne) = (free.len(), rows.len());
        let dim = ns + ne;
        let mut lu = vec![0.0; dim * dim];
        for (a, &i) in free.iter().enumerate() {
            for (b, &j) in free.iter().enumerate() {
                lu[a * dim + b] = qp.q_entry(i, j);
            }
        }
        for (e, &r) in rows.iter().enumerate() {
            let arow = qp.row(r);
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
            reduced: false,
        })
    }

    /// With `H_S = γ(D_S + U_S U_S')`, `y = U_S' p` and `G = γ D_S`, eliminating `p` leaves
    ///
    /// ```text
    /// [I + γ U'G⁻¹U   U'G⁻¹E'] [y]   [U'G⁻¹ r1       ]
    /// [γ E G⁻¹U       E G⁻¹E'] [λ] = [E G⁻¹ r1 - r2  ]
    /// ```
    ///
    /// and `p = G⁻¹ (r1 - γ U y - E'λ)`: an exact reformulation of size `k + rows`.
    fn build_factor(
        qp: &Qp,
        free: Vec<usize>,
        rows: Vec<usize>,
        gamma: f64,
        k: usize,
        sums: &FactorSums,
    ) -> Option<Kkt> {
        let (ne, m) = (rows.len(), qp.m);
        let dim = k + ne;
        let mut lu = vec![0.0; dim * dim];
        for a in 0..k {
            for b in 0..k {
                lu[a * dim + b] = gamma * sums.p[a * k + b] + if a == b { 1.0 } else { 0.0 };
            }
        }
        for (e, &r) in rows.iter().enumerate() {
            for a in 0..k {
                lu[a * dim + k + e] = sums.r[r * k + a];
                lu[(k + e) * dim + a] = gamma * sums.r[r * k + a];
            }
            for (e2, &r2) in rows.iter().enumerate() {
                lu[(k + e) * dim + k + e2] = sums.t[r * m + r2];
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
            reduced: true,
        })
    }

    /// Solve in place: `rhs = [r1 (free); r2 (rows)]` becomes `[p; λ]`.
    fn solve(&self, qp: &Qp, rhs: &mut [f64]) {
        let ns = self.free.len();
        let ne = self.rows.len();
        if !self.reduced {
            if ns + ne > 0 {
                lu_solve(&self.lu, ns + ne, &self.piv, rhs);
            }
            return;
        }
        let Hessian::Factor { gamma, k, u, d } = &qp.q else {
            return;
        };
        let (gamma, k) = (*gamma, *k);
        let dim = k + ne;
        let mut small = vec![0.0; dim];
        for (e, slot) in small[k..].iter_mut().enumerate() {
            *slot = -rhs[ns + e];
        }
        for (a_, &j) in self.free.iter().enumerate() {
            let v = rhs[a_] / (gamma * d[j]);
            if v != 0.0 {
                for a in 0..k {
                    small[a] += u[j * k + a] * v;
                }
                for (e, &r) in self.rows.iter().enumerate() {
                    small[k + e] += qp.a[r * qp.n + j] * v;
                }
            }
        }
        if dim > 0 {
            lu_solve(&self.lu, dim, &self.piv, &mut small);
        }
        for (a_, &j) in self.free.iter().enumerate() {
            let mut v = rhs[a_] - gamma * dot(&u[j * k..(j + 1) * k], &small[..k]);
            for (e, &r) in self.rows.iter().enumerate() {
                v -= qp.a[r * qp.n + j] * small[k + e];
            }
            rhs[a_] = v / (gamma * d[j]);
        }
        rhs[ns..ns + ne].copy_from_slice(&small[k..]);
    }
}

/// Blocking constraint found by a ratio test.
#[derive(Clone, Copy)]
enum Block {
    Var(usize, Active),
    Row(usize, Active),
}

/// Orthonormal basis (rows, each over all `n` coordinates, zero off the free set) of the
/// active rows restricted to the free variables: the working set's normals span exactly the
/// bound normals of the fixed variables plus this basis. Modified Gram-Schmidt, twice.
fn free_row_basis(qp: &Qp, st: &State) -> Vec<Vec<f64>> {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for r in 0..qp.m {
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
    (0..qp.n)
        .map(|j| {
            if st.var[j] == Active::No {
                qp.a[r * qp.n + j]
            } else {
                0.0
            }
        })
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
const DEPENDENT: f64 = 1e-9;

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

/// Largest step in `[0, limit]` along `p` that keeps every constraint outside the working set.
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
    for j in 0..qp.n {
        if st.var[j] != Active::No {
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
        let (room, side) = if pj > eps {
            (qp.hi[j] - st.x[j], Active::Upper)
        } else if pj < -eps {
            (qp.lo[j] - st.x[j], Active::Lower)
        } else {
            continue;
        };
        let t = (room / pj).max(0.0);
        if t < alpha {
            alpha = t;
            block = Some(Block::Var(j, side));
        }
    }
    for r in 0..qp.m {
        if st.row[r] != Active::No {
            continue;
        }
        let arow = qp.row(r);
        let ap = dot(arow, p);
        let scale = eps * arow.iter().fold(0.0f64, |s, v| s.max(v.abs())) * 10.0;
        let (room, side) = if ap > scale {
            (qp.rhi[r] - dot(arow, &st.x), Active::Upper)
        } else if ap < -scale {
            (qp.rlo[r] - dot(arow, &st.x), Active::Lower)
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
        Some(Block::Var(j, side)) => {
            st.var[j] = side;
            st.x[j] = if side == Active::Upper {
                qp.hi[j]
            } else {
                qp.lo[j]
            };
        }
        Some(Block::Row(r, side)) => st.row[r] = side,
        None => {}
    }
}

/// Run the active-set iterations from a vertex `st` until the KKT conditions hold.
pub(crate) fn solve(qp: &Qp, st: &mut State, max_iter: u32) -> Result<(), Failure> {
    let n = qp.n;
    let scale = qp.scale();
    let tol = 1e-12 * scale;
    let mut g = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut stationary = false;
    let mut sums = FactorSums::new(qp);
    // Consecutive zero-length steps; past `BLAND_AFTER` of them the dropped constraint is the
    // lowest-indexed one with a wrong-signed multiplier (Bland's rule), not the most violated,
    // so degenerate vertices (a zero basic weight, tied bounds) cannot make the method cycle.
    let mut degenerate = 0u32;
    loop {
        if st.iterations >= max_iter {
            return Err(Failure::MaxIterations);
        }
        st.iterations += 1;
        let kkt = Kkt::build(qp, st, &mut sums).ok_or(Failure::Singular)?;
        let ns = kkt.free.len();
        qp.gradient(&st.x, &mut g);
        let mut rhs = vec![0.0; ns + kkt.rows.len()];
        for (a, &j) in kkt.free.iter().enumerate() {
            rhs[a] = -g[j];
        }
        kkt.solve(qp, &mut rhs);
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
        let mut worst = tol;
        let mut drop: Option<Block> = None;
        let mut bland: Option<Block> = None;
        for (e, &r) in kkt.rows.iter().enumerate() {
            if qp.rlo[r] == qp.rhi[r] {
                continue;
            }
            let viol = if st.row[r] == Active::Upper {
                -lam_rows[e]
            } else {
                lam_rows[e]
            };
            if viol > worst {
                worst = viol;
                drop = Some(Block::Row(r, st.row[r]));
            }
            if degenerate >= BLAND_AFTER && viol > tol && bland.is_none() {
                bland = Some(Block::Row(r, st.row[r]));
            }
        }
        for j in 0..n {
            if st.var[j] == Active::No || qp.lo[j] == qp.hi[j] {
                continue;
            }
            let mut gj = g[j];
            for (e, &r) in kkt.rows.iter().enumerate() {
                gj += lam_rows[e] * qp.a[r * n + j];
            }
            let lam = -gj;
            let viol = if st.var[j] == Active::Upper {
                -lam
            } else {
                lam
            };
            if viol > worst {
                worst = viol;
                drop = Some(Block::Var(j, st.var[j]));
            }
            if degenerate >= BLAND_AFTER && viol > tol && !matches!(bland, Some(Block::Var(..))) {
                bland = Some(Block::Var(j, st.var[j]));
            }
        }
        let Some(dropped) = bland.or(drop) else {
            st.row_mult = vec![0.0; qp.m];
            for (e, &r) in kkt.rows.iter().enumerate() {
                st.row_mult[r] = lam_rows[e];
            }
            polish(qp, st, &kkt);
            return Ok(());
        };
        // Direction leaving exactly the dropped constraint, others kept active.
        let mut rhs = vec![0.0; ns + kkt.rows.len()];
        p.iter_mut().for_each(|v| *v = 0.0);
        match dropped {
            Block::Var(v, side) => {
                let sigma = if side == Active::Lower { 1.0 } else { -1.0 };
                let mut ev = vec![0.0; n];
                ev[v] = sigma;
                let mut col = vec![0.0; n];
                qp.q_mul(&ev, &mut col);
                for (a, &j) in kkt.free.iter().enumerate() {
                    rhs[a] = -col[j];
                }
                for (e, &r) in kkt.rows.iter().enumerate() {
                    rhs[ns + e] = -qp.a[r * n + v] * sigma;
                }
                kkt.solve(qp, &mut rhs);
                p[v] = sigma;
                st.var[v] = Active::No;
            }
            Block::Row(r, side) => {
                let sigma = if side == Active::Lower { 1.0 } else { -1.0 };
                let e = kkt.rows.iter().position(|&x| x == r).unwrap_or(0);
                rhs[ns + e] = sigma;
                kkt.solve(qp, &mut rhs);
                st.row[r] = Active::No;
            }
        }
        for (a, &j) in kkt.free.iter().enumerate() {
            p[j] = rhs[a];
        }
        let slope = dot(&g, &p);
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

/// Zero-length steps in a row before [`solve`] switches to Bland's rule.
const BLAND_AFTER: u32 = 3;

/// Recompute the free variables from the final working set in one solve (no accumulated
/// rounding from the steps), then clip them into their boxes.
fn polish(qp: &Qp, st: &mut State, kkt: &Kkt) {
    // The factor sums were updated incrementally: rebuild them once for the final solve.
    let fresh;
    let kkt = if kkt.reduced {
        match Kkt::build(qp, st, &mut FactorSums::new(qp)) {
            Some(k) => {
                fresh = k;
                &fresh
            }
            None => kkt,
        }
    } else {
        kkt
    };
    let n = qp.n;
    let ns = kkt.free.len();
    let mut rhs = vec![0.0; ns + kkt.rows.len()];
    let fixed: Vec<usize> = (0..n).filter(|&j| st.var[j] != Active::No).collect();
    let mut xf = vec![0.0; n];
    for &j in &fixed {
        xf[j] = st.x[j];
    }
    let mut qxf = vec![0.0; n];
    qp.q_mul(&xf, &mut qxf);
    for (a, &i) in kkt.free.iter().enumerate() {
        rhs[a] = qp.c[i] - qxf[i];
    }
    for (e, &r) in kkt.rows.iter().enumerate() {
        let mut b = if st.row[r] == Active::Upper {
            qp.rhi[r]
        } else {
            qp.rlo[r]
        };
        for &j in &fixed {
            b -= qp.a[r * n + j] * st.x[j];
        }
        rhs[ns + e] = b;
    }
    kkt.solve(qp, &mut rhs);
    for (a, &j) in kkt.free.iter().enumerate() {
        st.x[j] = rhs[a].clamp(qp.lo[j], qp.hi[j]);
    }
    for (e, &r) in kkt.rows.iter().enumerate() {
        st.row_mult[r] = rhs[ns + e];
    }
}

/// Minimiser of the objective subject to the rows in `rows` only (all variables free, each
/// listed row at its lower bound): used to guess the active bounds for a crash start. `None`
/// when that KKT system is singular (`Q` not positive definite).
pub(crate) fn equality_minimiser(qp: &Qp, rows: &[usize]) -> Option<Vec<f64>> {
    let mut row = vec![Active::No; qp.m];
    for &r in rows {
        row[r] = Active::Lower;
    }
    let st = State {
        x: vec![0.0; qp.n],
        var: vec![Active::No; qp.n],
        row,
        row_mult: Vec::new(),
        iterations: 0,
    };
    let kkt = Kkt::build(qp, &st, &mut FactorSums::new(qp))?;
    let mut rhs = qp.c.clone();
    rhs.extend(kkt.rows.iter().map(|&r| qp.rlo[r]));
    kkt.solve(qp, &mut rhs);
    rhs.truncate(qp.n);
    Some(rhs)
}

/// Primal-dual active-set iterations (Hintermüller, Ito & Kunisch): solve the KKT system of a
/// guessed working set, then move every violated bound/row into it and every wrong-signed
/// multiplier out of it at once. Often exact in a handful of solves, but it can cycle, so it
/// returns `None` after `max_iter` solves (or on a singular working set) and the caller falls
/// back to the primal method. `Some` only when the KKT conditions hold to rounding.
pub(crate) fn primal_dual(qp: &Qp, mut var: Vec<Active>, max_iter: u32) -> Option<State> {
    let n = qp.n;
    let scale = qp.scale();
    let tol = 1e-12 * scale;
    let mut row = vec![Active::No; qp.m];
    row[0] = Active::Lower;
    let mut g = vec![0.0; n];
    let mut sums = FactorSums::new(qp);
    for it in 1..=max_iter {
        if var.iter().all(|&v| v != Active::No) {
            return None;
        }
        let mut st = State {
            x: vec![0.0; n],
            var: var.clone(),
            row: row.clone(),
            row_mult: vec![0.0; qp.m],
            iterations: it,
        };
        for j in 0..n {
            st.x[j] = match var[j] {
                Active::Lower => qp.lo[j],
                Active::Upper => qp.hi[j],
                Active::No => 0.0,
            };
        }
        let kkt = Kkt::build(qp, &st, &mut sums)?;
        // x_S and the row multipliers of this working set, in one solve (as in `polish`).
        let ns = kkt.free.len();
        let mut rhs = vec![0.0; ns + kkt.rows.len()];
        let mut qxf = vec![0.0; n];
        qp.q_mul(&st.x, &mut qxf);
        for (a, &i) in kkt.free.iter().enumerate() {
            rhs[a] = qp.c[i] - qxf[i];
        }
        for (e, &r) in kkt.rows.iter().enumerate() {
            let b = if row[r] == Active::Upper {
                qp.rhi[r]
            } else {
                qp.rlo[r]
            };
            rhs[ns + e] = b - dot(qp.row(r), &st.x);
        }
        kkt.solve(qp, &mut rhs);
        for (a, &j) in kkt.free.iter().enumerate() {
            st.x[j] = rhs[a];
        }
        for (e, &r) in kkt.rows.iter().enumerate() {
            st.row_mult[r] = rhs[ns + e];
        }
        qp.gradient(&st.x, &mut g);
        let mut changed = false;
        for j in 0..n {
            match var[j] {
                Active::No => {
                    let room = 1e-12 * (1.0 + qp.hi[j].abs().max(qp.lo[j].abs()));
                    if st.x[j] < qp.lo[j] - room {
                        var[j] = Active::Lower;
                        changed = true;
                    } else if st.x[j] > qp.hi[j] + room {
                        var[j] = Active::Upper;
                        changed = true;
                    }
                }
                side => {
                    let mut gj = g[j];
                    for &r in &kkt.rows {
                        gj += st.row_mult[r] * qp.a[r * n + j];
                    }
                    let lam = -gj;
                    let wrong = if side == Active::Upper {
                        lam < -tol
                    } else {
                        lam > tol
                    };
                    if wrong {
                        var[j] = Active::No;
                        changed = true;
                    }
                }
            }
        }
        for r in 1..qp.m {
            match row[r] {
                Active::No => {
                    let ax = dot(qp.row(r), &st.x);
                    let room = 1e-12 * (1.0 + ax.abs());
                    if ax > qp.rhi[r] + room {
                        row[r] = Active::Upper;
                        changed = true;
                    } else if ax < qp.rlo[r] - room {
                        row[r] = Active::Lower;
                        changed = true;
                    }
                }
                side => {
                    let lam = st.row_mult[r];
                    let wrong = if side == Active::Upper {
                        lam < -tol
                    } else {
                        lam > tol
                    };
                    if wrong && qp.rlo[r] != qp.rhi[r] {
                        row[r] = Active::No;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            for j in 0..n {
                st.x[j] = st.x[j].clamp(qp.lo[j], qp.hi[j]);
            }
            return Some(st);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random positive definite factor QP with a budget row and one group row.
    fn random_qp(seed: u64, n: usize, k: usize) -> Qp {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let u: Vec<f64> = (0..n * k).map(|_| 0.3 * (rnd() - 0.5)).collect();
        let d: Vec<f64> = (0..n).map(|_| 0.01 + 0.05 * rnd()).collect();
        let c: Vec<f64> = (0..n).map(|_| 0.05 * rnd()).collect();
        let mut a = vec![1.0; n];
        a.extend((0..n).map(|j| if j % 3 == 0 { 1.0 } else { 0.0 }));
        Qp {
            n,
            q: Hessian::Factor {
                gamma: 4.0,
                k,
                u,
                d,
            },
            c,
            lo: vec![0.0; n],
            hi: vec![0.08; n],
            m: 2,
            a,
            rlo: vec![1.0, f64::NEG_INFINITY],
            rhi: vec![1.0, 0.2],
        }
    }

    #[test]
    fn primal_and_primal_dual_agree() {
        for seed in 0..50 {
            let mut qp = random_qp(seed, 30, 5);
            let pd = primal_dual(&qp, vec![Active::No; qp.n], 50);
            // The primal method runs on the dense Hessian (as the fast path's fallback does).
            let mut q = vec![0.0; qp.n * qp.n];
            for i in 0..qp.n {
                for j in 0..qp.n {
                    q[i * qp.n + j] = qp.q_entry(i, j);
                }
            }
            qp.q = Hessian::Dense(q);
            // Primal method from a feasible vertex: 12 names at the cap, one at 4%.
            let mut x = vec![0.0; qp.n];
            let mut var = vec![Active::Lower; qp.n];
            let order: Vec<usize> = (1..30).filter(|j| j % 3 != 0).take(13).collect();
            for (t, &j) in order.iter().enumerate() {
                x[j] = if t < 12 { 0.08 } else { 0.04 };
                var[j] = if t < 12 { Active::Upper } else { Active::No };
            }
            let mut st = State {
                x,
                var,
                row: vec![Active::Lower, Active::No],
                row_mult: Vec::new(),
                iterations: 0,
            };
            if let Err(e) = solve(&qp, &mut st, 1000) {
                let free: Vec<usize> = (0..qp.n).filter(|&j| st.var[j] == Active::No).collect();
                panic!(
                    "seed {seed}: {e:?} at iteration {}, free {free:?}, rows {:?}",
                    st.iterations, st.row
                );
            }
            let pd = pd.expect("primal-dual settles on these instances");
            {
                let diff =
                    st.x.iter()
                        .zip(&pd.x)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                assert!(diff < 1e-12, "seed {seed}: {diff}");
            }
        }
    }
}
