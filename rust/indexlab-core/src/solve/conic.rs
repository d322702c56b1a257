//! Generic batch path: a parameter-affine conic program solved with Clarabel, many instances at
//! once.
//!
//! cvxpy's DPP canonicalisation gives, for any parameter vector `theta` (all parameter values
//! flattened in Fortran order, then a constant 1), the conic program
//!
//! ```text
//! minimise 1/2 x'Px + q'x + offset   subject to   A x + s = b,  s in K
//! ```
//!
//! where the nonzeros of `P`, `[-A | b]` and `[q | offset]` are `map @ theta` for fixed sparse
//! maps and fixed sparsity patterns. [`ConicTemplate`] holds those maps; each instance is one
//! sparse x dense product followed by a Clarabel solve. Instances are independent, so a batch is
//! solved in parallel and the results do not depend on the number of threads.
//!
//! Presolve (optional, per instance), two passes:
//! 1. a variable `x_j` with both bound rows `x_j <= 0` and `-x_j <= 0` in the nonnegative cone
//!    (one nonzero coefficient, right-hand side exactly 0) is fixed at zero (`w <= mask * cap`
//!    with `mask_j = 0`, plus `w >= 0`);
//! 2. then a zero-cone row left with a single nonzero `a x_k = b` fixes `x_k = b / a` (the
//!    auxiliary residual variables cvxpy creates for `sum_squares(w - bench)` of removed names).
//!
//! 3. then a zero-cone row `a_t x_t + a_w x_w = b` whose `x_t` appears in no other row and only
//!    on the diagonal of P (the residual variable of `sum_squares` for a kept name) lets
//!    `x_t = (b - a_w x_w) / a_t` be substituted into the objective.
//!
//! Fixed values are substituted into `b`, `q` and the objective offset, their columns removed,
//! and zero-cone or nonnegative rows left without a nonzero dropped when they hold (to 1e-12
//! relative). If one would be violated, or nothing would remain, or the reduced problem does
//! not end "optimal", the instance is solved unreduced, so statuses are those of the full
//! problem (the data cvxpy hands Clarabel).

use crate::{data_err, Error, Result};
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use rayon::prelude::*;

/// A sparse linear map from `theta` to the values of a fixed sparsity pattern (CSR: one row per
/// stored value of the pattern).
#[derive(Debug, Clone)]
pub struct AffineMap {
    n_theta: usize,
    indptr: Vec<usize>,
    indices: Vec<usize>,
    data: Vec<f64>,
}

impl AffineMap {
    /// Build from CSR arrays with `indptr.len() - 1` rows and `n_theta` columns.
    pub fn new(
        what: &str,
        n_theta: usize,
        indptr: Vec<usize>,
        indices: Vec<usize>,
        data: Vec<f64>,
    ) -> Result<Self> {
        if indptr.is_empty() || indptr[0] != 0 {
            return data_err!("{what} map: expected a CSR indptr starting at 0, found {indptr:?}");
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) || indptr[indptr.len() - 1] != indices.len() {
            return data_err!(
                "{what} map: expected a nondecreasing indptr ending at nnz = {}, found end {}",
                indices.len(),
                indptr[indptr.len() - 1]
            );
        }
        if indices.len() != data.len() {
            return data_err!(
                "{what} map: {} column indices but {} values",
                indices.len(),
                data.len()
            );
        }
        if let Some(&bad) = indices.iter().find(|&&c| c >= n_theta) {
            return data_err!("{what} map: column {bad} out of range for {n_theta} parameters");
        }
        Ok(Self {
            n_theta,
            indptr,
            indices,
            data,
        })
    }

    /// Number of output values.
    pub fn len(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Whether the map has no output values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply(&self, theta: &[f64]) -> Vec<f64> {
        (0..self.len())
            .map(|r| {
                let (lo, hi) = (self.indptr[r], self.indptr[r + 1]);
                // Fixed summation order: results are bitwise reproducible.
                self.indices[lo..hi]
                    .iter()
                    .zip(&self.data[lo..hi])
                    .map(|(&c, &v)| v * theta[c])
                    .sum()
            })
            .collect()
    }
}

/// The cones of cvxpy's `dims`, in cvxpy's order (zero, nonnegative, second-order, exponential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cone {
    Zero(usize),
    Nonneg(usize),
    Soc(usize),
    Exp,
}

impl Cone {
    fn dim(&self) -> usize {
        match *self {
            Cone::Zero(d) | Cone::Nonneg(d) | Cone::Soc(d) => d,
            Cone::Exp => 3,
        }
    }

    fn to_clarabel(self) -> SupportedConeT<f64> {
        match self {
            Cone::Zero(d) => SupportedConeT::ZeroConeT(d),
            Cone::Nonneg(d) => SupportedConeT::NonnegativeConeT(d),
            Cone::Soc(d) => SupportedConeT::SecondOrderConeT(d),
            Cone::Exp => SupportedConeT::ExponentialConeT(),
        }
    }
}

/// A CSC sparsity pattern (`colptr`, `rowval`) of an `m x n` matrix.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub m: usize,
    pub n: usize,
    pub colptr: Vec<usize>,
    pub rowval: Vec<usize>,
}

impl Pattern {
    fn check(&self, what: &str) -> Result<()> {
        if self.colptr.len() != self.n + 1 || self.colptr.first() != Some(&0) {
            return data_err!(
                "{what} pattern: expected {} column pointers starting at 0, found {}",
                self.n + 1,
                self.colptr.len()
            );
        }
        if self.colptr.windows(2).any(|w| w[0] > w[1]) || self.colptr[self.n] != self.rowval.len() {
            return data_err!("{what} pattern: column pointers are not a valid CSC layout");
        }
        if let Some(&bad) = self.rowval.iter().find(|&&r| r >= self.m) {
            return data_err!("{what} pattern: row {bad} out of range for {} rows", self.m);
        }
        Ok(())
    }
}

/// One instance's conic program in Clarabel's form.
#[derive(Debug, Clone)]
pub struct Canonical {
    /// Upper triangle of P (n x n).
    pub p: CscMatrix<f64>,
    pub q: Vec<f64>,
    pub a: CscMatrix<f64>,
    pub b: Vec<f64>,
    /// Constant added to Clarabel's objective to give cvxpy's (minimisation) objective.
    pub offset: f64,
    pub cones: Vec<Cone>,
}

/// Outcome of one instance, in the order of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Optimal,
    OptimalInaccurate,
    Infeasible,
    InfeasibleInaccurate,
    Unbounded,
    UnboundedInaccurate,
    UserLimit,
    SolverError,
}

impl Status {
    /// cvxpy's name of the status (as its Clarabel interface maps Clarabel's statuses).
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Optimal => "optimal",
            Status::OptimalInaccurate => "optimal_inaccurate",
            Status::Infeasible => "infeasible",
            Status::InfeasibleInaccurate => "infeasible_inaccurate",
            Status::Unbounded => "unbounded",
            Status::UnboundedInaccurate => "unbounded_inaccurate",
            Status::UserLimit => "user_limit",
            Status::SolverError => "solver_error",
        }
    }

    /// Whether `x` and the objective hold a solution.
    pub fn has_solution(&self) -> bool {
        matches!(self, Status::Optimal | Status::OptimalInaccurate)
    }

    fn from_clarabel(s: SolverStatus) -> Self {
        match s {
            SolverStatus::Solved => Status::Optimal,
            SolverStatus::AlmostSolved => Status::OptimalInaccurate,
            SolverStatus::PrimalInfeasible => Status::Infeasible,
            SolverStatus::AlmostPrimalInfeasible => Status::InfeasibleInaccurate,
            SolverStatus::DualInfeasible => Status::Unbounded,
            SolverStatus::AlmostDualInfeasible => Status::UnboundedInaccurate,
            SolverStatus::MaxIterations | SolverStatus::MaxTime => Status::UserLimit,
            _ => Status::SolverError,
        }
    }
}

/// One solved instance.
#[derive(Debug, Clone)]
pub struct InstanceResult {
    /// Primal solution over all `n` canonical variables (presolved ones are 0); NaN without a
    /// solution.
    pub x: Vec<f64>,
    pub status: Status,
    /// Clarabel's objective plus the offset (cvxpy's minimisation objective); NaN without a
    /// solution.
    pub objective: f64,
    pub iterations: u32,
    pub solve_seconds: f64,
    /// Number of variables handed to Clarabel (after presolve).
    pub n_variables: usize,
}

/// The parameter-affine conic program of a compiled cvxpy problem.
#[derive(Debug, Clone)]
pub struct ConicTemplate {
    n: usize,
    m: usize,
    n_theta: usize,
    p_pattern: Pattern,
    p_map: AffineMap,
    a_pattern: Pattern,
    a_map: AffineMap,
    q_map: AffineMap,
    cones: Vec<Cone>,
}

impl ConicTemplate {
    /// Assemble and validate a template.
    ///
    /// `p_pattern` is the upper triangle of P (`n x n`); `a_pattern` is the pattern of
    /// `M = [-A | b]` (`m x (n + 1)`, cvxpy's `reduced_A` layout); `q_map` has `n + 1` outputs
    /// (q, then the objective offset). Each map has as many outputs as its pattern has entries.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n_theta: usize,
        p_pattern: Pattern,
        p_map: AffineMap,
        a_pattern: Pattern,
        a_map: AffineMap,
        q_map: AffineMap,
        cones: Vec<Cone>,
    ) -> Result<Self> {
        let n = p_pattern.n;
        let m = a_pattern.m;
        p_pattern.check("P")?;
        a_pattern.check("A")?;
        if p_pattern.m != n {
            return data_err!(
                "P pattern: expected a square matrix, found {}x{n}",
                p_pattern.m
            );
        }
        if a_pattern.n != n + 1 {
            return data_err!(
                "A pattern: expected n + 1 = {} columns (variables and b), found {}",
                n + 1,
                a_pattern.n
            );
        }
        for (what, map, want) in [
            ("P", &p_map, p_pattern.rowval.len()),
            ("A", &a_map, a_pattern.rowval.len()),
            ("q", &q_map, n + 1),
        ] {
            if map.len() != want {
                return data_err!("{what} map: expected {want} outputs, found {}", map.len());
            }
            if map.n_theta != n_theta {
                return data_err!(
                    "{what} map: expected {n_theta} parameter columns, found {}",
                    map.n_theta
                );
            }
        }
        for j in 0..n {
            let (lo, hi) = (p_pattern.colptr[j], p_pattern.colptr[j + 1]);
            if p_pattern.rowval[lo..hi].iter().any(|&r| r > j) {
                return data_err!("P pattern: expected the upper triangle, column {j} goes below");
            }
        }
        let rows: usize = cones.iter().map(Cone::dim).sum();
        if rows != m {
            return data_err!("cones cover {rows} rows but A has {m}");
        }
        Ok(Self {
            n,
            m,
            n_theta,
            p_pattern,
            p_map,
            a_pattern,
            a_map,
            q_map,
            cones,
        })
    }

    /// Number of canonical variables.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of constraint rows.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Length of `theta` (parameter values plus the trailing 1).
    pub fn n_theta(&self) -> usize {
        self.n_theta
    }

    /// The conic program of one instance (no presolve).
    pub fn instantiate(&self, theta: &[f64]) -> Result<Canonical> {
        if theta.len() != self.n_theta {
            return data_err!(
                "theta: expected {} values (parameters and the trailing 1), found {}",
                self.n_theta,
                theta.len()
            );
        }
        let n = self.n;
        let p_vals = self.p_map.apply(theta);
        let m_vals = self.a_map.apply(theta);
        let qd = self.q_map.apply(theta);

        let p = CscMatrix::new(
            n,
            n,
            self.p_pattern.colptr.clone(),
            self.p_pattern.rowval.clone(),
            p_vals,
        );
        // M = [-A | b]: the first n columns negated give Clarabel's A, the last is b.
        let nnz_a = self.a_pattern.colptr[n];
        let a = CscMatrix::new(
            self.m,
            n,
            self.a_pattern.colptr[..=n].to_vec(),
            self.a_pattern.rowval[..nnz_a].to_vec(),
            m_vals[..nnz_a].iter().map(|v| -v).collect(),
        );
        let mut b = vec![0.0; self.m];
        for k in nnz_a..self.a_pattern.colptr[n + 1] {
            b[self.a_pattern.rowval[k]] += m_vals[k];
        }
        Ok(Canonical {
            p,
            q: qd[..n].to_vec(),
            a,
            b,
            offset: qd[n],
            cones: self.cones.clone(),
        })
    }

    /// Solve one instance.
    pub fn solve_one(&self, theta: &[f64], presolve: bool) -> Result<InstanceResult> {
        let full = self.instantiate(theta)?;
        let reduced = if presolve {
            self::presolve(&full)
        } else {
            None
        };
        Ok(match reduced {
            None => solve_canonical(&full, None),
            Some(red) => {
                let mut r = solve_canonical(&red.problem, Some((&red.kept_cols, &red.fixed_value)));
                if r.status == Status::Optimal {
                    for &(t, w, alpha, beta) in &red.substituted {
                        r.x[t] = beta - alpha * r.x[w];
                    }
                    r
                } else {
                    // Any other outcome is confirmed on the unreduced problem: presolve can
                    // change how Clarabel ends on a degenerate instance (e.g. "infeasible"
                    // where the full problem ends in a numerical error), and statuses must be
                    // those of cvxpy's solve.
                    solve_canonical(&full, None)
                }
            }
        })
    }

    /// Solve a batch; `thetas` is row-major `B x n_theta`. Runs on `pool` when given, otherwise on
    /// rayon's global pool. Results are in batch order and independent of the thread count.
    pub fn solve_batch(
        &self,
        thetas: &[f64],
        presolve: bool,
        pool: Option<&rayon::ThreadPool>,
    ) -> Result<Vec<InstanceResult>> {
        if self.n_theta == 0 || thetas.len() % self.n_theta != 0 {
            return data_err!(
                "thetas: expected a multiple of {} values, found {}",
                self.n_theta,
                thetas.len()
            );
        }
        let work = || {
            thetas
                .par_chunks(self.n_theta)
                .map(|theta| self.solve_one(theta, presolve))
                .collect::<Result<Vec<_>>>()
        };
        match pool {
            Some(p) => p.install(work),
            None => work(),
        }
    }
}

/// A rayon pool of `threads` workers (`None`: rayon's global pool, returned as `None`).
pub fn thread_pool(threads: Option<usize>) -> Result<Option<rayon::ThreadPool>> {
    match threads {
        None => Ok(None),
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(super::check_threads(t)?)
            .build()
            .map(Some)
            .map_err(|e| Error::Solver(format!("could not start {t} threads: {e}"))),
    }
}

/// Clarabel settings as cvxpy uses them: Clarabel's defaults, silent.
fn settings() -> DefaultSettings<f64> {
    DefaultSettingsBuilder::default()
        .verbose(false)
        .build()
        .unwrap_or_default()
}

/// Solve with Clarabel; `scatter` = (kept columns, values of all columns) maps a presolved
/// solution back to the full variable vector.
fn solve_canonical(c: &Canonical, scatter: Option<(&[usize], &[f64])>) -> InstanceResult {
    let cones: Vec<SupportedConeT<f64>> = c.cones.iter().map(|k| k.to_clarabel()).collect();
    let n_full = scatter.map_or(c.q.len(), |(_, v)| v.len());
    let failed = |secs: f64, iters: u32| InstanceResult {
        x: vec![f64::NAN; n_full],
        status: Status::SolverError,
        objective: f64::NAN,
        iterations: iters,
        solve_seconds: secs,
        n_variables: c.q.len(),
    };
    let mut solver = match DefaultSolver::new(&c.p, &c.q, &c.a, &c.b, &cones, settings()) {
        Ok(s) => s,
        Err(_) => return failed(0.0, 0),
    };
    solver.solve();
    let sol = &solver.solution;
    let status = Status::from_clarabel(sol.status);
    if !status.has_solution() {
        return InstanceResult {
            status,
            ..failed(sol.solve_time, sol.iterations)
        };
    }
    let x = match scatter {
        None => sol.x.clone(),
        Some((kept, fixed_value)) => {
            let mut x = fixed_value.to_vec();
            for (&j, &v) in kept.iter().zip(&sol.x) {
                x[j] = v;
            }
            x
        }
    };
    InstanceResult {
        x,
        status,
        objective: sol.obj_val + c.offset,
        iterations: sol.iterations,
        solve_seconds: sol.solve_time,
        n_variables: c.q.len(),
    }
}

struct Reduced {
    problem: Canonical,
    kept_cols: Vec<usize>,
    /// Value of every canonical variable fixed by passes 1 and 2 (others: unused).
    fixed_value: Vec<f64>,
    /// Pass 3: (t, w, alpha, beta) with x_t = beta - alpha x_w.
    substituted: Vec<(usize, usize, f64, f64)>,
}

/// Per row of `A`, over the given columns: how many nonzeros, and the last one `(column, value)`
/// (the only one where the count is 1).
fn row_nonzeros(
    c: &Canonical,
    columns: impl Iterator<Item = usize>,
) -> (Vec<usize>, Vec<(usize, f64)>) {
    let m = c.a.m;
    let (mut count, mut last) = (vec![0usize; m], vec![(0usize, 0.0f64); m]);
    for j in columns {
        for k in c.a.colptr[j]..c.a.colptr[j + 1] {
            let v = c.a.nzval[k];
            if v != 0.0 {
                let r = c.a.rowval[k];
                count[r] += 1;
                last[r] = (j, v);
            }
        }
    }
    (count, last)
}

/// Presolve one instance (see the module docs): fix variables at zero from pairs of zero bound
/// rows, then fix variables of zero-cone rows left with a single nonzero, substitute the fixed
/// values and drop rows left empty. `None` when nothing is removed or when an emptied row would
/// be violated (the unreduced problem then reports the infeasibility).
fn presolve(c: &Canonical) -> Option<Reduced> {
    let (n, m) = (c.a.n, c.a.m);
    let n_zero: usize = c
        .cones
        .iter()
        .take_while(|k| matches!(k, Cone::Zero(_)))
        .map(Cone::dim)
        .sum();
    let n_nonneg: usize = c
        .cones
        .iter()
        .skip_while(|k| matches!(k, Cone::Zero(_)))
        .take_while(|k| matches!(k, Cone::Nonneg(_)))
        .map(Cone::dim)
        .sum();
    let n_lin = n_zero + n_nonneg;

    // Pass 1: x_j <= 0 and -x_j <= 0 as singleton nonnegative rows with b = 0 fix x_j = 0.
    let (count, single) = row_nonzeros(c, 0..n);
    let mut upper0 = vec![false; n];
    let mut lower0 = vec![false; n];
    for r in n_zero..n_lin {
        if count[r] == 1 && c.b[r] == 0.0 {
            let (j, v) = single[r];
            if v > 0.0 {
                upper0[j] = true;
            } else {
                lower0[j] = true;
            }
        }
    }
    let mut fixed: Vec<bool> = (0..n).map(|j| upper0[j] && lower0[j]).collect();
    let mut value = vec![0.0; n];

    // Pass 2: zero-cone rows left with one nonzero (a x_k = b) fix x_k = b / a. One pass.
    let (left, single_left) = row_nonzeros(c, (0..n).filter(|&j| !fixed[j]));
    let mut defining_row = vec![false; m];
    for r in 0..n_zero {
        if left[r] == 1 {
            let (j, a) = single_left[r];
            if !fixed[j] {
                fixed[j] = true;
                value[j] = c.b[r] / a;
                defining_row[r] = true;
            }
        }
    }
    // Substitute the fixed values: b -= A[:, fixed] v; q_kept += P[kept, fixed] v;
    // offset += q_fixed' v + 1/2 v' P[fixed, fixed] v (P is the upper triangle).
    let mut b = c.b.clone();
    let mut q = c.q.clone();
    let mut offset = c.offset;
    let mut left = vec![0usize; m];
    for j in 0..n {
        for k in c.a.colptr[j]..c.a.colptr[j + 1] {
            let r = c.a.rowval[k];
            if fixed[j] {
                b[r] -= c.a.nzval[k] * value[j];
            } else if c.a.nzval[k] != 0.0 {
                left[r] += 1;
            }
        }
        if fixed[j] {
            offset += c.q[j] * value[j];
        }
        for k in c.p.colptr[j]..c.p.colptr[j + 1] {
            let i = c.p.rowval[k];
            let pij = c.p.nzval[k];
            match (fixed[i], fixed[j]) {
                (true, true) if i == j => offset += 0.5 * pij * value[j] * value[j],
                (true, true) => offset += pij * value[i] * value[j],
                (false, true) => q[i] += pij * value[j],
                (true, false) => q[j] += pij * value[i],
                (false, false) => {}
            }
        }
    }

    // Pass 3: a zero-cone row a_t x_t + a_w x_w = b where x_t has no other nonzero in A and only
    // a diagonal entry in P (cvxpy's residual variable of a sum_squares): substitute
    // x_t = beta - alpha x_w into the objective, then drop x_t and the row.
    let mut keep_row = vec![true; m];
    let mut p_diag = vec![0.0; n];
    let mut p_offdiag = vec![false; n];
    for j in 0..n {
        for k in c.p.colptr[j]..c.p.colptr[j + 1] {
            let i = c.p.rowval[k];
            if i == j {
                p_diag[j] += c.p.nzval[k];
            } else if c.p.nzval[k] != 0.0 {
                p_offdiag[i] = true;
                p_offdiag[j] = true;
            }
        }
    }
    let mut col_nnz = vec![0usize; n];
    let mut pairs: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_zero];
    for j in 0..n {
        for k in c.a.colptr[j]..c.a.colptr[j + 1] {
            let (r, v) = (c.a.rowval[k], c.a.nzval[k]);
            if v != 0.0 {
                col_nnz[j] += 1;
                if !fixed[j] && r < n_zero && left[r] == 2 && !defining_row[r] {
                    pairs[r].push((j, v));
                }
            }
        }
    }
    let mut eliminated = vec![false; n];
    let mut is_base = vec![false; n];
    let mut diag_add = vec![0.0; n];
    let mut substituted = Vec::new();
    for (r, pair) in pairs.iter().enumerate() {
        if pair.len() != 2 {
            continue;
        }
        for (t_idx, w_idx) in [(0, 1), (1, 0)] {
            let ((t, a_t), (w, a_w)) = (pair[t_idx], pair[w_idx]);
            if col_nnz[t] == 1 && !p_offdiag[t] && !is_base[t] && !eliminated[w] {
                let alpha = a_w / a_t;
                let beta = b[r] / a_t;
                diag_add[w] += p_diag[t] * alpha * alpha;
                q[w] -= alpha * (p_diag[t] * beta + q[t]);
                offset += 0.5 * p_diag[t] * beta * beta + q[t] * beta;
                eliminated[t] = true;
                is_base[w] = true;
                keep_row[r] = false;
                substituted.push((t, w, alpha, beta));
                break;
            }
        }
    }
    let kept_cols: Vec<usize> = (0..n).filter(|&j| !fixed[j] && !eliminated[j]).collect();
    if kept_cols.len() == n || kept_cols.is_empty() {
        return None;
    }

    // Rows with no nonzero left must hold at the fixed values; then they are dropped.
    for r in 0..n_lin {
        if left[r] == 0 {
            let tol = 1e-12 * (1.0 + c.b[r].abs());
            let holds = defining_row[r]
                || if r < n_zero {
                    b[r].abs() <= tol
                } else {
                    b[r] >= -tol
                };
            if !holds {
                return None;
            }
            keep_row[r] = false;
        }
    }
    let mut new_row = vec![usize::MAX; m];
    let mut next = 0;
    for r in 0..m {
        if keep_row[r] {
            new_row[r] = next;
            next += 1;
        }
    }
    let m_new = next;
    if m_new == 0 {
        return None;
    }
    let mut new_col = vec![usize::MAX; n];
    for (i, &j) in kept_cols.iter().enumerate() {
        new_col[j] = i;
    }

    let mut a_colptr = vec![0usize];
    let mut a_rowval = Vec::new();
    let mut a_nzval = Vec::new();
    let mut p_colptr = vec![0usize];
    let mut p_rowval = Vec::new();
    let mut p_nzval = Vec::new();
    for &j in &kept_cols {
        for k in c.a.colptr[j]..c.a.colptr[j + 1] {
            let r = c.a.rowval[k];
            if keep_row[r] {
                a_rowval.push(new_row[r]);
                a_nzval.push(c.a.nzval[k]);
            }
        }
        a_colptr.push(a_rowval.len());
        let mut has_diag = false;
        for k in c.p.colptr[j]..c.p.colptr[j + 1] {
            let i = c.p.rowval[k];
            if !fixed[i] && !eliminated[i] {
                p_rowval.push(new_col[i]);
                p_nzval.push(c.p.nzval[k] + if i == j { diag_add[j] } else { 0.0 });
                has_diag |= i == j;
            }
        }
        if !has_diag && diag_add[j] != 0.0 {
            // Upper triangle, rows sorted: the diagonal is the last entry of its column.
            p_rowval.push(new_col[j]);
            p_nzval.push(diag_add[j]);
        }
        p_colptr.push(p_rowval.len());
    }
    let n_new = kept_cols.len();
    let zero_left = (0..n_zero).filter(|&r| keep_row[r]).count();
    let nonneg_left = (n_zero..n_lin).filter(|&r| keep_row[r]).count();
    let mut cones = Vec::with_capacity(c.cones.len());
    if zero_left > 0 {
        cones.push(Cone::Zero(zero_left));
    }
    if nonneg_left > 0 {
        cones.push(Cone::Nonneg(nonneg_left));
    }
    cones.extend(
        c.cones
            .iter()
            .filter(|k| !matches!(k, Cone::Zero(_) | Cone::Nonneg(_))),
    );
    Some(Reduced {
        problem: Canonical {
            p: CscMatrix::new(n_new, n_new, p_colptr, p_rowval, p_nzval),
            q: kept_cols.iter().map(|&j| q[j]).collect(),
            a: CscMatrix::new(m_new, n_new, a_colptr, a_rowval, a_nzval),
            b: (0..m).filter(|&r| keep_row[r]).map(|r| b[r]).collect(),
            offset,
            cones,
        },
        kept_cols,
        fixed_value: value,
        substituted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// min (x0 - t0)^2 + (x1 - t1)^2 s.t. x0 + x1 = 1, 0 <= x1 <= t2, written as
    /// 1/2 x'(2I)x - 2 t'x + const, theta = [t0, t1, t2, 2, -2, 1, 1...].
    fn template() -> ConicTemplate {
        // theta = [t0, t1, t2, 1]; P = diag(2, 2) from the constant column.
        let n_theta = 4;
        let p_pattern = Pattern {
            m: 2,
            n: 2,
            colptr: vec![0, 1, 2],
            rowval: vec![0, 1],
        };
        let p_map = AffineMap::new("P", 4, vec![0, 1, 2], vec![3, 3], vec![2.0, 2.0]).unwrap();
        // q = (-2 t0, -2 t1), offset 0 (constant omitted).
        let q_map = AffineMap::new("q", 4, vec![0, 1, 2, 2], vec![0, 1], vec![-2.0, -2.0]).unwrap();
        // Rows: 0: x0 + x1 - 1 = 0 (zero); 1: x1 <= t2; 2: -x1 <= 0 (nonneg).
        // M = [-A | b]: col0: row0 -1; col1: row0 -1, row1 -1, row2 +1; b: row0 1, row1 t2.
        let a_pattern = Pattern {
            m: 3,
            n: 3,
            colptr: vec![0, 1, 4, 6],
            rowval: vec![0, 0, 1, 2, 0, 1],
        };
        let a_map = AffineMap::new(
            "A",
            4,
            vec![0, 1, 2, 3, 4, 5, 6],
            vec![3, 3, 3, 3, 3, 2],
            vec![-1.0, -1.0, -1.0, 1.0, 1.0, 1.0],
        )
        .unwrap();
        ConicTemplate::new(
            n_theta,
            p_pattern,
            p_map,
            a_pattern,
            a_map,
            q_map,
            vec![Cone::Zero(1), Cone::Nonneg(2)],
        )
        .unwrap()
    }

    #[test]
    fn solves_small_qp_by_hand() {
        let t = template();
        // Unconstrained optimum of the projection of (0.3, 0.7) onto x0 + x1 = 1 is itself.
        let r = t.solve_one(&[0.3, 0.7, 1.0, 1.0], false).unwrap();
        assert_eq!(r.status, Status::Optimal);
        assert!((r.x[0] - 0.3).abs() < 1e-7 && (r.x[1] - 0.7).abs() < 1e-7);
        // Objective without the constant: x'x - 2 t'x = -(0.09 + 0.49).
        assert!((r.objective + 0.58).abs() < 1e-7);
        // Cap x1 <= 0.5: x = (0.5, 0.5).
        let r = t.solve_one(&[0.3, 0.7, 0.5, 1.0], false).unwrap();
        assert!((r.x[1] - 0.5).abs() < 1e-7);
    }

    #[test]
    fn presolve_removes_variable_fixed_at_zero() {
        let t = template();
        let theta = [0.3, 0.7, 0.0, 1.0];
        let full = t.full_canonical_for_tests(&theta);
        // x1 is fixed at 0, which leaves x0 + x1 = 1 as the singleton x0 = 1.
        let red = presolve(&full).map(|r| (r.kept_cols, r.fixed_value));
        assert_eq!(red, None, "everything fixed: solved unreduced");
        let r = t.solve_one(&theta, true).unwrap();
        assert_eq!(r.n_variables, 2);
        assert!((r.x[0] - 1.0).abs() < 1e-7 && r.x[1].abs() < 1e-7);
    }

    impl ConicTemplate {
        fn full_canonical_for_tests(&self, theta: &[f64]) -> Canonical {
            self.instantiate(theta).unwrap()
        }
    }

    #[test]
    fn presolve_substitutes_singleton_equalities() {
        // min x0^2 + x1^2 + x2^2 s.t. x0 + x1 + x2 = 1, x1 - x2 = 0 (zero rows), 0 <= x2 <= 0.
        // x2 = 0 (pass 1), then x1 = 0 (pass 2), leaving x0 = 1 from the sum: all fixed.
        // Instead keep x0 free by relaxing the sum: x0 + x1 + x2 >= 1 (nonneg row).
        let p = CscMatrix::new(3, 3, vec![0, 1, 2, 3], vec![0, 1, 2], vec![2.0, 2.0, 2.0]);
        // Rows: 0: x1 - x2 = 0.5 (zero); 1: -(x0 + x1 + x2) <= -1; 2: x2 <= 0; 3: -x2 <= 0.
        let a = CscMatrix::new(
            4,
            3,
            vec![0, 1, 3, 7],
            vec![1, 0, 1, 0, 1, 2, 3],
            vec![-1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0],
        );
        let c = Canonical {
            p,
            q: vec![0.0, 1.0, 0.0],
            a,
            b: vec![0.5, -1.0, 0.0, 0.0],
            offset: 0.25,
            cones: vec![Cone::Zero(1), Cone::Nonneg(3)],
        };
        let red = presolve(&c).unwrap();
        assert_eq!(red.kept_cols, vec![0]);
        assert_eq!(red.fixed_value, vec![0.0, 0.5, 0.0]);
        // Left: min x0^2 + (0.25 + 0.5) + 0.25 s.t. x0 >= 0.5 -> x0 = 0.5, objective 1.25.
        assert_eq!(red.problem.b, vec![-0.5]);
        let r = solve_canonical(&red.problem, Some((&red.kept_cols, &red.fixed_value)));
        let f = solve_canonical(&c, None);
        assert!((r.objective - 1.25).abs() < 1e-7 && (f.objective - 1.25).abs() < 1e-7);
        assert!((r.x[0] - 0.5).abs() < 1e-7 && r.x[1] == 0.5 && r.x[2] == 0.0);
    }

    #[test]
    fn presolve_substitutes_residual_variables() {
        // min t^2 + x0 s.t. t - 2 x0 = -1 (zero row), x0 >= 0, x0 <= 5: t = 2 x0 - 1 gives
        // min (2 x0 - 1)^2 + x0 -> x0 = 3/8, objective 1/16 + 3/8 = 7/16.
        let p = CscMatrix::new(2, 2, vec![0, 0, 1], vec![1], vec![2.0]);
        let a = CscMatrix::new(
            3,
            2,
            vec![0, 3, 4],
            vec![0, 1, 2, 0],
            vec![-2.0, -1.0, 1.0, 1.0],
        );
        let c = Canonical {
            p,
            q: vec![1.0, 0.0],
            a,
            b: vec![-1.0, 0.0, 5.0],
            offset: 0.0,
            cones: vec![Cone::Zero(1), Cone::Nonneg(2)],
        };
        let red = presolve(&c).unwrap();
        assert_eq!(red.kept_cols, vec![0]);
        assert_eq!(red.substituted.len(), 1);
        assert_eq!(red.problem.p.nzval, vec![8.0]);
        let t = red.substituted[0];
        let r = solve_canonical(&red.problem, Some((&red.kept_cols, &red.fixed_value)));
        assert!((r.objective - 7.0 / 16.0).abs() < 1e-7);
        assert!((r.x[0] - 0.375).abs() < 1e-7);
        assert!(
            (t.3 - t.2 * r.x[0] + 0.25).abs() < 1e-7,
            "t = 2 x0 - 1 = -1/4"
        );
    }

    #[test]
    fn infeasible_instance_does_not_stop_batch() {
        let t = template();
        // x1 <= -1 with x1 >= 0: infeasible.
        let thetas = [0.3, 0.7, 1.0, 1.0, 0.3, 0.7, -1.0, 1.0];
        let rs = t.solve_batch(&thetas, true, None).unwrap();
        assert_eq!(rs[0].status, Status::Optimal);
        assert_eq!(rs[1].status, Status::Infeasible);
        assert!(rs[1].objective.is_nan());
    }

    #[test]
    fn results_do_not_depend_on_threads() {
        let t = template();
        let thetas: Vec<f64> = (0..40)
            .flat_map(|i| [0.1 * (i % 7) as f64, 0.5, 0.05 * (i % 11) as f64, 1.0])
            .collect();
        let one = thread_pool(Some(1)).unwrap();
        let three = thread_pool(Some(3)).unwrap();
        let a = t.solve_batch(&thetas, true, one.as_ref()).unwrap();
        let b = t.solve_batch(&thetas, true, three.as_ref()).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.x, y.x);
            assert_eq!(x.objective.to_bits(), y.objective.to_bits());
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let t = template();
        assert!(matches!(t.solve_one(&[1.0], false), Err(Error::Data(_))));
        assert!(AffineMap::new("x", 2, vec![0, 1], vec![5], vec![1.0]).is_err());
        assert!(thread_pool(Some(0)).is_err());
        assert!(thread_pool(Some(1_000_000)).is_err());
    }
}
