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
//! Presolve (optional, per instance) removes what an instance fixes (names outside a mask) and
//! lives in [`super::presolve`]. With it, an instance that is a small strictly convex QP is
//! solved exactly by [`super::exact_qp`] instead of Clarabel. If the reduced instance does not
//! end "optimal" it is solved unreduced with Clarabel, so statuses are those of the full problem
//! (the data cvxpy hands Clarabel).
//!
//! Cones are those cvxpy's Clarabel interface passes (`dims_to_solver_cones` in
//! `cvxpy/reductions/solvers/conic_solvers/clarabel_conif.py`), in cvxpy's order: zero,
//! nonnegative, second-order, PSD (cvxpy's upper triangle with off-diagonals scaled by sqrt(2),
//! Clarabel's `PSDTriangleConeT` layout; needs the `sdp` feature), exponential, 3-d power,
//! generalised power. Each instance returns the primal `x` and the dual `z` of Clarabel's
//! `A x + s = b, s in K, z in K*`, from which cvxpy recovers its constraints' dual values.

use crate::{data_err, Result};
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use rayon::prelude::*;

use super::csr::{check_constant_entry, Csr};
use super::exact_qp;
use super::presolve::{Presolver, RowSingletons};

/// A sparse linear map from `theta` to the values of a fixed sparsity pattern (CSR: one row per
/// stored value of the pattern).
#[derive(Debug, Clone)]
pub struct AffineMap {
    rows: Csr,
    /// Each output at `theta` for a row that reads only the constant entry (`theta`'s last,
    /// 1), computed once as [`Csr::row_dot`] computes it; 0 for the others.
    constant: Vec<f64>,
    /// The rows that read a parameter: the only ones evaluated per instance (most entries
    /// of a canonical `A` are constants).
    parametric: Vec<usize>,
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
        let rows = Csr::new(&format!("{what} map"), n_theta, indptr, indices, data)?;
        let mut constant = vec![0.0; rows.rows()];
        let mut parametric = Vec::new();
        for (r, out) in constant.iter_mut().enumerate() {
            match rows.constant_row(r) {
                Some(v) => *out = v,
                None => parametric.push(r),
            }
        }
        Ok(Self {
            rows,
            constant,
            parametric,
        })
    }

    /// Number of output values.
    pub fn len(&self) -> usize {
        self.rows.rows()
    }

    /// Whether the map has no output values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every output at `theta` (whose last entry is 1).
    fn apply(&self, theta: &[f64]) -> Vec<f64> {
        let mut out = self.constant.clone();
        for &r in &self.parametric {
            out[r] = self.rows.row_dot(r, theta);
        }
        out
    }
}

/// The cones of cvxpy's `dims`, in cvxpy's order (zero, nonnegative, second-order, PSD,
/// exponential, 3-d power, generalised power).
#[derive(Debug, Clone, PartialEq)]
pub enum Cone {
    Zero(usize),
    Nonneg(usize),
    Soc(usize),
    /// Positive semidefinite `n x n` matrices as their scaled upper triangle (`n(n+1)/2` rows).
    Psd(usize),
    Exp,
    /// `x^alpha y^(1-alpha) >= |z|`, `x, y >= 0` (cvxpy's `PowCone3D`).
    Pow(f64),
    /// `prod x_i^alpha_i >= ||z||`, `x >= 0`, `sum alpha = 1`, `z` of the given length
    /// (cvxpy's `PowConeND`).
    GenPow(Vec<f64>, usize),
}

impl Cone {
    /// Rows of `A` the cone covers.
    pub fn dim(&self) -> usize {
        match self {
            Cone::Zero(d) | Cone::Nonneg(d) | Cone::Soc(d) => *d,
            Cone::Psd(n) => n * (n + 1) / 2,
            Cone::Exp | Cone::Pow(_) => 3,
            Cone::GenPow(alpha, d) => alpha.len() + d,
        }
    }

    fn check(&self) -> Result<()> {
        match self {
            Cone::Pow(a) if !(*a > 0.0 && *a < 1.0) => {
                data_err!("power cone: expected alpha in (0, 1), found {a}")
            }
            Cone::GenPow(alpha, d) => {
                let sum: f64 = alpha.iter().sum();
                if alpha.is_empty() || *d == 0 || alpha.iter().any(|a| a.is_nan() || *a <= 0.0) {
                    data_err!(
                        "generalised power cone: expected positive alphas and a nonempty \
                         norm part, found alphas {alpha:?} and {d} norm entries"
                    )
                } else if (sum - 1.0).abs() > 1e-9 {
                    data_err!("generalised power cone: expected alphas summing to 1, found {sum}")
                } else {
                    Ok(())
                }
            }
            Cone::Psd(0) => data_err!("PSD cone: expected a matrix of size at least 1"),
            #[cfg(not(feature = "sdp"))]
            Cone::Psd(n) => data_err!(
                "PSD cone of size {n}: this build of indexlab-core has no SDP support (build \
                 with the `sdp` feature)"
            ),
            _ => Ok(()),
        }
    }

    fn to_clarabel(&self) -> SupportedConeT<f64> {
        match self {
            Cone::Zero(d) => SupportedConeT::ZeroConeT(*d),
            Cone::Nonneg(d) => SupportedConeT::NonnegativeConeT(*d),
            Cone::Soc(d) => SupportedConeT::SecondOrderConeT(*d),
            #[cfg(feature = "sdp")]
            Cone::Psd(n) => SupportedConeT::PSDTriangleConeT(*n),
            // Refused by `check` when ConicTemplate::new validates the cones.
            #[cfg(not(feature = "sdp"))]
            Cone::Psd(n) => SupportedConeT::ZeroConeT(n * (n + 1) / 2),
            Cone::Exp => SupportedConeT::ExponentialConeT(),
            Cone::Pow(a) => SupportedConeT::PowerConeT(*a),
            Cone::GenPow(alpha, d) => SupportedConeT::GenPowerConeT(alpha.clone(), *d),
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

    /// Whether `z` holds Clarabel's certificate of primal or dual infeasibility, which cvxpy's
    /// Clarabel interface reports as the constraints' dual values (`clarabel_conif.py`,
    /// `invert`).
    pub fn has_certificate(&self) -> bool {
        matches!(
            self,
            Status::Infeasible
                | Status::InfeasibleInaccurate
                | Status::Unbounded
                | Status::UnboundedInaccurate
        )
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
    /// Dual solution over all `m` rows (`z` of Clarabel's form, in the dual cone); for an
    /// infeasible or unbounded instance Clarabel's certificate; otherwise NaN without a solution.
    pub z: Vec<f64>,
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
    /// Presolve's row singletons of `A` when no entry of `A` reads a parameter (only `b`
    /// may): the same for every instance.
    a_rows: Option<RowSingletons>,
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
            if map.rows.cols() != n_theta {
                return data_err!(
                    "{what} map: expected {n_theta} parameter columns, found {}",
                    map.rows.cols()
                );
            }
        }
        for j in 0..n {
            let (lo, hi) = (p_pattern.colptr[j], p_pattern.colptr[j + 1]);
            if p_pattern.rowval[lo..hi].iter().any(|&r| r > j) {
                return data_err!("P pattern: expected the upper triangle, column {j} goes below");
            }
        }
        for k in &cones {
            k.check()?;
        }
        let rows: usize = cones.iter().map(Cone::dim).sum();
        if rows != m {
            return data_err!("cones cover {rows} rows but A has {m}");
        }
        let mut template = Self {
            n,
            m,
            n_theta,
            p_pattern,
            p_map,
            a_pattern,
            a_map,
            q_map,
            cones,
            a_rows: None,
        };
        template.a_rows = template.constant_a_rows()?;
        Ok(template)
    }

    /// Presolve's row singletons of `A` if every entry of `A` is a constant: `A` at the
    /// template's constant entry alone is then every instance's.
    fn constant_a_rows(&self) -> Result<Option<RowSingletons>> {
        let nnz_a = self.a_pattern.colptr[self.n];
        if self.n_theta == 0 || self.a_map.parametric.iter().any(|&k| k < nnz_a) {
            return Ok(None);
        }
        let mut unit = vec![0.0; self.n_theta];
        if let Some(one) = unit.last_mut() {
            *one = 1.0;
        }
        Ok(Some(RowSingletons::of(&self.instantiate(&unit)?.a)))
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
        check_constant_entry(theta)?;
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

    /// Solve one instance. With `presolve`, also a small strictly convex QP is solved
    /// exactly ([`super::exact_qp`]) rather than by Clarabel; without, Clarabel solves the
    /// data cvxpy would hand it.
    pub fn solve_one(&self, theta: &[f64], presolve: bool) -> Result<InstanceResult> {
        let full = self.instantiate(theta)?;
        let presolver = match (presolve, &self.a_rows) {
            (false, _) => None,
            (true, Some(rows)) => Presolver::with_rows(&full, rows),
            (true, None) => Presolver::new(&full),
        };
        let solve = |c: &Canonical| {
            presolve
                .then(|| exact_qp::try_solve(c))
                .flatten()
                .unwrap_or_else(|| solve_canonical(c))
        };
        Ok(match presolver {
            None => solve(&full),
            Some(pre) => {
                let mut r = solve(pre.reduced());
                if r.status == Status::Optimal {
                    (r.x, r.z) = pre.reverse(&full, &r.x, &r.z);
                    r
                } else {
                    // Any other outcome is confirmed on the unreduced problem: presolve can
                    // change how Clarabel ends on a degenerate instance (e.g. "infeasible"
                    // where the full problem ends in a numerical error), and statuses must be
                    // those of cvxpy's solve.
                    solve_canonical(&full)
                }
            }
        })
    }

    /// Solve a batch; `thetas` is row-major `B x n_theta`. Runs on the rayon pool it is called
    /// in (the caller's `install`), otherwise on rayon's global pool. Results are in batch
    /// order and independent of the thread count.
    pub fn solve_batch(&self, thetas: &[f64], presolve: bool) -> Result<Vec<InstanceResult>> {
        if self.n_theta == 0 || thetas.len() % self.n_theta != 0 {
            return data_err!(
                "thetas: expected a multiple of {} values, found {}",
                self.n_theta,
                thetas.len()
            );
        }
        thetas
            .par_chunks(self.n_theta)
            .map(|theta| self.solve_one(theta, presolve))
            .collect()
    }
}

/// Clarabel settings as cvxpy uses them: Clarabel's defaults, silent.
fn settings() -> DefaultSettings<f64> {
    DefaultSettingsBuilder::default()
        .verbose(false)
        .build()
        .unwrap_or_default()
}

/// Solve with Clarabel.
pub(crate) fn solve_canonical(c: &Canonical) -> InstanceResult {
    let cones: Vec<SupportedConeT<f64>> = c.cones.iter().map(Cone::to_clarabel).collect();
    let failed = |secs: f64, iters: u32| InstanceResult {
        x: vec![f64::NAN; c.q.len()],
        z: vec![f64::NAN; c.b.len()],
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
        let mut out = failed(sol.solve_time, sol.iterations);
        if status.has_certificate() {
            out.z = sol.z.clone();
        }
        return InstanceResult { status, ..out };
    }
    InstanceResult {
        x: sol.x.clone(),
        z: sol.z.clone(),
        status,
        objective: sol.obj_val + c.offset,
        iterations: sol.iterations,
        solve_seconds: sol.solve_time,
        n_variables: c.q.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// min (x0 - t0)^2 + (x1 - t1)^2 s.t. x0 + x1 = 1, 0 <= x1 <= t2, written as
    /// 1/2 x'(2I)x - 2 t'x + const, theta = [t0, t1, t2, 2, -2, 1, 1...].
    fn template() -> ConicTemplate {
        template_reading(vec![3, 3, 3, 3, 3, 2])
    }

    /// The template with `M`'s stored values (`[-A | b]` by columns) read from `theta`'s
    /// columns `a_cols`.
    fn template_reading(a_cols: Vec<usize>) -> ConicTemplate {
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
            a_cols,
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
    fn folded_maps_equal_the_sparse_rows() {
        let t = template();
        let theta = [0.3, -0.7, 0.25, 1.0];
        for map in [&t.p_map, &t.a_map, &t.q_map] {
            let mut want = Vec::new();
            map.rows.mul_into(&theta, &mut want);
            assert_eq!(map.apply(&theta), want);
        }
        assert_eq!(
            t.a_map.parametric,
            vec![5],
            "only b's row 1 reads a parameter"
        );
    }

    #[test]
    fn row_singletons_are_computed_once_only_for_a_constant_a() {
        let t = template();
        let full = t.instantiate(&[0.3, 0.7, 0.0, 1.0]).unwrap();
        assert_eq!(t.a_rows, Some(RowSingletons::of(&full.a)));
        // x1's coefficient in row 0 read from t2: A differs between instances, so each
        // instance counts its own rows.
        let parametric = template_reading(vec![3, 2, 3, 3, 3, 2]);
        assert_eq!(parametric.a_rows, None);
        // t2 = 0: x1 is fixed at 0 by its bounds and row 0 is x0 = 1, with or without
        // presolve.
        for presolve in [true, false] {
            let r = parametric
                .solve_one(&[0.3, 0.7, 0.0, 1.0], presolve)
                .unwrap();
            assert_eq!(r.status, Status::Optimal);
            assert!((r.x[0] - 1.0).abs() < 1e-7 && r.x[1].abs() < 1e-7);
        }
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
        // x1 is fixed at 0, which leaves x0 + x1 = 1 as the singleton x0 = 1: everything is
        // fixed, so the instance is solved unreduced.
        assert!(Presolver::new(&t.instantiate(&theta).unwrap()).is_none());
        let r = t.solve_one(&theta, true).unwrap();
        assert_eq!(r.n_variables, 2);
        assert!((r.x[0] - 1.0).abs() < 1e-7 && r.x[1].abs() < 1e-7);
    }

    #[test]
    fn infeasible_instance_does_not_stop_batch() {
        let t = template();
        // x1 <= -1 with x1 >= 0: infeasible.
        let thetas = [0.3, 0.7, 1.0, 1.0, 0.3, 0.7, -1.0, 1.0];
        let rs = t.solve_batch(&thetas, true).unwrap();
        assert_eq!(rs[0].status, Status::Optimal);
        assert_eq!(rs[1].status, Status::Infeasible);
        assert!(rs[1].objective.is_nan() && rs[1].x.iter().all(|v| v.is_nan()));
        // The certificate: a finite, nonzero z in the dual cone (here the nonnegative orthant
        // after the equality row).
        assert!(rs[1].z.iter().all(|v| v.is_finite()) && rs[1].z.iter().any(|v| *v != 0.0));
    }

    #[test]
    fn results_do_not_depend_on_threads() {
        let t = template();
        let thetas: Vec<f64> = (0..40)
            .flat_map(|i| [0.1 * (i % 7) as f64, 0.5, 0.05 * (i % 11) as f64, 1.0])
            .collect();
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let (one, three) = (pool(1), pool(3));
        let a = one.install(|| t.solve_batch(&thetas, true)).unwrap();
        let b = three.install(|| t.solve_batch(&thetas, true)).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.x, y.x);
            assert_eq!(x.objective.to_bits(), y.objective.to_bits());
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let t = template();
        assert!(matches!(t.solve_one(&[1.0], false), Err(Error::Data(_))));
        // The constant rows are folded with theta's last entry 1: another value is refused.
        let err = t.solve_one(&[0.3, 0.7, 1.0, 2.0], false).unwrap_err();
        assert!(err.to_string().contains("constant 1, found 2"), "{err}");
        assert!(AffineMap::new("x", 2, vec![0, 1], vec![5], vec![1.0]).is_err());
        assert!(super::super::check_threads(0).is_err());
        assert!(super::super::check_threads(1_000_000).is_err());
    }
}
