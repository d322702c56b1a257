//! Mapping the reduced solution back to the full program.

use super::super::conic::Canonical;
use super::Presolver;

impl Presolver {
    /// Map a solution of the reduced program back to the full program `full` (the one given to
    /// [`Presolver::new`]): `(x, z)` over all `n` variables and `m` rows.
    pub fn reverse(&self, full: &Canonical, x_red: &[f64], z_red: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let x = self.full_primal(x_red);
        let mut z: Vec<f64> = self
            .new_row
            .iter()
            .map(|&nr| if nr == usize::MAX { 0.0 } else { z_red[nr] })
            .collect();
        let grad = objective_gradient(full, &x);
        // Column j's stationarity residual without rows `skip`: grad_j + sum A_rj z_r.
        let residual = |z: &[f64], j: usize, skip: &[usize]| -> f64 {
            let mut g = grad[j];
            for k in full.a.colptr[j]..full.a.colptr[j + 1] {
                let r = full.a.rowval[k];
                if !skip.contains(&r) {
                    g += full.a.nzval[k] * z[r];
                }
            }
            g
        };
        for s in &self.substituted {
            z[s.row] = -grad[s.t] / s.a_t;
        }
        for f in &self.floors {
            z[f.row] = -f.cost / f.a;
        }
        for d in &self.defining {
            z[d.row] = -residual(&z, d.col, &[d.row]) / d.a;
        }
        for bd in &self.bounds {
            let g = -residual(&z, bd.col, &[bd.upper.0, bd.lower.0]);
            if g >= 0.0 {
                z[bd.upper.0] = g / bd.upper.1;
            } else {
                z[bd.lower.0] = g / bd.lower.1;
            }
        }
        (x, z)
    }

    /// Every variable: the fixed values, the reduced solution, then the substituted ones.
    fn full_primal(&self, x_red: &[f64]) -> Vec<f64> {
        let mut x = self.fixed_value.clone();
        for (&j, &v) in self.kept_cols.iter().zip(x_red) {
            x[j] = v;
        }
        for s in &self.substituted {
            x[s.t] = s.beta - s.alpha * x[s.w];
        }
        x
    }
}

/// The gradient of the objective, `P x + q`, with P stored as its upper triangle.
fn objective_gradient(full: &Canonical, x: &[f64]) -> Vec<f64> {
    let mut grad = full.q.clone();
    for j in 0..full.p.n {
        for k in full.p.colptr[j]..full.p.colptr[j + 1] {
            let (i, v) = (full.p.rowval[k], full.p.nzval[k]);
            grad[i] += v * x[j];
            if i != j {
                grad[j] += v * x[i];
            }
        }
    }
    grad
}
