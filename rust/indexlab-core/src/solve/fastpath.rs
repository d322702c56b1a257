//! Exact batch solver for the capped-weight QP users hit constantly, with no conic solver:
//!
//! ```text
//! minimise   γ/2 (w - b)' Σ (w - b) - s'w,     Σ = F Ω F' + diag(d)
//! subject to sum w = 1,  lo <= w <= hi,  glo <= G w <= ghi
//! ```
//!
//! which is `0.5 w'(γΣ)w - c'w + const` with `c = s + γ Σ b`. `γ = 0` is a linear objective.
//!
//! Per instance, names with `lo == hi` (a zero membership mask) are fixed and removed, so the
//! cost grows with the number of names an instance can hold, not with the universe. Then:
//!
//! * positive definite instances (`γ > 0`, every held name with `d > 0`): primal-dual
//!   active-set iterations ([`active_set::primal_dual`]) on the factor form of the KKT system
//!   (`k + rows` unknowns, rank-one updates as names enter and leave), started from the bounds
//!   that the budget-only minimiser violates. They stop only when the KKT conditions hold to
//!   rounding, typically after 3-4 solves. If they do not settle within 12 solves:
//! * the dense inertia-controlling primal active-set method ([`active_set::solve`]), started at
//!   the greedy fill "sort by c, fill to hi until the weights sum to 1" (already the optimum of
//!   the linear case without groups). Group rows that the greedy start violates get a phase 1
//!   (elastic slacks, minimise total violation); a positive phase-1 optimum proves
//!   infeasibility. This is also the path for `γ = 0` and for names with zero specific variance.
//!
//! Instances are independent and solved in parallel with rayon, results collected in order, so
//! the output does not depend on the thread count.

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

mod active_set;

use crate::error::{Error, Result};
use active_set::{Active, Failure, Hessian, Qp, State};
use rayon::prelude::*;

/// An argument given per name that may be shared by the batch or given per instance.
#[derive(Clone, Copy, Debug)]
pub enum PerInstance<'a> {
    /// One value for every name and instance.
    Scalar(f64),
    /// One row (length `len`) shared by every instance.
    Shared(&'a [f64]),
    /// One row per instance, row-major (`batch * len`).
    Rows(&'a [f64]),
}

impl PerInstance<'_> {
    fn get(&self, instance: usize, len: usize, j: usize) -> f64 {
        match self {
            PerInstance::Scalar(v) => *v,
            PerInstance::Shared(s) => s[j],
            PerInstance::Rows(s) => s[instance * len + j],
        }
    }

    /// The row of instance `i` (length `len`), borrowed when stored, else written to `buf`.
    fn row<'b>(&'b self, i: usize, len: usize, buf: &'b mut Vec<f64>) -> &'b [f64] {
        match self {
            PerInstance::Scalar(v) => {
                buf.clear();
                buf.resize(len, *v);
                buf
            }
            PerInstance::Shared(s) => s,
            PerInstance::Rows(s) => &s[i * len..(i + 1) * len],
        }
    }

    fn check_len(&self, name: &str, batch: usize, len: usize) -> Result<()> {
        let (got, want) = match self {
            PerInstance::Scalar(_) => return Ok(()),
            PerInstance::Shared(s) => (s.len(), len),
            PerInstance::Rows(s) => (s.len(), batch * len),
        };
        if got != want {
            return Err(Error::Data(format!(
                "{name} has {got} values, expected {want} (batch {batch} x {len})"
            )));
        }
        Ok(())
    }
}

/// The factor risk model `Σ = F Ω F' + diag(d)`, shared by the batch.
#[derive(Clone, Copy, Debug)]
pub struct RiskModel<'a> {
    /// Number of factors `k`.
    pub factors: usize,
    /// `F`, names x factors, row-major (`n * k`).
    pub loadings: &'a [f64],
    /// `Ω`, factors x factors, symmetric positive semidefinite.
    pub factor_cov: &'a [f64],
    /// `d`, the specific variances (`n`, >= 0).
    pub specific_var: &'a [f64],
}

/// Linear group constraints `glo <= G w <= ghi`, `G` shared by the batch.
#[derive(Clone, Copy, Debug)]
pub struct Groups<'a> {
    /// Number of group rows `m`.
    pub rows: usize,
    /// `G`, rows x names, row-major.
    pub matrix: &'a [f64],
    /// Lower bounds (`-inf` for none), per row.
    pub lo: PerInstance<'a>,
    /// Upper bounds (`+inf` for none), per row.
    pub hi: PerInstance<'a>,
}

/// A batch of capped-weight problems over one universe of `names`.
#[derive(Clone, Copy, Debug)]
pub struct CappedQp<'a> {
    pub batch: usize,
    pub names: usize,
    /// `s`, batch x names.
    pub scores: &'a [f64],
    /// `b`, the benchmark weights (optional; zero when absent).
    pub bench: Option<PerInstance<'a>>,
    /// Required when `gamma > 0`.
    pub risk: Option<RiskModel<'a>>,
    pub gamma: f64,
    pub lo: PerInstance<'a>,
    pub hi: PerInstance<'a>,
    pub groups: Option<Groups<'a>>,
}

/// Outcome of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Optimal,
    Infeasible,
    /// The active-set method stopped without an optimum on this instance (a bug or an
    /// extremely ill-conditioned risk model); weights and objective are NaN, and the other
    /// instances of the batch are unaffected.
    SolverError,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Optimal => "optimal",
            Status::Infeasible => "infeasible",
            Status::SolverError => "solver_error",
        }
    }
}

/// Results in instance order; infeasible and solver-error instances hold NaN weights and
/// objective.
#[derive(Clone, Debug, PartialEq)]
pub struct FastBatch {
    /// batch x names, row-major.
    pub weights: Vec<f64>,
    /// `γ/2 (w-b)'Σ(w-b) - s'w`, per instance.
    pub objective: Vec<f64>,
    pub status: Vec<Status>,
    pub iterations: Vec<u32>,
}

/// Slack on `sum(hi) >= 1` and on a phase-1 optimum before calling an instance infeasible.
const FEASIBILITY_TOL: f64 = 1e-10;

fn check_finite(name: &str, values: &[f64], width: usize, what: &str) -> Result<()> {
    for (idx, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            let (row, col) = (idx / width.max(1), idx % width.max(1));
            return Err(Error::Data(format!(
                "{name}[{row}, {col}] is {v}: {what} must be finite"
            )));
        }
    }
    Ok(())
}

/// The first error of `check` over instances `start..end`, in instance order (checked in
/// parallel; the result does not depend on the thread count).
fn per_instance_first<F>(start: usize, end: usize, check: F) -> Result<()>
where
    F: Fn(usize) -> Result<()> + Sync + Send,
{
    match (start..end)
        .into_par_iter()
        .map(check)
        .find_first(|r| r.is_err())
    {
        Some(err) => err,
        None => Ok(()),
    }
}

/// Checks the shared inputs and the per-instance inputs of instances `start..end`.
fn validate(p: &CappedQp<'_>, start: usize, end: usize) -> Result<()> {
    let (bsz, n) = (p.batch, p.names);
    if p.scores.len() != bsz * n {
        return Err(Error::Data(format!(
            "scores has {} values, expected batch {bsz} x {n} names",
            p.scores.len()
        )));
    }
    per_instance_first(start, end, |i| {
        let row = &p.scores[i * n..(i + 1) * n];
        match row.iter().position(|v| !v.is_finite()) {
            Some(j) => Err(Error::Data(format!(
                "scores is {} at instance {i}, name {j}: scores must be finite",
                row[j]
            ))),
            None => Ok(()),
        }
    })?;
    if !(p.gamma.is_finite() && p.gamma >= 0.0) {
        return Err(Error::Data(format!(
            "gamma is {}: the risk aversion must be finite and >= 0",
            p.gamma
        )));
    }
    if let Some(b) = &p.bench {
        b.check_len("bench", bsz, n)?;
        per_instance_first(start, end, |i| {
            let mut buf = Vec::new();
            let row = b.row(i, n, &mut buf);
            match row.iter().position(|v| !v.is_finite()) {
                Some(j) => Err(Error::Data(format!(
                    "bench is {} at instance {i}, name {j}: benchmark weights must be finite",
                    row[j]
                ))),
                None => Ok(()),
            }
        })?;
    }
    p.lo.check_len("lo", bsz, n)?;
    p.hi.check_len("hi", bsz, n)?;
    per_instance_first(start, end, |i| {
        let (mut lo_buf, mut hi_buf) = (Vec::new(), Vec::new());
        let lo_row = p.lo.row(i, n, &mut lo_buf);
        let hi_row = p.hi.row(i, n, &mut hi_buf);
        for (j, (&lo, &hi)) in lo_row.iter().zip(hi_row).enumerate() {
            // `lo <= hi` with both finite, in one comparison chain for the common case.
            if lo.is_finite() && hi.is_finite() && lo <= hi {
                continue;
            }
            if !lo.is_finite() || !hi.is_finite() {
                return Err(Error::Data(format!(
                    "bounds at instance {i}, name {j} are lo={lo}, hi={hi}: both must be finite"
                )));
            }
            return Err(Error::Data(format!(
                "lo > hi at instance {i}, name {j}: lo={lo}, hi={hi}"
            )));
        }
        Ok(())
    })?;
    if let Some(r) = &p.risk {
        let k = r.factors;
        if r.loadings.len() != n * k {
            return Err(Error::Data(format!(
                "loadings has {} values, expected {n} names x {k} factors",
                r.loadings.len()
            )));
        }
        if r.factor_cov.len() != k * k {
            return Err(Error::Data(format!(
                "factor_cov has {} values, expected {k} x {k}",
                r.factor_cov.len()
            )));
        }
        if r.specific_var.len() != n {
            return Err(Error::Data(format!(
                "specific_var has {} values, expected {n} (one per name)",
                r.specific_var.len()
            )));
        }
        check_finite("loadings", r.loadings, k, "factor loadings")?;
        check_finite("factor_cov", r.factor_cov, k, "the factor covariance")?;
        for a in 0..k {
            for b in 0..a {
                let (x, y) = (r.factor_cov[a * k + b], r.factor_cov[b * k + a]);
                if (x - y).abs() > 1e-12 * (1.0 + x.abs().max(y.abs())) {
                    return Err(Error::Data(format!(
                        "factor_cov is not symmetric: [{a}, {b}] = {x} but [{b}, {a}] = {y}"
                    )));
                }
            }
            if r.factor_cov[a * k + a] < 0.0 {
                return Err(Error::Data(format!(
                    "factor_cov[{a}, {a}] = {}: a variance must be >= 0",
                    r.factor_cov[a * k + a]
                )));
            }
        }
        for (j, &d) in r.specific_var.iter().enumerate() {
            if !(d.is_finite() && d >= 0.0) {
                return Err(Error::Data(format!(
                    "specific_var[{j}] is {d}: specific variances must be finite and >= 0"
                )));
            }
        }
    } else if p.gamma > 0.0 {
        return Err(Error::Data(format!(
            "gamma is {} but no risk model was given: pass loadings, factor_cov and \
             specific_var, or gamma=0 for a linear objective",
            p.gamma
        )));
    }
    if let Some(g) = &p.groups {
        let m = g.rows;
        if g.matrix.len() != m * n {
            return Err(Error::Data(format!(
                "groups has {} values, expected {m} rows x {n} names",
                g.matrix.len()
            )));
        }
        check_finite("groups", g.matrix, n, "group coefficients")?;
        g.lo.check_len("group_lo", bsz, m)?;
        g.hi.check_len("group_hi", bsz, m)?;
        for i in start..end {
            for r in 0..m {
                let (lo, hi) = (g.lo.get(i, m, r), g.hi.get(i, m, r));
                if lo.is_nan() || hi.is_nan() || lo > hi || lo == f64::INFINITY {
                    return Err(Error::Data(format!(
                        "group bounds at instance {i}, group {r} are lo={lo}, hi={hi}: \
                         expected lo <= hi (use -inf/inf for one-sided bounds)"
                    )));
                }
                if hi == f64::NEG_INFINITY {
                    return Err(Error::Data(format!(
                        "group_hi at instance {i}, group {r} is -inf: no weights satisfy it"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Shared per-batch precomputation: `F Ω` (n x k) and `U = F L`.
struct Prepared {
    f_omega: Vec<f64>,
    /// `U = F L` with `Ω = L L'`: the Hessian is `γ (U U' + diag d)`.
    u: Vec<f64>,
}

/// Lower-triangular `L` (row-major) with `L L' = Ω` for a positive semidefinite `Ω`; columns
/// with a negligible pivot are left at zero, a clearly negative pivot is a data error.
fn cholesky_psd(omega: &[f64], k: usize) -> Result<Vec<f64>> {
    let maxdiag = (0..k).fold(0.0f64, |s, a| s.max(omega[a * k + a]));
    let tiny = 1e-13 * maxdiag.max(f64::MIN_POSITIVE);
    let mut l = vec![0.0; k * k];
    for j in 0..k {
        let mut dj = omega[j * k + j];
        for c in 0..j {
            dj -= l[j * k + c] * l[j * k + c];
        }
        if dj < -1e-10 * maxdiag.max(1.0) {
            return Err(Error::Data(format!(
                "factor_cov is not positive semidefinite (pivot {dj:.3e} at factor {j})"
            )));
        }
        if dj <= tiny {
            continue;
        }
        let root = dj.sqrt();
        l[j * k + j] = root;
        for i in j + 1..k {
            let mut s = omega[i * k + j];
            for c in 0..j {
                s -= l[i * k + c] * l[j * k + c];
            }
            l[i * k + j] = s / root;
        }
    }
    Ok(l)
}

fn prepare(p: &CappedQp<'_>) -> Result<Prepared> {
    let n = p.names;
    let f_omega = match &p.risk {
        Some(r) => {
            let k = r.factors;
            let mut fo = vec![0.0; n * k];
            for j in 0..n {
                for a in 0..k {
                    let mut s = 0.0;
                    for b in 0..k {
                        s += r.loadings[j * k + b] * r.factor_cov[b * k + a];
                    }
                    fo[j * k + a] = s;
                }
            }
            fo
        }
        None => Vec::new(),
    };
    let u = match &p.risk {
        Some(r) => {
            let k = r.factors;
            let l = cholesky_psd(r.factor_cov, k)?;
            let mut u = vec![0.0; n * k];
            for j in 0..n {
                for a in 0..k {
                    let mut s = 0.0;
                    for b in a..k {
                        s += r.loadings[j * k + b] * l[b * k + a];
                    }
                    u[j * k + a] = s;
                }
            }
            u
        }
        None => Vec::new(),
    };
    Ok(Prepared { f_omega, u })
}

/// One instance's outcome; its weights are written to the caller's row.
struct InstanceOut {
    objective: f64,
    status: Status,
    iterations: u32,
}

fn infeasible(w: &mut [f64], iterations: u32) -> InstanceOut {
    w.fill(f64::NAN);
    InstanceOut {
        objective: f64::NAN,
        status: Status::Infeasible,
        iterations,
    }
}

/// One instance; a numerical failure of the method becomes [`Status::SolverError`] so that
/// it never takes down the batch (bad inputs are validated before and stay errors).
fn solve_or_flag(
    p: &CappedQp<'_>,
    prep: &Prepared,
    i: usize,
    w: &mut [f64],
) -> Result<InstanceOut> {
    let flagged = |w: &mut [f64]| {
        w.fill(f64::NAN);
        Ok(InstanceOut {
            objective: f64::NAN,
            status: Status::SolverError,
            iterations: 0,
        })
    };
    match solve_one(p, prep, i, w) {
        Err(Error::Solver(_)) => flagged(w),
        // A claimed optimum that breaks a constraint (found by tests/proptest_entry.rs: scores
        // near 1e20 next to a unit risk model lost every weight to rounding) is flagged, never
        // returned as a silent wrong answer.
        Ok(out) if out.status == Status::Optimal && !satisfies_constraints(p, i, w) => flagged(w),
        other => other,
    }
}

/// Whether instance `i`'s weights are finite, within their bounds and group bounds, and sum to
/// 1, each within a tolerance far above rounding and far below any visible error.
fn satisfies_constraints(p: &CappedQp<'_>, i: usize, w: &[f64]) -> bool {
    const TOL: f64 = 1e-8;
    let n = p.names;
    if w.iter().any(|x| !x.is_finite()) {
        return false;
    }
    // Absolute, not relative to the weights' size: weights of 1e24 that cancel to a sum of 0
    // (bounds far beyond any index) have no representable answer and must be flagged.
    if (w.iter().sum::<f64>() - 1.0).abs() > TOL {
        return false;
    }
    let in_bounds = w.iter().enumerate().all(|(j, &x)| {
        let (lo, hi) = (p.lo.get(i, n, j), p.hi.get(i, n, j));
        x >= lo - TOL * lo.abs().max(1.0) && x <= hi + TOL * hi.abs().max(1.0)
    });
    if !in_bounds {
        return false;
    }
    let Some(g) = &p.groups else { return true };
    (0..g.rows).all(|row| {
        let coef = &g.matrix[row * n..(row + 1) * n];
        let value: f64 = coef.iter().zip(w).map(|(a, x)| a * x).sum();
        let size: f64 = coef.iter().zip(w).map(|(a, x)| (a * x).abs()).sum::<f64>();
        let tol = TOL * size.max(1.0);
        let (lo, hi) = (g.lo.get(i, g.rows, row), g.hi.get(i, g.rows, row));
        value >= lo - tol && value <= hi + tol
    })
}

/// Dense Hessian `γ (F_R Ω F_R' + diag d_R)` on the free names.
fn dense_hessian(p: &CappedQp<'_>, prep: &Prepared, free: &[usize]) -> Vec<f64> {
    let (nf, gamma) = (free.len(), p.gamma);
    let mut q = vec![0.0; nf * nf];
    if gamma > 0.0 {
        if let Some(r) = &p.risk {
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
        }
    }
    q
}

/// One instance; its weights go to `w` (length `names`).
fn solve_one(p: &CappedQp<'_>, prep: &Prepared, i: usize, w: &mut [f64]) -> Result<InstanceOut> {
    let n = p.names;
    let gamma = p.gamma;
    let (mut lo_buf, mut hi_buf) = (Vec::new(), Vec::new());
    let lo_all = p.lo.row(i, n, &mut lo_buf);
    let hi_all = p.hi.row(i, n, &mut hi_buf);
    // One pass over the universe: the free names, and the fixed names (lo == hi) with a
    // nonzero weight, usually none (a zero membership mask); only those enter the sums below.
    let mut free: Vec<usize> = Vec::new();
    let mut fixed_nz: Vec<usize> = Vec::new();
    for (j, (&l, &h)) in lo_all.iter().zip(hi_all).enumerate() {
        if h > l {
            free.push(j);
        } else if l != 0.0 {
            fixed_nz.push(j);
        }
    }
    let nf = free.len();
    w.copy_from_slice(lo_all); // fixed names sit at lo == hi
    let fixed_sum: f64 = fixed_nz.iter().map(|&j| lo_all[j]).sum();
    let held_buf: Vec<usize>;
    let held: &[usize] = if fixed_nz.is_empty() {
        &free
    } else {
        let mut h = [free.as_slice(), fixed_nz.as_slice()].concat();
        h.sort_unstable();
        held_buf = h;
        &held_buf
    };
    let target = 1.0 - fixed_sum;
    let sum_lo: f64 = free.iter().map(|&j| lo_all[j]).sum();
    let sum_hi: f64 = free.iter().map(|&j| hi_all[j]).sum();
    if sum_hi < target - FEASIBILITY_TOL || sum_lo > target + FEASIBILITY_TOL {
        return Ok(infeasible(w, 0));
    }

    // Linear term on the free names: c = s + γ Σ (b - w_F) (w_F: the fixed names' weights),
    // with Σ = U U' + diag d evaluated on the free names only.
    let scores = &p.scores[i * n..(i + 1) * n];
    let mut shift = vec![0.0; nf];
    if gamma > 0.0 {
        if let Some(r) = &p.risk {
            let k = r.factors;
            let mut b_buf = Vec::new();
            let bench = p.bench.as_ref().map(|b| b.row(i, n, &mut b_buf));
            let mut uv = vec![0.0; k];
            let mut add = |j: usize, v: f64| {
                if v != 0.0 {
                    for a_ in 0..k {
                        uv[a_] += prep.u[j * k + a_] * v;
                    }
                }
            };
            match (bench, fixed_nz.is_empty()) {
                (None, true) => {}
                (Some(b), true) => {
                    for (j, &v) in b.iter().enumerate() {
                        add(j, v);
                    }
                }
                _ => {
                    for j in 0..n {
                        let fixed = if hi_all[j] <= lo_all[j] {
                            lo_all[j]
                        } else {
                            0.0
                        };
                        add(j, bench.map_or(0.0, |b| b[j]) - fixed);
                    }
                }
            }
            for (a_, &j) in free.iter().enumerate() {
                let uj = &prep.u[j * k..(j + 1) * k];
                let bj = bench.map_or(0.0, |b| b[j]);
                shift[a_] =
                    uj.iter().zip(&uv).map(|(x, y)| x * y).sum::<f64>() + r.specific_var[j] * bj;
            }
        }
    }
    let c: Vec<f64> = free
        .iter()
        .zip(&shift)
        .map(|(&j, sh)| scores[j] + gamma * sh)
        .collect();

    // General rows: the budget, then the groups (bounds shifted by the fixed names).
    let m_groups = p.groups.map_or(0, |g| g.rows);
    let mut a = vec![1.0; nf];
    let mut rlo = vec![target];
    let mut rhi = vec![target];
    if let Some(g) = &p.groups {
        for r in 0..g.rows {
            let grow = &g.matrix[r * n..(r + 1) * n];
            let fixed_part: f64 = fixed_nz.iter().map(|&j| grow[j] * lo_all[j]).sum();
            a.extend(free.iter().map(|&j| grow[j]));
            rlo.push(g.lo.get(i, g.rows, r) - fixed_part);
            rhi.push(g.hi.get(i, g.rows, r) - fixed_part);
        }
    }
    let lo: Vec<f64> = free.iter().map(|&j| lo_all[j]).collect();
    let hi: Vec<f64> = free.iter().map(|&j| hi_all[j]).collect();

    // Greedy vertex: fill by c descending; the name that completes the budget is basic.
    let mut order: Vec<usize> = (0..nf).collect();
    order.sort_by(|&x, &y| c[y].total_cmp(&c[x]).then(x.cmp(&y)));
    let mut x = lo.clone();
    let mut var = vec![Active::Lower; nf];
    let mut rem = target - sum_lo;
    let mut basic = None;
    for &j in &order {
        if basic.is_some() {
            break;
        }
        let take = (hi[j] - lo[j]).min(rem.max(0.0));
        x[j] += take;
        rem -= take;
        if rem <= 0.0 {
            basic = Some(j);
        } else {
            var[j] = Active::Upper;
            x[j] = hi[j];
        }
    }
    let basic = match basic {
        Some(b) => b,
        // sum(hi) within tolerance of the target: everything at hi, last name basic.
        None => *order.last().ok_or_else(|| {
            Error::Solver(format!("instance {i}: no free names but budget unmet"))
        })?,
    };
    if nf == 0 {
        return Ok(finish(p, prep, i, w, held, 0));
    }
    var[basic] = Active::No;
    let others: f64 = (0..nf).filter(|&j| j != basic).map(|j| x[j]).sum();
    x[basic] = target - others;

    let max_iter = 50 * (nf as u32 + 2 * m_groups as u32) + 100;
    let mut row = vec![Active::No; 1 + m_groups];
    row[0] = Active::Lower; // the budget (an equality)

    let violated = (0..m_groups).any(|r| {
        let ax: f64 = a[(r + 1) * nf..(r + 2) * nf]
            .iter()
            .zip(&x)
            .map(|(u, v)| u * v)
            .sum();
        ax > rhi[r + 1] + FEASIBILITY_TOL * (1.0 + ax.abs())
            || ax < rlo[r + 1] - FEASIBILITY_TOL * (1.0 + ax.abs())
    });

    // Positive definite on the free names (γ > 0, every d > 0): the factor form, whose KKT
    // systems have k + rows unknowns, and a crash start (any working set is then valid).
    let risk = p
        .risk
        .filter(|r| gamma > 0.0 && free.iter().all(|&j| r.specific_var[j] > 0.0));
    let pd = risk.is_some();
    let (x, iterations) = if violated && !pd {
        let q = dense_hessian(p, prep, &free);
        match phase1_then_solve(
            i, nf, m_groups, &q, &c, &lo, &hi, &a, &rlo, &rhi, x, var, max_iter, true,
        )? {
            Some(v) => v,
            None => return Ok(infeasible(w, 0)),
        }
    } else {
        let q = match risk {
            Some(r) => {
                let k = r.factors;
                let mut f = Vec::with_capacity(nf * k);
                for &j in &free {
                    f.extend_from_slice(&prep.u[j * k..(j + 1) * k]);
                }
                Hessian::Factor {
                    gamma,
                    k,
                    u: f,
                    d: free.iter().map(|&j| r.specific_var[j]).collect(),
                }
            }
            None => Hessian::Dense(dense_hessian(p, prep, &free)),
        };
        let mut qp = Qp {
            n: nf,
            q,
            c,
            lo,
            hi,
            m: 1 + m_groups,
            a,
            rlo,
            rhi,
        };
        // Positive definite: first try primal-dual active-set iterations from the bounds the
        // budget-only minimiser violates (no feasible start needed); exact when they settle,
        // which they usually do in a few solves. Otherwise the primal method below, crash-started.
        let xu = if pd {
            active_set::equality_minimiser(&qp, &[0])
        } else {
            None
        };
        if let Some(xu) = &xu {
            let guess: Vec<Active> = (0..nf)
                .map(|j| {
                    if xu[j] <= qp.lo[j] {
                        Active::Lower
                    } else if xu[j] >= qp.hi[j] {
                        Active::Upper
                    } else {
                        Active::No
                    }
                })
                .collect();
            if let Some(st) = active_set::primal_dual(&qp, guess, 12) {
                for (a_, &j) in free.iter().enumerate() {
                    w[j] = st.x[a_];
                }
                return Ok(finish(p, prep, i, w, held, st.iterations));
            }
        }
        let (x, mut var, phase1_iters) = if violated {
            // Phase 1 only (an LP, cheap at vertices); phase 2 restarts from its point below.
            let Some((x, its)) = phase1_then_solve(
                i,
                nf,
                m_groups,
                &[],
                &qp.c,
                &qp.lo,
                &qp.hi,
                &qp.a,
                &qp.rlo,
                &qp.rhi,
                x,
                var,
                max_iter,
                false,
            )?
            else {
                return Ok(infeasible(w, 0));
            };
            let var: Vec<Active> = (0..nf)
                .map(|j| {
                    if x[j] <= qp.lo[j] {
                        Active::Lower
                    } else if x[j] >= qp.hi[j] {
                        Active::Upper
                    } else {
                        Active::No
                    }
                })
                .collect();
            (x, var, its)
        } else {
            (x, var, 0)
        };
        if pd {
            // The primal method's steps need A_W p = 0 to rounding, which the dense KKT solve
            // gives and the eliminated factor form does not always: use the dense Hessian.
            qp.q = Hessian::Dense(dense_hessian(p, prep, &free));
        }
        if let Some(xu) = &xu {
            for j in 0..nf {
                let keep = match var[j] {
                    Active::Lower => xu[j] <= qp.lo[j],
                    Active::Upper => xu[j] >= qp.hi[j],
                    Active::No => false,
                };
                if !keep {
                    var[j] = Active::No;
                }
            }
            // The budget row needs a free name to keep the working set full rank.
            if var.iter().all(|&v| v != Active::No) {
                var[0] = Active::No;
            }
        }
        let mut st = State {
            x,
            var,
            row,
            row_mult: Vec::new(),
            iterations: phase1_iters,
        };
        active_set::solve(&qp, &mut st, max_iter).map_err(|f| failure(i, f))?;
        (st.x, st.iterations)
    };
    for (a_, &j) in free.iter().enumerate() {
        w[j] = x[a_];
    }
    Ok(finish(p, prep, i, w, held, iterations))
}

fn failure(i: usize, f: Failure) -> Error {
    Error::Solver(format!(
        "instance {i}: the active-set method failed ({f:?}); this is a bug or an extremely \
         ill-conditioned risk model"
    ))
}

/// Phase 1 minimises the total group violation with elastic slacks from the greedy vertex;
/// phase 2 (when `phase2`) fixes the slacks at zero and optimises from the phase-1 vertex with
/// the dense Hessian `q`. `None`: infeasible.
#[allow(clippy::too_many_arguments)]
fn phase1_then_solve(
    i: usize,
    nf: usize,
    m: usize,
    q: &[f64],
    c: &[f64],
    lo: &[f64],
    hi: &[f64],
    a: &[f64],
    rlo: &[f64],
    rhi: &[f64],
    x0: Vec<f64>,
    var0: Vec<Active>,
    max_iter: u32,
    phase2: bool,
) -> Result<Option<(Vec<f64>, u32)>> {
    // Variables: w (nf), then per group row r a pair (down_r, up_r) >= 0 entering as
    // G_r w + down_r - up_r.
    let nt = nf + 2 * m;
    let mut at = vec![0.0; (1 + m) * nt];
    for r in 0..=m {
        at[r * nt..r * nt + nf].copy_from_slice(&a[r * nf..(r + 1) * nf]);
        if r > 0 {
            at[r * nt + nf + 2 * (r - 1)] = 1.0;
            at[r * nt + nf + 2 * (r - 1) + 1] = -1.0;
        }
    }
    let mut x = x0;
    x.resize(nt, 0.0);
    let mut var = var0;
    var.resize(nt, Active::Lower);
    let mut row = vec![Active::No; 1 + m];
    row[0] = Active::Lower;
    let mut scale = 1.0f64;
    for r in 1..=m {
        let ax: f64 = a[r * nf..(r + 1) * nf]
            .iter()
            .zip(&x)
            .map(|(u, v)| u * v)
            .sum();
        scale = scale.max(ax.abs());
        if ax > rhi[r] {
            x[nf + 2 * (r - 1) + 1] = ax - rhi[r];
            var[nf + 2 * (r - 1) + 1] = Active::No;
            row[r] = Active::Upper;
        } else if ax < rlo[r] {
            x[nf + 2 * (r - 1)] = rlo[r] - ax;
            var[nf + 2 * (r - 1)] = Active::No;
            row[r] = Active::Lower;
        }
    }
    let mut lot = lo.to_vec();
    lot.resize(nt, 0.0);
    let mut hit = hi.to_vec();
    hit.resize(nt, f64::INFINITY);
    let mut ct = vec![0.0; nt];
    for v in &mut ct[nf..] {
        *v = -1.0;
    }
    let mut qp = Qp {
        n: nt,
        q: Hessian::Dense(vec![0.0; nt * nt]),
        c: ct,
        lo: lot,
        hi: hit,
        m: 1 + m,
        a: at,
        rlo: rlo.to_vec(),
        rhi: rhi.to_vec(),
    };
    let mut st = State {
        x,
        var,
        row,
        row_mult: Vec::new(),
        iterations: 0,
    };
    active_set::solve(&qp, &mut st, max_iter).map_err(|f| failure(i, f))?;
    let violation: f64 = st.x[nf..].iter().sum();
    if violation > FEASIBILITY_TOL * scale {
        return Ok(None);
    }
    if !phase2 {
        st.x.truncate(nf);
        for j in 0..nf {
            st.x[j] = st.x[j].clamp(lo[j], hi[j]);
        }
        return Ok(Some((st.x, st.iterations)));
    }
    for j in nf..nt {
        st.x[j] = 0.0;
        qp.hi[j] = 0.0;
        qp.c[j] = 0.0;
    }
    for a_ in 0..nf {
        qp.c[a_] = c[a_];
        if let Hessian::Dense(qt) = &mut qp.q {
            qt[a_ * nt..a_ * nt + nf].copy_from_slice(&q[a_ * nf..(a_ + 1) * nf]);
        }
    }
    let limit = st.iterations + max_iter;
    active_set::solve(&qp, &mut st, limit).map_err(|f| failure(i, f))?;
    st.x.truncate(nf);
    Ok(Some((st.x, st.iterations)))
}

/// Attach the objective in tracking-error form, `γ/2 (w-b)'Σ(w-b) - s'w`.
/// `held`: the names whose weight may be nonzero, ascending (zero elsewhere).
fn finish(
    p: &CappedQp<'_>,
    prep: &Prepared,
    i: usize,
    w: &[f64],
    held: &[usize],
    iterations: u32,
) -> InstanceOut {
    let n = p.names;
    let scores = &p.scores[i * n..(i + 1) * n];
    let mut obj = -held.iter().map(|&j| scores[j] * w[j]).sum::<f64>();
    if p.gamma > 0.0 {
        if let Some(r) = &p.risk {
            // (w-b)'Σ(w-b) = |U'(w-b)|² + Σ d (w-b)², over the names where w or b is nonzero.
            let k = r.factors;
            let mut b_buf = Vec::new();
            let bench = p.bench.as_ref().map(|b| b.row(i, n, &mut b_buf));
            let mut ue = vec![0.0; k];
            let mut spec = 0.0;
            for j in 0..n {
                let e = w[j] - bench.map_or(0.0, |b| b[j]);
                if e != 0.0 {
                    for a in 0..k {
                        ue[a] += prep.u[j * k + a] * e;
                    }
                    spec += r.specific_var[j] * e * e;
                }
            }
            let quad = ue.iter().map(|v| v * v).sum::<f64>() + spec;
            obj += 0.5 * p.gamma * quad;
        }
    }
    InstanceOut {
        objective: obj,
        status: Status::Optimal,
        iterations,
    }
}

/// Solve a contiguous range of instances `[start, end)` of the batch in parallel.
///
/// Infeasible instances get [`Status::Infeasible`] and NaN weights, instances on which the
/// method fails numerically [`Status::SolverError`] and NaN weights; bad inputs are a
/// [`Error::Data`] naming the argument and the instance.
pub fn capped_qp_range(p: &CappedQp<'_>, start: usize, end: usize) -> Result<FastBatch> {
    let end = end.min(p.batch);
    let start = start.min(end);
    let mut weights = vec![0.0; (end - start) * p.names];
    let s = capped_qp_range_into(p, start, end, &mut weights)?;
    Ok(FastBatch {
        weights,
        objective: s.objective,
        status: s.status,
        iterations: s.iterations,
    })
}

/// Per-instance outcomes of [`capped_qp_range_into`], whose weights go to the caller's buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct FastStats {
    pub objective: Vec<f64>,
    pub status: Vec<Status>,
    pub iterations: Vec<u32>,
}

/// [`capped_qp_range`] writing the weights of instances `[start, end)` to `weights`
/// (`(end - start) x names`, row-major) instead of a new buffer.
pub fn capped_qp_range_into(
    p: &CappedQp<'_>,
    start: usize,
    end: usize,
    weights: &mut [f64],
) -> Result<FastStats> {
    let end = end.min(p.batch);
    let start = start.min(end);
    let n = p.names;
    if weights.len() != (end - start) * n {
        return Err(Error::Data(format!(
            "weights buffer has {} values, expected {} instances x {n} names",
            weights.len(),
            end - start
        )));
    }
    validate(p, start, end)?;
    let prep = prepare(p)?;
    let outs: Vec<Result<InstanceOut>> = if n == 0 {
        (start..end)
            .into_par_iter()
            .map(|i| solve_or_flag(p, &prep, i, &mut []))
            .collect()
    } else {
        weights
            .par_chunks_mut(n)
            .zip(start..end)
            .map(|(w, i)| solve_or_flag(p, &prep, i, w))
            .collect()
    };
    let mut out = FastStats {
        objective: Vec::with_capacity(end - start),
        status: Vec::with_capacity(end - start),
        iterations: Vec::with_capacity(end - start),
    };
    for o in outs {
        let o = o?;
        out.objective.push(o.objective);
        out.status.push(o.status);
        out.iterations.push(o.iterations);
    }
    Ok(out)
}

/// Solve the whole batch. See [`capped_qp_range`].
pub fn capped_qp_batch(p: &CappedQp<'_>) -> Result<FastBatch> {
    capped_qp_range(p, 0, p.batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(scores: &[f64], hi: f64) -> CappedQp<'_> {
        CappedQp {
            batch: 1,
            names: scores.len(),
            scores,
            bench: None,
            risk: None,
            gamma: 0.0,
            lo: PerInstance::Scalar(0.0),
            hi: PerInstance::Scalar(hi),
            groups: None,
        }
    }

    #[test]
    fn linear_is_greedy_fill() {
        let s = [0.1, 0.9, 0.5, 0.3];
        let out = capped_qp_batch(&linear(&s, 0.4)).unwrap();
        let w = &out.weights;
        assert!((w[1] - 0.4).abs() < 1e-15 && (w[2] - 0.4).abs() < 1e-15);
        assert!((w[3] - 0.2).abs() < 1e-15 && w[0] == 0.0);
        assert_eq!(out.status, vec![Status::Optimal]);
    }

    #[test]
    fn infeasible_caps_do_not_stop_the_batch() {
        let s = [0.1, 0.9, 0.5];
        let out = capped_qp_batch(&linear(&s, 0.3)).unwrap();
        assert_eq!(out.status, vec![Status::Infeasible]);
        assert!(out.weights.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn diagonal_qp_matches_hand_solution() {
        // min 0.5 * sum w_i^2 - s'w, sum w = 1, 0 <= w <= 1: w_i = s_i - nu, clipped.
        // s = (1, 0.5, -1): w = (0.75, 0.25, 0) with nu = 0.25.
        let s = [1.0, 0.5, -1.0];
        let f = [0.0, 0.0, 0.0];
        let om = [0.0];
        let d = [1.0, 1.0, 1.0];
        let mut p = linear(&s, 1.0);
        p.gamma = 1.0;
        p.risk = Some(RiskModel {
            factors: 1,
            loadings: &f,
            factor_cov: &om,
            specific_var: &d,
        });
        let out = capped_qp_batch(&p).unwrap();
        let w = &out.weights;
        assert!((w[0] - 0.75).abs() < 1e-14 && (w[1] - 0.25).abs() < 1e-14 && w[2] == 0.0);
    }

    #[test]
    fn zero_factor_model_matches_hand_solution() {
        // The same diagonal problem with k = 0 factors (empty loadings): same hand solution.
        let s = [1.0, 0.5, -1.0];
        let d = [1.0, 1.0, 1.0];
        let mut p = linear(&s, 1.0);
        p.gamma = 1.0;
        p.risk = Some(RiskModel {
            factors: 0,
            loadings: &[],
            factor_cov: &[],
            specific_var: &d,
        });
        let out = capped_qp_batch(&p).unwrap();
        let w = &out.weights;
        assert_eq!(out.status, vec![Status::Optimal]);
        assert!((w[0] - 0.75).abs() < 1e-14 && (w[1] - 0.25).abs() < 1e-14 && w[2] == 0.0);
    }

    #[test]
    fn group_bound_binds_in_linear_case() {
        // Names 0, 1 in one group capped at 30%: best is 0.3 on name 0 (score 0.9), rest on 2.
        let s = [0.9, 0.8, 0.5, 0.1];
        let g = [1.0, 1.0, 0.0, 0.0];
        let mut p = linear(&s, 0.6);
        p.groups = Some(Groups {
            rows: 1,
            matrix: &g,
            lo: PerInstance::Scalar(f64::NEG_INFINITY),
            hi: PerInstance::Scalar(0.3),
        });
        let out = capped_qp_batch(&p).unwrap();
        let w = &out.weights;
        assert!((w[0] - 0.3).abs() < 1e-14 && w[1].abs() < 1e-14, "{w:?}");
        assert!(
            (w[2] - 0.6).abs() < 1e-14 && (w[3] - 0.1).abs() < 1e-14,
            "{w:?}"
        );
    }

    /// A plain 8-name instance (test market seed 1, N = 40, 3 factors, γ = 20, cap 0.2) on
    /// which the primal method used to add a bound that made its working set rank deficient
    /// and stopped with `Singular`. Clarabel solves it as optimal.
    #[test]
    fn degenerate_working_set_is_not_singular() {
        const LOADINGS: [f64; 120] = [
            0.345584192064786,
            0.8216181435011584,
            0.33043707618338714,
            -1.303157231604361,
            0.9053558666731177,
            0.4463745723640113,
            -0.5369532353602852,
            0.5811181041963531,
            0.36457239618607573,
            0.294132496655526,
            0.02842224131579679,
            0.5467129866124469,
            -0.7364540870016669,
            -0.16290994799305278,
            -0.48211931267997826,
            0.5988462126346276,
            0.03972210748165899,
            -0.2924567509650886,
            -0.7819084623568421,
            -0.2571922406188707,
            0.008142180518343508,
            -0.2756029052993704,
            1.2940638143982073,
            1.0067243153057943,
            -2.7111624789659685,
            -1.8890132459676727,
            -0.17477209205516195,
            -0.42219041157635356,
            0.2136429974986111,
            0.21732193102256359,
            2.1178387550510482,
            -1.1120207626922813,
            -0.37760500712699807,
            2.0427716074923303,
            0.6467029962018469,
            0.6630633723762617,
            -0.5140063716874629,
            -1.6480751708556527,
            0.16746474422274113,
            0.10901408782154753,
            -1.2273520542445742,
            -0.6832266617805622,
            -0.07204367972722743,
            -0.9447516230607774,
            -0.09826996785221727,
            0.09548302746945433,
            0.03558623705548571,
            -0.5062916583143148,
            0.5937480717858228,
            0.8911669542823284,
            0.3208483045665637,
            -0.818230227390307,
            0.7316522837854408,
            -0.5014400184670523,
            0.8791606182879853,
            -1.0717874168774442,
            0.9144672031287812,
            -0.02006345461548042,
            -1.2487488903344155,
            -0.31389947196684775,
            0.05410227877154389,
            0.27279133916445375,
            -0.9821881249409777,
            -1.107373047165193,
            0.19958453284708083,
            -0.46674961687980204,
            0.23550561173022522,
            0.7595195224783792,
            -1.6487873663509485,
            0.2543881165176173,
            1.2246469675357323,
            -0.2975268443704732,
            -0.8108145832375699,
            0.7522438271795928,
            0.25344651620814146,
            0.8958830707775604,
            -0.3452157100512797,
            -1.4818182737222112,
            -0.11001076471125099,
            -0.4458281530112322,
            0.7753238220475741,
            0.1936328483771538,
            -1.6308492324351012,
            -1.1951630801031998,
            0.8837890365872553,
            0.6797650174178466,
            -0.6402433659084887,
            -0.001048796567280681,
            0.4455735537761861,
            0.4684043358472779,
            0.8762421961143501,
            0.256485627221562,
            -0.09482833896849817,
            -0.25884806478784556,
            1.0557428005332512,
            -2.2508542750785376,
            -0.13865532509133732,
            0.03300010398406011,
            -1.4253489608701877,
            0.33281361313804664,
            -0.651281012443394,
            0.8624447963157468,
            -0.1255920840343272,
            0.6691532407894528,
            1.2188436051712233,
            0.3829295827134724,
            -0.8757211434228455,
            -1.5143186317046384,
            1.7533841175163727,
            -0.11129219318751944,
            -0.6885649476343216,
            0.14425708806082496,
            -0.19141133048264922,
            0.8521422642126877,
            0.03392818243710029,
            0.013749583618419497,
            -0.7145797210329641,
            0.4695680987474934,
            -1.0338667223549824,
            0.6658894397639671,
        ];
        const FACTOR_COV: [f64; 9] = [
            0.1172933967984475,
            -0.004761494291503653,
            -0.0073056273355528185,
            -0.004761494291503653,
            0.08874173229793651,
            0.015706041474725874,
            -0.0073056273355528185,
            0.015706041474725874,
            0.03617937078033959,
        ];
        const SPECIFIC: [f64; 40] = [
            0.02252191435279751,
            0.033067988650118084,
            0.04886759902479019,
            0.04098656539694928,
            0.041645357926912215,
            0.040370740021583196,
            0.03387950922095026,
            0.04670769028683651,
            0.03758520621788324,
            0.030014257229474837,
            0.01308335234002155,
            0.029537969083420955,
            0.018513239813613372,
            0.01530785190187149,
            0.030242596901174916,
            0.041403411703878366,
            0.02180025771222078,
            0.040750870396366656,
            0.031025180926490162,
            0.015961920934828504,
            0.04859870975918943,
            0.0260654489555407,
            0.02180937022650783,
            0.04387993482534919,
            0.014978413300619194,
            0.03934361844294814,
            0.017512989702618734,
            0.025699671040503295,
            0.01927599513848554,
            0.04364911970769548,
            0.02560298207759447,
            0.048987712515291576,
            0.03501045937660427,
            0.037744913388116606,
            0.0308610048852967,
            0.02235872796302365,
            0.02582225684209715,
            0.04763736750647607,
            0.01804812802898658,
            0.04952875604880849,
        ];
        const SCORES: [f64; 40] = [
            0.7583058620038184,
            0.35978692649261024,
            0.6415135895056033,
            0.38098153929308753,
            0.38149293263992,
            0.5038029501945296,
            0.016722821635377083,
            0.4935715599433962,
            0.971598413446888,
            0.28546522878557845,
            0.7482179590766121,
            0.44278889007049504,
            0.20928104261778546,
            0.9050025708181295,
            0.016827284680212995,
            0.3035089265995107,
            0.9990258823239375,
            0.2621467961899895,
            0.849044521859272,
            0.6056831486557043,
            0.8060357075271236,
            0.6303177554434782,
            0.3626968570578484,
            0.7607887845834825,
            0.026484548903972338,
            0.4468129517344519,
            0.371854569870106,
            0.4770740056373495,
            0.1276206864960696,
            0.22250686594627245,
            0.5620515900997094,
            0.38776911565595396,
            0.7916562055903406,
            0.6051365892775145,
            0.8612666847869941,
            0.7323608373256045,
            0.601823447758565,
            0.2876156021959957,
            0.7827604679261685,
            0.2512675781710818,
        ];
        const BENCH: [f64; 40] = [
            0.00641644907435837,
            0.14717867940509177,
            0.008630671647666177,
            0.016918674726071982,
            0.0375616946326027,
            0.011904793829456105,
            0.01790695904026884,
            0.012946972717102996,
            0.01990639596544108,
            0.007056570757668664,
            0.014680407249943968,
            0.018497006635633705,
            0.016293656111151054,
            0.024075429440084287,
            0.01696919465044958,
            0.048313607447152414,
            0.016466136101332796,
            0.019843018728361448,
            0.011701540551799613,
            0.013436662792197235,
            0.006423794902693965,
            0.03821724146753484,
            0.00725712556371174,
            0.010790276904812234,
            0.03258156026303118,
            0.034024307857991584,
            0.01524706597133236,
            0.0030199371796706545,
            0.034640209358800286,
            0.029490415112729755,
            0.005540698770995613,
            0.04914739887521755,
            0.011284183328715966,
            0.007376606611088973,
            0.02503394117728112,
            0.019030280266738885,
            0.027858157758935007,
            0.0045665307543468975,
            0.1393142198724604,
            0.012451526498076279,
        ];
        let mask = [0usize, 7, 13, 23, 28, 34, 37, 38];
        let mut hi = [0.0; 40];
        for &j in &mask {
            hi[j] = 0.2;
        }
        let p = CappedQp {
            batch: 1,
            names: 40,
            scores: &SCORES,
            bench: Some(PerInstance::Shared(&BENCH)),
            risk: Some(RiskModel {
                factors: 3,
                loadings: &LOADINGS,
                factor_cov: &FACTOR_COV,
                specific_var: &SPECIFIC,
            }),
            gamma: 20.0,
            lo: PerInstance::Scalar(0.0),
            hi: PerInstance::Shared(&hi),
            groups: None,
        };
        let out = capped_qp_batch(&p).unwrap();
        assert_eq!(out.status, vec![Status::Optimal]);
        // cvxpy + Clarabel (tol_gap_abs = tol_gap_rel = tol_feas = 1e-10) on the same data.
        let clarabel = [
            0.2,
            0.0,
            0.2,
            0.19460138673231975,
            0.0,
            0.2,
            0.005398613268357762,
            0.2,
        ];
        for (t, &j) in mask.iter().enumerate() {
            let w = out.weights[j];
            assert!(
                (w - clarabel[t]).abs() < 1e-9,
                "name {j}: {w} vs {}",
                clarabel[t]
            );
        }
        assert!(
            (out.objective[0] - -0.6250259940950551).abs() < 1e-10,
            "{:?}",
            out.objective
        );
        let sum: f64 = out.weights.iter().sum();
        assert!((sum - 1.0).abs() < 1e-14, "{sum}");
    }

    #[test]
    fn nan_scores_name_instance() {
        let s = [0.1, f64::NAN];
        let err = capped_qp_batch(&linear(&s, 1.0)).unwrap_err();
        assert!(err.to_string().contains("instance 0, name 1"), "{err}");
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p indexlab-core fastpath_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn fastpath_timing() {
        let (b, n, k) = (2000usize, 300usize, 10usize);
        let mut seed = 12345u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let f: Vec<f64> = (0..n * k).map(|_| rnd() - 0.5).collect();
        let mut om = vec![0.0; k * k];
        for a in 0..k {
            om[a * k + a] = 0.02;
        }
        let d: Vec<f64> = (0..n).map(|_| 0.01 + 0.05 * rnd()).collect();
        let s: Vec<f64> = (0..b * n).map(|_| 0.02 * rnd()).collect();
        let mut hi = vec![0.0; b * n];
        for i in 0..b {
            let mut cnt = 0;
            while cnt < 30 {
                let j = (rnd() * n as f64) as usize % n;
                if hi[i * n + j] == 0.0 {
                    hi[i * n + j] = 0.08;
                    cnt += 1;
                }
            }
        }
        for gamma in [0.0, 5.0] {
            let p = CappedQp {
                batch: b,
                names: n,
                scores: &s,
                bench: None,
                risk: Some(RiskModel {
                    factors: k,
                    loadings: &f,
                    factor_cov: &om,
                    specific_var: &d,
                }),
                gamma,
                lo: PerInstance::Scalar(0.0),
                hi: PerInstance::Rows(&hi),
                groups: None,
            };
            let t0 = std::time::Instant::now();
            validate(&p, 0, b).unwrap();
            let prep = prepare(&p).unwrap();
            let t1 = t0.elapsed().as_secs_f64();
            let t0 = std::time::Instant::now();
            let mut row = vec![0.0; n];
            for i in 0..b {
                solve_one(&p, &prep, i, &mut row).unwrap();
            }
            let t2 = t0.elapsed().as_secs_f64();
            println!(
                "validate+prepare {:.2} us, serial {:.2} us",
                t1 / b as f64 * 1e6,
                t2 / b as f64 * 1e6
            );
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let t0 = std::time::Instant::now();
            let out = pool.install(|| capped_qp_batch(&p)).unwrap();
            let dt = t0.elapsed().as_secs_f64();
            let its: u32 = out.iterations.iter().sum();
            println!(
                "gamma {gamma}: {:.2} us/instance, {:.1} iterations",
                dt / b as f64 * 1e6,
                its as f64 / b as f64
            );
        }
    }
}
