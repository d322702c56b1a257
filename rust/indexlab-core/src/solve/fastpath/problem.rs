//! Everything of a QP the active-set methods read except its Hessian:
//!
//! ```text
//! minimise 0.5 x'Qx - c'x + sum_j cost_j |x_j - kink_j|
//! subject to lo <= x <= hi,  rlo <= A x <= rhi   (row 0: the budget, an equality)
//! ```
//!
//! where a variable has a kink only when `lo_j < kink_j < hi_j` (see [`super::place`]).

use super::place::Range;

/// Linear term, boxes, kinks and general rows (row-major `A`, `m x n`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Problem {
    pub n: usize,
    pub c: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub kink: Vec<f64>,
    pub cost: Vec<f64>,
    pub m: usize,
    pub a: Vec<f64>,
    pub rlo: Vec<f64>,
    pub rhi: Vec<f64>,
}

impl Problem {
    pub fn range(&self, j: usize) -> Range {
        Range {
            lo: self.lo[j],
            hi: self.hi[j],
            kink: self.kink[j],
            cost: self.cost[j],
        }
    }

    pub fn row(&self, r: usize) -> &[f64] {
        &self.a[r * self.n..(r + 1) * self.n]
    }

    /// Empty every field, keeping the allocations for the next instance.
    pub fn clear(&mut self) {
        self.n = 0;
        self.m = 0;
        for v in [
            &mut self.c,
            &mut self.lo,
            &mut self.hi,
            &mut self.kink,
            &mut self.cost,
            &mut self.a,
            &mut self.rlo,
            &mut self.rhi,
        ] {
            v.clear();
        }
    }

    /// `max(1, |c|, cost, diag)`: the size of the gradients, for the multiplier tolerance.
    pub fn scale(&self, diag: impl Iterator<Item = f64>) -> f64 {
        let lin = self
            .c
            .iter()
            .chain(&self.cost)
            .fold(1.0f64, |s, v| s.max(v.abs()));
        diag.fold(lin, |s, v| s.max(v.abs()))
    }
}
