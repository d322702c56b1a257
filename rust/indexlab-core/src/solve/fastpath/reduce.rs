//! From the batch to one instance's reduced problem: the shared precomputation of the risk
//! model, then per instance the names it can hold (`lo < hi`), their linear term (scores,
//! benchmark and fixed names through the risk model, turnover kinks at or outside a bound
//! folded in), the budget and group rows shifted by the fixed names, and the factor rows of
//! the Hessian.

use super::linalg::for_each_nonzero;
use super::primal_dual::{Factor, PrimalDual};
use super::problem::Problem;
use super::{CappedQp, FEASIBILITY_TOL};
use crate::error::{Error, Result};

/// Shared per-batch precomputation: `F Ω` (n x k) and `U = F L`.
pub(super) struct Prepared {
    pub f_omega: Vec<f64>,
    /// `U = F L` with `Ω = L L'`: the Hessian is `γ (U U' + diag d)`.
    pub u: Vec<f64>,
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

pub(super) fn prepare(p: &CappedQp<'_>) -> Result<Prepared> {
    let n = p.names;
    let Some(r) = &p.risk else {
        return Ok(Prepared {
            f_omega: Vec::new(),
            u: Vec::new(),
        });
    };
    let k = r.factors;
    let mut f_omega = vec![0.0; n * k];
    for j in 0..n {
        for a in 0..k {
            let mut s = 0.0;
            for b in 0..k {
                s += r.loadings[j * k + b] * r.factor_cov[b * k + a];
            }
            f_omega[j * k + a] = s;
        }
    }
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
    Ok(Prepared { f_omega, u })
}

/// Scratch reused by the instances one worker solves: once warm, an instance allocates
/// nothing on the primal-dual path.
#[derive(Default)]
pub(super) struct Workspace {
    lo_buf: Vec<f64>,
    hi_buf: Vec<f64>,
    pub bench_buf: Vec<f64>,
    /// Scratch for the objective.
    pub scratch: Vec<f64>,
    prev_buf: Vec<f64>,
    cost_buf: Vec<f64>,
    uv: Vec<f64>,
    /// Universe index of each free name (`lo < hi`), ascending: variable `a` of `qp` is
    /// name `free[a]`.
    pub free: Vec<usize>,
    /// Fixed names (`lo == hi`) with a nonzero weight.
    fixed_nz: Vec<usize>,
    /// The names whose weight may be nonzero, ascending.
    pub held: Vec<usize>,
    pub qp: Problem,
    pub factor: Factor,
    pub pd: PrimalDual,
    /// Whether the next solve may start from the primal-dual method's last settled working
    /// set, and the free names of that solve (empty when the last solve did not settle there).
    pub warm: bool,
    pub last_free: Vec<usize>,
}

impl Workspace {
    /// Reduce instance `i` into `self.qp` and write the fixed names' weights to `w`; `false`
    /// when the bounds alone make it infeasible.
    pub fn reduce(&mut self, p: &CappedQp<'_>, prep: &Prepared, i: usize, w: &mut [f64]) -> bool {
        let n = p.names;
        let lo_all = p.lo.row(i, n, &mut self.lo_buf);
        let hi_all = p.hi.row(i, n, &mut self.hi_buf);
        // One pass over the universe: the free names, and the fixed names (lo == hi) with a
        // nonzero weight, usually none (a zero membership mask); only those enter the sums.
        self.free.clear();
        self.fixed_nz.clear();
        for (j, (&l, &h)) in lo_all.iter().zip(hi_all).enumerate() {
            if h > l {
                self.free.push(j);
            } else if l != 0.0 {
                self.fixed_nz.push(j);
            }
        }
        self.held.clear();
        self.held.extend_from_slice(&self.free);
        if !self.fixed_nz.is_empty() {
            self.held.extend_from_slice(&self.fixed_nz);
            self.held.sort_unstable();
        }
        w.copy_from_slice(lo_all); // fixed names sit at lo == hi
        let fixed_sum: f64 = self.fixed_nz.iter().map(|&j| lo_all[j]).sum();
        let target = 1.0 - fixed_sum;
        let sum_lo: f64 = self.free.iter().map(|&j| lo_all[j]).sum();
        let sum_hi: f64 = self.free.iter().map(|&j| hi_all[j]).sum();
        if sum_hi < target - FEASIBILITY_TOL || sum_lo > target + FEASIBILITY_TOL {
            return false;
        }
        let qp = &mut self.qp;
        qp.clear();
        qp.n = self.free.len();
        qp.lo.extend(self.free.iter().map(|&j| lo_all[j]));
        qp.hi.extend(self.free.iter().map(|&j| hi_all[j]));
        self.linear_term(p, prep, i);
        self.turnover(p, i);
        self.rows(p, i, target);
        true
    }

    /// `c = s + γ Σ (b - w_F)` on the free names (`w_F`: the fixed names' weights), with
    /// `Σ = U U' + diag d`.
    fn linear_term(&mut self, p: &CappedQp<'_>, prep: &Prepared, i: usize) {
        let n = p.names;
        let gamma = p.gamma;
        let scores = &p.scores[i * n..(i + 1) * n];
        let qp = &mut self.qp;
        qp.c.extend(self.free.iter().map(|&j| scores[j]));
        let Some(r) = p.risk.filter(|_| gamma > 0.0) else {
            return;
        };
        let k = r.factors;
        let bench = p.bench.as_ref().map(|b| b.row(i, n, &mut self.bench_buf));
        let uv = &mut self.uv;
        uv.clear();
        uv.resize(k, 0.0);
        let mut add = |j: usize, v: f64| {
            if v != 0.0 {
                for (acc, &ua) in uv.iter_mut().zip(&prep.u[j * k..(j + 1) * k]) {
                    *acc += ua * v;
                }
            }
        };
        match (bench, self.fixed_nz.is_empty()) {
            (None, true) => {}
            (Some(b), true) => for_each_nonzero(b, add),
            _ => {
                let lo_all = p.lo.row(i, n, &mut self.lo_buf);
                let hi_all = p.hi.row(i, n, &mut self.hi_buf);
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
        for (a, &j) in self.free.iter().enumerate() {
            let uj = &prep.u[j * k..(j + 1) * k];
            let bj = bench.map_or(0.0, |b| b[j]);
            let shift =
                uj.iter().zip(uv.iter()).map(|(x, y)| x * y).sum::<f64>() + r.specific_var[j] * bj;
            qp.c[a] += gamma * shift;
        }
    }

    /// Kinks strictly inside a box stay kinks; one at or outside a bound is a constant slope
    /// over the whole box (`-cost` when `prev <= lo`, `+cost` when `prev >= hi`), folded into
    /// `c` so that the solvers see no kink there.
    fn turnover(&mut self, p: &CappedQp<'_>, i: usize) {
        let n = p.names;
        let qp = &mut self.qp;
        let Some(t) = &p.turnover else {
            qp.kink.extend_from_slice(&qp.lo);
            qp.cost.resize(qp.n, 0.0);
            return;
        };
        let prev = t.prev.row(i, n, &mut self.prev_buf);
        let cost = t.cost.row(i, n, &mut self.cost_buf);
        for (a, &j) in self.free.iter().enumerate() {
            let (pj, cj) = (prev[j], cost[j]);
            let no_kink = (qp.lo[a], 0.0);
            let (kink, kink_cost) = if cj <= 0.0 {
                no_kink
            } else if pj <= qp.lo[a] {
                qp.c[a] -= cj;
                no_kink
            } else if pj >= qp.hi[a] {
                qp.c[a] += cj;
                no_kink
            } else {
                (pj, cj)
            };
            qp.kink.push(kink);
            qp.cost.push(kink_cost);
        }
    }

    /// The budget, then the groups, their bounds shifted by the fixed names.
    fn rows(&mut self, p: &CappedQp<'_>, i: usize, target: f64) {
        let n = p.names;
        let qp = &mut self.qp;
        let nf = qp.n;
        qp.a.resize(nf, 1.0);
        qp.rlo.push(target);
        qp.rhi.push(target);
        qp.m = 1;
        let Some(g) = &p.groups else {
            return;
        };
        let lo_all = p.lo.row(i, n, &mut self.lo_buf);
        for r in 0..g.rows {
            let grow = &g.matrix[r * n..(r + 1) * n];
            let fixed_part: f64 = self.fixed_nz.iter().map(|&j| grow[j] * lo_all[j]).sum();
            qp.a.extend(self.free.iter().map(|&j| grow[j]));
            qp.rlo.push(g.lo.get(i, g.rows, r) - fixed_part);
            qp.rhi.push(g.hi.get(i, g.rows, r) - fixed_part);
        }
        qp.m += g.rows;
    }

    /// The factor rows of the free names, when the Hessian is positive definite on them
    /// (`γ > 0` and every specific variance `> 0`); `false` otherwise.
    pub fn factor_form(&mut self, p: &CappedQp<'_>, prep: &Prepared) -> bool {
        let Some(r) = p.risk.filter(|_| p.gamma > 0.0) else {
            return false;
        };
        if self.free.iter().any(|&j| r.specific_var[j] <= 0.0) {
            return false;
        }
        let k = r.factors;
        let f = &mut self.factor;
        f.gamma = p.gamma;
        f.k = k;
        f.u.clear();
        f.d.clear();
        for &j in &self.free {
            f.u.extend_from_slice(&prep.u[j * k..(j + 1) * k]);
            f.d.push(r.specific_var[j]);
        }
        true
    }
}
