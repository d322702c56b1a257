//! Batch index-level engine: many candidate weight schedules over one market, in one pass.
//!
//! Conventions (docs/conventions.md, backtest levels, fixed):
//! * `level[0] = base`; weights `w_j` are set at the close of day `r_j`.
//! * For `r_j < t <= r_{j+1}`: `level[t] = level[r_j] * sum_i w_ij * tr[t,i] / tr[r_j,i]`, with
//!   `tr` carried forward over suspensions (NaN after the first value).
//! * At `r_{j+1}`: drifted `d_i = w_ij tr[r_{j+1},i]/tr[r_j,i] / sum(...)`, traded
//!   `= sum_i |w_{i,j+1} - d_i|`, and `level[r_{j+1}] *= 1 - sum_i rate_i |w_{i,j+1} - d_i|`.
//!   No cost at day 0; turnover is 0 at the first rebalance.
//!
//! Speed: the relative prices `tr[t,i] / tr[r_j,i]` do not depend on the candidate, so
//! [`Prepared`] (`prepare.rs`) computes them once per call, laid out per holding period in
//! blocks of 32 days, all names of a block contiguous. Each rayon task takes a chunk of
//! candidates: their rows are read and checked once (`rows.rs`), then period by period the
//! kernel (`kernel.rs`) sums a block of days per candidate in eight vector registers, one
//! multiply-add per held name and day, and `settle.rs` charges each rebalance. The work per
//! candidate is `T x (names held)` multiply-adds, independent of the universe size.

mod kernel;
mod prepare;
mod rows;
mod settle;
#[cfg(test)]
mod tests;

use crate::data_err;
use crate::error::Result;
use kernel::{block_sums, Days, BLOCK};
use rayon::prelude::*;
use rows::Scratch;

/// Candidates run together period by period (one rayon task): up to 128 (measured faster than
/// 32 on the issue-4 case, as a period's prices are reused by more candidates while cached),
/// and at least 32 tasks per call where there are enough candidates to keep many cores busy.
/// Depends on the candidate count only, never the thread count, so neither does the error.
fn candidate_chunk(count: usize) -> usize {
    (count / 32).clamp(16, 128)
}

/// Weights sum to 1 within this tolerance.
pub const WEIGHT_SUM_TOL: f64 = 1e-9;

/// Candidate weights: `K x R x N` dense (row-major) or CSR with `K * R` rows of `N` columns
/// (row `k * R + j` = candidate `k` at rebalance `j`). CSR column indices must be strictly
/// increasing within a row.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    Dense(&'a [f64]),
    Csr {
        indptr: Indices<'a>,
        indices: Indices<'a>,
        data: &'a [f64],
    },
}

/// CSR index arrays in the caller's integer width: scipy stores int32 until a matrix needs
/// int64, and widening 6 million indices would cost more than reading them.
#[derive(Debug, Clone, Copy)]
pub enum Indices<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl Indices<'_> {
    pub fn len(&self) -> usize {
        match self {
            Indices::I32(s) => s.len(),
            Indices::I64(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `p`, widened.
    #[inline]
    pub fn get(&self, p: usize) -> i64 {
        match self {
            Indices::I32(s) => s[p] as i64,
            Indices::I64(s) => s[p],
        }
    }

    /// Never decreasing from one entry to the next.
    fn is_monotone(&self) -> bool {
        match self {
            Indices::I32(s) => s.windows(2).all(|p| p[0] <= p[1]),
            Indices::I64(s) => s.windows(2).all(|p| p[0] <= p[1]),
        }
    }
}

impl<'a> From<&'a [i64]> for Indices<'a> {
    fn from(s: &'a [i64]) -> Self {
        Indices::I64(s)
    }
}

impl<'a> From<&'a [i32]> for Indices<'a> {
    fn from(s: &'a [i32]) -> Self {
        Indices::I32(s)
    }
}

/// Transaction cost as a fraction of traded value: one rate or one per name.
#[derive(Debug, Clone, Copy)]
pub enum CostRate<'a> {
    Scalar(f64),
    PerName(&'a [f64]),
}

/// What the batch returns: `levels` (`K x T`, row-major) and `turnover` (`K x R`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutput {
    pub levels: Vec<f64>,
    pub turnover: Vec<f64>,
}

/// The candidate-independent part of a batch: validated market, rebalance days, relative
/// prices and cost rates. Build once, then [`Prepared::run`] over chunks of candidates.
#[derive(Debug, Clone)]
pub struct Prepared {
    t: usize,
    n: usize,
    rebalance: Vec<usize>,
    /// `end_rel[j * N + i] = tr[r_{j+1},i] / tr[r_j,i]`, each name's growth over holding
    /// period `j` (carried-forward `tr`; NaN where not listed at `r_j`). Laid out by period so
    /// that settling a rebalance reads one small contiguous row, not one cache line per name
    /// from a `N x T` matrix.
    end_rel: Vec<f64>,
    /// The same relative prices per holding period in blocks of [`BLOCK`] days, all names of
    /// a block contiguous (`[block][name][day in block]`, zero-padded): one block of 300 names
    /// is 19 KB, so the candidates of a chunk read it from L1 cache.
    blocks: Vec<Days>,
    /// Offset of each period's first block in `blocks`.
    block_start: Vec<usize>,
    /// `listed[j * N + i]`: name `i` has a value at or before day `r_j`.
    listed: Vec<bool>,
    rates: Vec<f64>,
    /// The one rate of a scalar cost: the cost is then `rate x traded`, no per-name sum.
    scalar_rate: Option<f64>,
    base: f64,
    allow_short: bool,
}

impl Prepared {
    pub fn days(&self) -> usize {
        self.t
    }

    pub fn names(&self) -> usize {
        self.n
    }

    pub fn rebalances(&self) -> usize {
        self.rebalance.len()
    }

    /// Number of candidates in `weights`, checking its shape against the market.
    pub fn candidates(&self, weights: &Weights<'_>) -> Result<usize> {
        let (r, n) = (self.rebalance.len(), self.n);
        match *weights {
            Weights::Dense(w) => {
                if r * n == 0 || w.len() % (r * n) != 0 {
                    return data_err!(
                        "dense weights have {} values, not a multiple of R x N = {r} x {n}",
                        w.len()
                    );
                }
                Ok(w.len() / (r * n))
            }
            Weights::Csr {
                indptr,
                indices,
                data,
            } => {
                let rows = indptr.len().saturating_sub(1);
                if indptr.is_empty() || rows % r != 0 {
                    return data_err!(
                        "sparse weights have {rows} rows, expected K x R rows (R = {r} rebalances)"
                    );
                }
                if indices.len() != data.len() {
                    return data_err!(
                        "sparse weights: indices has {} entries but data has {}",
                        indices.len(),
                        data.len()
                    );
                }
                let nnz = indices.len() as i64;
                if indptr.get(0) != 0 || indptr.get(rows) != nnz || !indptr.is_monotone() {
                    return data_err!(
                        "sparse weights: indptr must start at 0, never decrease and end at nnz = {nnz}"
                    );
                }
                Ok(rows / r)
            }
        }
    }

    /// Run candidates `first .. first + levels.len() / T` into the given output slices
    /// (`levels`: rows of `T`, `turnover`: rows of `R`), in parallel over candidates.
    ///
    /// Each candidate is independent and written in place, so the result does not depend on
    /// the number of threads. On bad input, the error of the lowest failing candidate is
    /// returned (first by chunk of candidates,
    /// then by rebalance, then by candidate: deterministic too).
    pub fn run(
        &self,
        weights: &Weights<'_>,
        first: usize,
        levels: &mut [f64],
        turnover: &mut [f64],
    ) -> Result<()> {
        let (t, r) = (self.t, self.rebalance.len());
        let k_total = self.candidates(weights)?;
        let count = levels.len() / t;
        if levels.len() != count * t || turnover.len() != count * r || first + count > k_total {
            return data_err!(
                "output buffers do not match candidates {first}..{} of {k_total}",
                first + count
            );
        }
        // Chunks sized by the candidate count (not per thread), so the reported error does not
        // depend on the thread count either.
        let chunk = candidate_chunk(count);
        let results: Vec<Result<()>> = levels
            .par_chunks_mut(chunk * t)
            .zip(turnover.par_chunks_mut(chunk * r))
            .enumerate()
            .map_init(
                || Scratch::new(self.n),
                |scratch, (c, (lv, to))| {
                    self.run_chunk(weights, first + c * chunk, lv, to, scratch)
                },
            )
            .collect();
        results.into_iter().collect()
    }

    /// A chunk of candidates, period by period: one block of a period's relative prices
    /// (`N x 32` days, 77 KB for 300 names) stays in cache while every candidate of the chunk
    /// reads its held names from it.
    fn run_chunk(
        &self,
        weights: &Weights<'_>,
        first: usize,
        lv: &mut [f64],
        to: &mut [f64],
        s: &mut Scratch,
    ) -> Result<()> {
        let (t, r, n) = (self.t, self.rebalance.len(), self.n);
        let m = lv.len() / t;
        for (row_l, row_t) in lv.chunks_mut(t).zip(to.chunks_mut(r)) {
            row_l[0] = self.base;
            row_t[0] = 0.0;
        }
        // Every row of the chunk (contiguous in the input), read and checked in one pass.
        self.read_rows(weights, first, m, s)?;
        for j in 0..r {
            let start = self.rebalance[j];
            let end = if j + 1 < r {
                self.rebalance[j + 1]
            } else {
                t - 1
            };
            // Period sums, block of days by block of days: out[d] = level[r_j] sum_i w_i rel[d, i],
            // accumulated in registers over the held names in order.
            let len = end - start;
            for b in 0..len.div_ceil(BLOCK) {
                let at = self.block_start[j] + b * n;
                let blk = &self.blocks[at..at + n];
                let d0 = start + 1 + b * BLOCK;
                let width = BLOCK.min(len - b * BLOCK);
                block_sums(lv, t, (&s.idx, &s.val, &s.off, r, j, start), blk, d0, width);
            }
            for (c, (row_l, row_t)) in lv.chunks_mut(t).zip(to.chunks_mut(r)).enumerate() {
                self.settle(j, row_l, row_t, s, c);
            }
        }
        Ok(())
    }
}

/// One-call batch backtest (all candidates, the current rayon pool). See the module docs.
#[allow(clippy::too_many_arguments)]
pub fn backtest_batch(
    tr: &[f64],
    t: usize,
    n: usize,
    rebalance: &[i64],
    weights: &Weights<'_>,
    cost: CostRate<'_>,
    base: f64,
    allow_short: bool,
) -> Result<BatchOutput> {
    let prep = Prepared::new(tr, t, n, rebalance, cost, base, allow_short)?;
    let k = prep.candidates(weights)?;
    let mut levels = vec![0.0; k * t];
    let mut turnover = vec![0.0; k * prep.rebalances()];
    prep.run(weights, 0, &mut levels, &mut turnover)?;
    Ok(BatchOutput { levels, turnover })
}
