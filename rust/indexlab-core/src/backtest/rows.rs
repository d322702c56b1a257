//! Reading and checking candidate weight rows into per-thread scratch.
//!
//! Every row is read once per call in one sequential pass with a branch-light check; only a row
//! that fails it goes through the original entry-by-entry checks, which name the problem.

use super::{Indices, Prepared, Weights, WEIGHT_SUM_TOL};
use crate::data_err;
use crate::error::Result;

/// Per-thread buffers: every row of the current chunk of candidates (names and weights, row
/// `c * R + j` at `off[c * R + j] .. off[c * R + j + 1]`), a dense drift vector (all zeros
/// between uses), and room for one row read the slow way.
pub(super) struct Scratch {
    pub(super) idx: Vec<u32>,
    pub(super) val: Vec<f64>,
    pub(super) off: Vec<usize>,
    pub(super) drift: Vec<f64>,
    row_idx: Vec<u32>,
    row_val: Vec<f64>,
}

impl Scratch {
    /// At least `len` slots in `idx` / `val`: grown (doubling), never shrunk, so a thread's
    /// buffers settle at its largest chunk and are not refilled chunk after chunk.
    fn make_room(&mut self, len: usize) {
        if self.idx.len() < len {
            let len = len.max(2 * self.idx.len());
            self.idx.resize(len, 0);
            self.val.resize(len, 0.0);
        }
    }

    pub(super) fn new(n: usize) -> Self {
        Self {
            idx: Vec::new(),
            val: Vec::new(),
            off: Vec::new(),
            drift: vec![0.0; n],
            row_idx: Vec::new(),
            row_val: Vec::new(),
        }
    }
}

/// A CSR index value as the caller stored it (scipy uses int32 until int64 is needed).
trait Index: Copy {
    fn wide(self) -> i64;
}

impl Index for i32 {
    #[inline(always)]
    fn wide(self) -> i64 {
        self as i64
    }
}

impl Index for i64 {
    #[inline(always)]
    fn wide(self) -> i64 {
        self
    }
}

impl Prepared {
    /// Every row of candidates `first .. first + m` into `s`, candidate by candidate. On bad
    /// input, the error the period-by-period order meets first (rebalance, then candidate).
    pub(super) fn read_rows(
        &self,
        weights: &Weights<'_>,
        first: usize,
        m: usize,
        s: &mut Scratch,
    ) -> Result<()> {
        let r = self.rebalance.len();
        s.off.clear();
        s.off.push(0);
        let mut len = 0;
        for c in 0..m {
            for j in 0..r {
                let fast = match *weights {
                    Weights::Csr {
                        indptr,
                        indices,
                        data,
                    } => {
                        let row = (first + c) * r + j;
                        let (a, b) = (indptr.get(row) as usize, indptr.get(row + 1) as usize);
                        s.make_room(len + (b - a));
                        let (idx, val) = (&mut s.idx[len..], &mut s.val[len..]);
                        match indices {
                            Indices::I32(ix) => self.csr_row(&ix[a..b], &data[a..b], j, idx, val),
                            Indices::I64(ix) => self.csr_row(&ix[a..b], &data[a..b], j, idx, val),
                        }
                    }
                    Weights::Dense(_) => None,
                };
                let written = match fast {
                    Some(w) => w,
                    None => {
                        s.row_idx.clear();
                        s.row_val.clear();
                        let checked =
                            self.row(weights, first + c, j, &mut s.row_idx, &mut s.row_val);
                        if let Err(e) = checked {
                            self.check_rows_in_order(weights, first, m)?;
                            return Err(e);
                        }
                        let w = s.row_idx.len();
                        s.make_room(len + w);
                        s.idx[len..len + w].copy_from_slice(&s.row_idx);
                        s.val[len..len + w].copy_from_slice(&s.row_val);
                        w
                    }
                };
                len += written;
                s.off.push(len);
            }
        }
        Ok(())
    }

    /// Rows of candidates `first .. first + m`, period by period (rebalance, then candidate):
    /// the first error in the order the period-by-period engine would meet it.
    fn check_rows_in_order(&self, weights: &Weights<'_>, first: usize, m: usize) -> Result<()> {
        let (mut idx, mut val) = (Vec::new(), Vec::new());
        for j in 0..self.rebalance.len() {
            for c in 0..m {
                idx.clear();
                val.clear();
                self.row(weights, first + c, j, &mut idx, &mut val)?;
            }
        }
        Ok(())
    }

    /// One sequential pass that accepts a well-formed row and writes its nonzero entries to the
    /// front of `idx` / `val` (room for the whole row): column indices strictly increasing and
    /// in range, no NaN, no negative weight (unless shorts are allowed), every weighted name
    /// listed, and a sum of 1. `None` means "look closer", never "bad" for sure.
    #[inline(always)]
    fn csr_row<I: Index>(
        &self,
        indices: &[I],
        data: &[f64],
        j: usize,
        idx: &mut [u32],
        val: &mut [f64],
    ) -> Option<usize> {
        let n = self.n;
        if n == 0 {
            return None;
        }
        let listed = &self.listed[j * n..(j + 1) * n];
        let (idx, val) = (&mut idx[..indices.len()], &mut val[..indices.len()]);
        // One comparison rejects NaN, -inf and, unless shorts are allowed, negative weights;
        // `x < inf` rejects +inf.
        let floor = if self.allow_short { f64::MIN } else { 0.0 };
        let (mut prev, mut sum, mut ok, mut m) = (-1_i64, 0.0, true, 0);
        for (&i, &x) in indices.iter().zip(data) {
            let i = i.wide();
            // Unsigned, so a negative index is out of range too.
            let in_range = (i > prev) & ((i as u64) < n as u64);
            prev = i;
            // Clamped so the lookup stays in bounds even for a bad index (rejected anyway).
            let at = (i as usize).min(n - 1);
            ok &= in_range & (x >= floor) & (x < f64::INFINITY) & (listed[at] | (x == 0.0));
            if m < idx.len() {
                idx[m] = at as u32;
                val[m] = x;
            }
            m += (x != 0.0) as usize;
            sum += x;
        }
        (ok && (sum - 1.0).abs() <= WEIGHT_SUM_TOL).then_some(m)
    }

    /// Candidate `k` at rebalance `j`, checked entry by entry (dense rows, and sparse rows the
    /// fast pass did not accept): its nonzero weights appended to `idx` / `val`, or an error
    /// that names the candidate, the rebalance and the name.
    fn row(
        &self,
        weights: &Weights<'_>,
        k: usize,
        j: usize,
        idx: &mut Vec<u32>,
        val: &mut Vec<f64>,
    ) -> Result<()> {
        let s0 = idx.len();
        let (r, n) = (self.rebalance.len(), self.n);
        match *weights {
            Weights::Dense(w) => {
                let row = &w[(k * r + j) * n..(k * r + j + 1) * n];
                for (i, &x) in row.iter().enumerate() {
                    if x != 0.0 {
                        idx.push(i as u32);
                        val.push(x);
                    }
                }
            }
            Weights::Csr {
                indptr,
                indices,
                data,
            } => {
                let row = k * r + j;
                let (a, b) = (indptr.get(row) as usize, indptr.get(row + 1) as usize);
                let mut prev: i64 = -1;
                for (p, &x) in (a..b).zip(&data[a..b]) {
                    let i = indices.get(p);
                    if i <= prev || i >= n as i64 {
                        return data_err!(
                            "candidate {k}, rebalance {j}: sparse column index {i} is out of range \
                             0..{n} or not strictly increasing (call sum_duplicates() and \
                             sort_indices() first)"
                        );
                    }
                    prev = i;
                    if x != 0.0 || x.is_nan() {
                        idx.push(i as u32);
                        val.push(x);
                    }
                }
            }
        }
        let mut sum = 0.0;
        for (&i, &x) in idx[s0..].iter().zip(&val[s0..]) {
            if !x.is_finite() {
                return data_err!(
                    "candidate {k}, rebalance {j}: weight of name {i} is {x}; weights must be \
                     finite numbers"
                );
            }
            if x < 0.0 && !self.allow_short {
                return data_err!(
                    "candidate {k}, rebalance {j}: weight of name {i} is {x} < 0 \
                     (pass allow_short=True for short positions)"
                );
            }
            if !self.listed[j * n + i as usize] {
                return data_err!(
                    "candidate {k}, rebalance {j} (day {}): weight {x} on name {i}, which has no \
                     total-return value on or before that day (not yet listed)",
                    self.rebalance[j]
                );
            }
            sum += x;
        }
        // A NaN sum (from an overflowing sum of finite weights) is refused too.
        if (sum - 1.0).abs() > WEIGHT_SUM_TOL || sum.is_nan() {
            return data_err!(
                "candidate {k}, rebalance {j}: weights sum to {sum}, expected 1 within {WEIGHT_SUM_TOL:e}"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{backtest_batch, CostRate, Weights};
    use crate::error::Error;

    fn message(tr: &[f64], w: &[f64], allow_short: bool) -> String {
        match backtest_batch(
            tr,
            2,
            2,
            &[0],
            &Weights::Dense(w),
            CostRate::Scalar(0.0),
            1.0,
            allow_short,
        ) {
            Err(Error::Data(m)) => m,
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn infinite_weights_are_refused_even_with_shorts() {
        let tr = [1.0, 1.0, 1.1, 0.9];
        for (w, name) in [
            ([f64::INFINITY, f64::NEG_INFINITY], 0),
            ([2.0, f64::NEG_INFINITY], 1),
            ([f64::INFINITY, 1.0], 0),
        ] {
            for short in [false, true] {
                let msg = message(&tr, &w, short);
                assert!(
                    msg.contains(&format!(
                        "candidate 0, rebalance 0: weight of name {name} is"
                    )),
                    "{msg}"
                );
                assert!(msg.contains("finite"), "{msg}");
            }
        }
    }

    #[test]
    fn infinite_sparse_weights_are_refused() {
        let tr = [1.0, 1.0, 1.1, 0.9];
        let (indptr, indices) = ([0_i64, 2], [0_i64, 1]);
        let data = [f64::INFINITY, f64::NEG_INFINITY];
        let w = Weights::Csr {
            indptr: indptr[..].into(),
            indices: indices[..].into(),
            data: &data,
        };
        let err = backtest_batch(&tr, 2, 2, &[0], &w, CostRate::Scalar(0.0), 1.0, true);
        assert!(
            matches!(&err, Err(Error::Data(m)) if m.contains("weight of name 0 is inf")),
            "{err:?}"
        );
    }

    #[test]
    fn cost_rates_are_fractions() {
        let tr = [1.0, 1.0, 1.1, 0.9];
        let w = [0.5, 0.5];
        for rate in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            let err = backtest_batch(
                &tr,
                2,
                2,
                &[0],
                &Weights::Dense(&w),
                CostRate::Scalar(rate),
                1.0,
                false,
            );
            assert!(
                matches!(&err, Err(Error::Data(m)) if m.contains("cost_rate")),
                "{err:?}"
            );
            let rates = [0.001, rate];
            let err = backtest_batch(
                &tr,
                2,
                2,
                &[0],
                &Weights::Dense(&w),
                CostRate::PerName(&rates),
                1.0,
                false,
            );
            assert!(
                matches!(&err, Err(Error::Data(m)) if m.contains("cost_rate[1]")),
                "{err:?}"
            );
        }
    }
}
