//! The affine piece of the penalised weights through one solve, for the tracking-error
//! budget's search: where on it the budget is met.
//!
//! At a solve at `tau`, the weights strictly inside their bounds (and off their turnover kink)
//! are free and the rest fixed; with the same working set, the stationarity conditions
//! `H w_F + A_F'y = s(tau) - cost_F sign(w_F - prev_F) tau + ...` are affine in `tau`, so
//! `w(tau + delta) = w + delta v` with `[H_FF A_F'; A_F 0] [v; y'] = [s'(tau) - cost_F sign; 0]`
//! (`A`: the budget row and the active group rows). The tracking error along it is a quadratic
//! in `delta`, whose root is the next point to try: the exact answer when the working set
//! holds there (then the search's certificate confirms it in one solve), else a much better
//! guess than interpolating across several pieces. The search only takes the step inside its
//! bracket; the certificate decides, so a poor step costs one solve, never a wrong answer.

use super::super::fastpath::linalg::{cholesky_factor, cholesky_solve, dot, lu_factor, lu_solve};
use super::instance::Scratch as InstanceScratch;
use super::{Risk, ShapeSpec};

/// A weight within this of a bound, kink or group side counts as held there.
const HELD_TOL: f64 = 1e-9;

/// Buffers of the step, reused across instances.
#[derive(Default)]
pub(super) struct Piece {
    free: Vec<usize>,
    /// The equality rows over the free weights, `m x f` row-major.
    rows: Vec<f64>,
    m: usize,
    h: Vec<f64>,
    rhs: Vec<f64>,
    z: Vec<f64>,
    s: Vec<f64>,
    piv: Vec<usize>,
    y: Vec<f64>,
    v: Vec<f64>,
}

fn held(x: f64, at: f64) -> bool {
    at.is_finite() && (x - at).abs() <= HELD_TOL * (1.0 + at.abs())
}

impl Piece {
    /// The weights' direction `v = dw/dtau` on the piece through `s.w`, into `self.v` (length
    /// `W`, zero off the free weights); `false` when there is none (no free weight, or the
    /// system is singular). `ds` is `s'(tau)` per weight, `f_omega` is `F Ω` of `risk`.
    pub fn direction(
        &mut self,
        spec: &ShapeSpec,
        risk: &Risk,
        f_omega: &[f64],
        s: &InstanceScratch,
        ds: &[f64],
    ) -> bool {
        let nw = spec.weight_cols.len();
        let cost = spec.turnover.as_ref().map(|t| t.cost.as_slice());
        self.free.clear();
        for j in 0..nw {
            let w = s.w[j];
            let at_kink = cost.is_some_and(|c| c[j] > 0.0) && held(w, s.prev[j]);
            if !(held(w, s.lo[j]) || held(w, s.hi[j]) || at_kink) {
                self.free.push(j);
            }
        }
        let f = self.free.len();
        if f == 0 {
            return false;
        }
        self.equality_rows(spec, s);
        // H_FF = F_F Ω F_F' + diag(d_F), lower triangle.
        let k = risk.factors;
        self.h.clear();
        self.h.resize(f * f, 0.0);
        for (a, &i) in self.free.iter().enumerate() {
            let fo = &f_omega[i * k..(i + 1) * k];
            for (b, &j) in self.free[..=a].iter().enumerate() {
                self.h[a * f + b] = dot(fo, &risk.loadings[j * k..(j + 1) * k]);
            }
            self.h[a * f + a] += risk.specific_var[i];
        }
        if !cholesky_factor(&mut self.h, f) {
            return false;
        }
        // rhs = s'(tau) - cost sign(w - prev) on the free weights.
        self.rhs.clear();
        self.rhs.extend(self.free.iter().map(|&j| {
            let kink = cost.map_or(0.0, |c| c[j] * (s.w[j] - s.prev[j]).signum());
            ds[j] - kink
        }));
        cholesky_solve(&self.h, f, &mut self.rhs);
        // The equality rows: y = (A H⁻¹ A')⁻¹ A H⁻¹ rhs, v = H⁻¹ rhs - H⁻¹ A' y.
        let m = self.m;
        self.z.clone_from(&self.rows);
        for col in self.z.chunks_exact_mut(f) {
            cholesky_solve(&self.h, f, col);
        }
        self.s.clear();
        self.s.resize(m * m, 0.0);
        self.y.clear();
        for (r, row) in self.rows.chunks_exact(f).enumerate() {
            for (c, z) in self.z.chunks_exact(f).enumerate() {
                self.s[r * m + c] = dot(row, z);
            }
            self.y.push(dot(row, &self.rhs));
        }
        self.piv.clear();
        self.piv.resize(m, 0);
        if m > 0 {
            if !lu_factor(&mut self.s, m, &mut self.piv) {
                return false;
            }
            lu_solve(&self.s, m, &self.piv, &mut self.y);
        }
        self.v.clear();
        self.v.resize(nw, 0.0);
        for (a, &j) in self.free.iter().enumerate() {
            let correction: f64 = (0..m).map(|r| self.z[r * f + a] * self.y[r]).sum();
            self.v[j] = self.rhs[a] - correction;
        }
        self.v.iter().all(|x| x.is_finite())
    }

    /// `sum w = 1` and each group row at one of its sides, over the free weights.
    fn equality_rows(&mut self, spec: &ShapeSpec, s: &InstanceScratch) {
        self.rows.clear();
        self.rows.resize(self.free.len(), 1.0);
        self.m = 1;
        let Some(g) = &spec.groups else { return };
        let nw = spec.weight_cols.len();
        for r in 0..g.lo.rows() {
            let coef = &g.matrix[r * nw..(r + 1) * nw];
            let value = dot(coef, &s.w);
            // A row none of whose names is free holds whatever v is: no equation.
            let touches_free = self.free.iter().any(|&j| coef[j] != 0.0);
            if touches_free && (held(value, s.glo[r]) || held(value, s.ghi[r])) {
                self.rows.extend(self.free.iter().map(|&j| coef[j]));
                self.m += 1;
            }
        }
    }

    pub fn v(&self) -> &[f64] {
        &self.v
    }
}
