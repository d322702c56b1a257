//! The state the passes share: which columns are fixed or eliminated, the data with the fixed
//! values substituted, and which rows are kept.

use super::super::conic::{Canonical, Cone};

/// Where the linear cones sit: cvxpy puts the zero cone first, then the nonnegative one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    /// Zero-cone rows are `0..n_zero`.
    pub n_zero: usize,
    /// Nonnegative rows are `n_zero..n_lin`.
    pub n_lin: usize,
}

impl Layout {
    fn of(cones: &[Cone]) -> Self {
        let n_zero: usize = cones
            .iter()
            .take_while(|k| matches!(k, Cone::Zero(_)))
            .map(Cone::dim)
            .sum();
        let n_nonneg: usize = cones
            .iter()
            .skip_while(|k| matches!(k, Cone::Zero(_)))
            .take_while(|k| matches!(k, Cone::Nonneg(_)))
            .map(Cone::dim)
            .sum();
        Self {
            n_zero,
            n_lin: n_zero + n_nonneg,
        }
    }

    pub fn is_zero(&self, r: usize) -> bool {
        r < self.n_zero
    }

    pub fn is_nonneg(&self, r: usize) -> bool {
        (self.n_zero..self.n_lin).contains(&r)
    }
}

/// One instance being reduced.
pub(super) struct Work<'a> {
    pub c: &'a Canonical,
    pub rows: Layout,
    /// Fixed by passes 1 to 3 at `value`.
    pub fixed: Vec<bool>,
    pub value: Vec<f64>,
    /// Substituted away by pass 4.
    pub eliminated: Vec<bool>,
    /// `b` less the fixed columns' share, `A[:, fixed] value`.
    pub b: Vec<f64>,
    /// `q` plus the fixed columns' share `P[:, fixed] value` and pass 4's terms.
    pub q: Vec<f64>,
    pub offset: f64,
    /// Added to P's diagonal by pass 4.
    pub diag_add: Vec<f64>,
    /// Nonzeros per row over the columns not fixed.
    pub left: Vec<usize>,
    pub keep_row: Vec<bool>,
    /// P's diagonal, and whether a column has an off-diagonal entry in P.
    pub p_diag: Vec<f64>,
    pub p_offdiag: Vec<bool>,
}

impl<'a> Work<'a> {
    pub fn new(c: &'a Canonical) -> Self {
        let (n, m) = (c.a.n, c.a.m);
        Self {
            c,
            rows: Layout::of(&c.cones),
            fixed: vec![false; n],
            value: vec![0.0; n],
            eliminated: vec![false; n],
            b: c.b.clone(),
            q: c.q.clone(),
            offset: c.offset,
            diag_add: vec![0.0; n],
            left: vec![0; m],
            keep_row: vec![true; m],
            p_diag: vec![0.0; n],
            p_offdiag: vec![false; n],
        }
    }

    /// The nonzeros `(row, value)` of column `j` of `A` (explicit zeros skipped).
    pub fn column(&self, j: usize) -> impl Iterator<Item = (usize, f64)> + 'a {
        let c: &'a Canonical = self.c;
        let a = &c.a;
        let range = a.colptr[j]..a.colptr[j + 1];
        a.rowval[range.clone()]
            .iter()
            .zip(&a.nzval[range])
            .filter(|(_, &v)| v != 0.0)
            .map(|(&r, &v)| (r, v))
    }

    /// Columns neither fixed nor eliminated, in order.
    pub fn kept_cols(&self) -> Vec<usize> {
        (0..self.c.a.n)
            .filter(|&j| !self.fixed[j] && !self.eliminated[j])
            .collect()
    }

    /// Fix column `j` at `x`, substituting it into `b`, the cost and the row counts. Only for a
    /// column without P entries, or before [`Work::substitute_fixed_into_objective`] (which
    /// then takes care of P).
    pub fn fix_in_constraints(&mut self, j: usize, x: f64) {
        self.fixed[j] = true;
        self.value[j] = x;
        let a = &self.c.a;
        for k in a.colptr[j]..a.colptr[j + 1] {
            let (r, v) = (a.rowval[k], a.nzval[k]);
            self.b[r] -= v * x;
            if v != 0.0 {
                self.left[r] -= 1;
            }
        }
    }

    /// One sweep of P (its upper triangle): move the fixed columns' quadratic terms into `q` and
    /// the offset, add their linear cost to the offset, and record P's diagonal and which
    /// columns have off-diagonal entries.
    pub fn substitute_fixed_into_objective(&mut self) {
        let p = &self.c.p;
        let (fixed, value) = (&self.fixed, &self.value);
        for j in 0..p.n {
            if fixed[j] {
                self.offset += self.c.q[j] * value[j];
            }
            for k in p.colptr[j]..p.colptr[j + 1] {
                let (i, pij) = (p.rowval[k], p.nzval[k]);
                if i == j {
                    self.p_diag[j] += pij;
                } else if pij != 0.0 {
                    self.p_offdiag[i] = true;
                    self.p_offdiag[j] = true;
                }
                match (fixed[i], fixed[j]) {
                    (true, true) if i == j => self.offset += 0.5 * pij * value[j] * value[j],
                    (true, true) => self.offset += pij * value[i] * value[j],
                    (false, true) => self.q[i] += pij * value[j],
                    (true, false) => self.q[j] += pij * value[i],
                    (false, false) => {}
                }
            }
        }
    }

    /// Count the nonzeros of each row over the columns not fixed into `left`; return each
    /// row's last such nonzero `(column, value)` (its only one where the count is 1).
    pub fn count_left(&mut self) -> Vec<(usize, f64)> {
        let mut last = vec![(0usize, 0.0f64); self.c.a.m];
        self.left.fill(0);
        for j in (0..self.c.a.n).filter(|&j| !self.fixed[j]) {
            for (r, v) in self.column(j) {
                self.left[r] += 1;
                last[r] = (j, v);
            }
        }
        last
    }

    /// Rows with no nonzero left must hold at the fixed values; they are then dropped. False
    /// when one is violated. (Pass 2's defining rows, dropped already, hold by construction.)
    pub fn emptied_rows_hold(&mut self) -> bool {
        for r in 0..self.rows.n_lin {
            if self.left[r] != 0 || !self.keep_row[r] {
                continue;
            }
            let tol = 1e-12 * (1.0 + self.c.b[r].abs());
            let holds = if self.rows.is_zero(r) {
                self.b[r].abs() <= tol
            } else {
                self.b[r] >= -tol
            };
            if !holds {
                return false;
            }
            self.keep_row[r] = false;
        }
        true
    }
}
