//! Batch index-level engine: many candidate weight schedules over one market, in one pass.
//!
//! Conventions (DESIGN section 5, fixed):
//! * `level[0] = base`; weights `w_j` are set at the close of day `r_j`.
//! * For `r_j < t <= r_{j+1}`: `level[t] = level[r_j] * sum_i w_ij * tr[t,i] / tr[r_j,i]`, with
//!   `tr` carried forward over suspensions (NaN after the first value).
//! * At `r_{j+1}`: drifted `d_i = w_ij tr[r_{j+1},i]/tr[r_j,i] / sum(...)`, traded
//!   `= sum_i |w_{i,j+1} - d_i|`, and `level[r_{j+1}] *= 1 - sum_i rate_i |w_{i,j+1} - d_i|`.
//!   No cost at day 0; turnover is 0 at the first rebalance.
//!
//! Speed: the relative prices `tr[t,i] / tr[r_j,i]` do not depend on the candidate, so
//! [`Prepared`] computes them once per call, stored name-major (`N x T`) so that a candidate's
//! holding period is a few contiguous axpy's over the days, one per held name. The work per
//! candidate is then `T x (names held)` multiply-adds, independent of the universe size.

use crate::data_err;
use crate::error::Result;
use rayon::prelude::*;

/// Candidates run together period by period (one rayon task).
const CANDIDATE_CHUNK: usize = 32;

/// Weights sum to 1 within this tolerance.
pub const WEIGHT_SUM_TOL: f64 = 1e-9;

/// Candidate weights: `K x R x N` dense (row-major) or CSR with `K * R` rows of `N` columns
/// (row `k * R + j` = candidate `k` at rebalance `j`). CSR column indices must be strictly
/// increasing within a row.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    Dense(&'a [f64]),
    Csr {
        indptr: &'a [i64],
        indices: &'a [i64],
        data: &'a [f64],
    },
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
    blocks: Vec<[f64; BLOCK]>,
    /// Offset of each period's first block in `blocks`.
    block_start: Vec<usize>,
    /// `listed[j * N + i]`: name `i` has a value at or before day `r_j`.
    listed: Vec<bool>,
    rates: Vec<f64>,
    base: f64,
    allow_short: bool,
}

impl Prepared {
    /// Validate the market and rebalance days and precompute the relative prices.
    ///
    /// `tr` is `T x N` row-major. Errors: shape mismatch, `tr <= 0` or infinite, rebalance days
    /// not strictly increasing, not starting at 0 or past the last day, bad cost rates or base.
    pub fn new(
        tr: &[f64],
        t: usize,
        n: usize,
        rebalance: &[i64],
        cost: CostRate<'_>,
        base: f64,
        allow_short: bool,
    ) -> Result<Self> {
        if tr.len() != t * n {
            return data_err!(
                "tr has {} values, expected T x N = {t} x {n} = {}",
                tr.len(),
                t * n
            );
        }
        if t == 0 {
            return data_err!("tr has no days: the backtest needs at least one day");
        }
        if !(base.is_finite() && base > 0.0) {
            return data_err!("base must be finite and > 0, got {base}");
        }
        let rebalance = check_rebalance(rebalance, t)?;
        let rates = match cost {
            CostRate::Scalar(c) => {
                if !(c.is_finite() && c >= 0.0) {
                    return data_err!("cost_rate must be finite and >= 0, got {c}");
                }
                vec![c; n]
            }
            CostRate::PerName(r) => {
                if r.len() != n {
                    return data_err!(
                        "cost_rate has {} entries but tr has {n} names: give one rate per name",
                        r.len()
                    );
                }
                if let Some((i, c)) = r
                    .iter()
                    .enumerate()
                    .find(|(_, c)| !(c.is_finite() && **c >= 0.0))
                {
                    return data_err!("cost_rate[{i}] is {c}: cost rates must be finite and >= 0");
                }
                r.to_vec()
            }
        };
        // Carry forward, name-major (N x T), checking values as we go.
        let mut carried = vec![f64::NAN; n * t];
        for i in 0..n {
            let mut last = f64::NAN;
            let col = &mut carried[i * t..(i + 1) * t];
            for (day, slot) in col.iter_mut().enumerate() {
                let v = tr[day * n + i];
                if !v.is_nan() {
                    if !(v.is_finite() && v > 0.0) {
                        return data_err!(
                            "tr[{day}, {i}] is {v}: total-return values must be finite and > 0 \
                             (NaN marks a day without a value)"
                        );
                    }
                    last = v;
                }
                *slot = last;
            }
        }
        let r = rebalance.len();
        let mut listed = vec![false; r * n];
        let mut rel = carried;
        for i in 0..n {
            let col = &mut rel[i * t..(i + 1) * t];
            for j in 0..r {
                listed[j * n + i] = !col[rebalance[j]].is_nan();
            }
            // Walk periods backwards so each anchor value is read before it is overwritten.
            for j in (0..r).rev() {
                let start = rebalance[j];
                let end = if j + 1 < r { rebalance[j + 1] } else { t - 1 };
                let anchor = col[start];
                for v in &mut col[start + 1..=end] {
                    *v /= anchor;
                }
            }
            col[0] = 1.0;
        }
        let mut end_rel = vec![0.0; r * n];
        for j in 0..r {
            let end = if j + 1 < r { rebalance[j + 1] } else { t - 1 };
            for i in 0..n {
                end_rel[j * n + i] = rel[i * t + end];
            }
        }
        let mut block_start = Vec::with_capacity(r);
        let mut blocks = Vec::new();
        for j in 0..r {
            let start = rebalance[j];
            let end = if j + 1 < r { rebalance[j + 1] } else { t - 1 };
            let len = end - start;
            block_start.push(blocks.len());
            for b in 0..len.div_ceil(BLOCK) {
                for i in 0..n {
                    let mut x = [0.0; BLOCK];
                    for (q, slot) in x.iter_mut().enumerate() {
                        let d = b * BLOCK + q;
                        if d < len {
                            *slot = rel[i * t + start + 1 + d];
                        }
                    }
                    blocks.push(x);
                }
            }
        }
        Ok(Self {
            t,
            n,
            rebalance,
            end_rel,
            blocks,
            block_start,
            listed,
            rates,
            base,
            allow_short,
        })
    }

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
                if indptr[0] != 0 || indptr[rows] != nnz || indptr.windows(2).any(|p| p[1] < p[0]) {
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
        // Fixed-size chunks (not per thread), so the reported error does not depend on the
        // thread count either.
        let results: Vec<Result<()>> = levels
            .par_chunks_mut(CANDIDATE_CHUNK * t)
            .zip(turnover.par_chunks_mut(CANDIDATE_CHUNK * r))
            .enumerate()
            .map_init(
                || Scratch::new(self.n),
                |scratch, (c, (lv, to))| {
                    self.run_chunk(weights, first + c * CANDIDATE_CHUNK, lv, to, scratch)
                },
            )
            .collect();
        results.into_iter().collect()
    }

    fn row<'w>(
        &self,
        weights: &Weights<'w>,
        k: usize,
        j: usize,
        idx: &mut Vec<usize>,
        val: &mut Vec<f64>,
    ) -> Result<()> {
        let s0 = idx.len();
        let (r, n) = (self.rebalance.len(), self.n);
        match *weights {
            Weights::Dense(w) => {
                let row = &w[(k * r + j) * n..(k * r + j + 1) * n];
                for (i, &x) in row.iter().enumerate() {
                    if x != 0.0 {
                        idx.push(i);
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
                let (a, b) = (indptr[row] as usize, indptr[row + 1] as usize);
                let mut prev: i64 = -1;
                for (&i, &x) in indices[a..b].iter().zip(&data[a..b]) {
                    if i <= prev || i >= n as i64 {
                        return data_err!(
                            "candidate {k}, rebalance {j}: sparse column index {i} is out of range \
                             0..{n} or not strictly increasing (call sum_duplicates() and \
                             sort_indices() first)"
                        );
                    }
                    prev = i;
                    if x != 0.0 || x.is_nan() {
                        idx.push(i as usize);
                        val.push(x);
                    }
                }
            }
        }
        let mut sum = 0.0;
        for (&i, &x) in idx[s0..].iter().zip(&val[s0..]) {
            if x.is_nan() {
                return data_err!("candidate {k}, rebalance {j}: weight of name {i} is NaN");
            }
            if x < 0.0 && !self.allow_short {
                return data_err!(
                    "candidate {k}, rebalance {j}: weight of name {i} is {x} < 0 \
                     (pass allow_short=True for short positions)"
                );
            }
            if !self.listed[j * n + i] {
                return data_err!(
                    "candidate {k}, rebalance {j} (day {}): weight {x} on name {i}, which has no \
                     total-return value on or before that day (not yet listed)",
                    self.rebalance[j]
                );
            }
            sum += x;
        }
        if (sum - 1.0).abs() > WEIGHT_SUM_TOL {
            return data_err!(
                "candidate {k}, rebalance {j}: weights sum to {sum}, expected 1 within {WEIGHT_SUM_TOL:e}"
            );
        }
        Ok(())
    }

    /// A chunk of candidates, period by period: the relative prices of one holding period
    /// (`N x days`, ~150 KB for 300 names and 20 rebalances a year) stay in cache while every
    /// candidate of the chunk reads its held names from them.
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
        // Every row of the chunk (contiguous in the input), read and checked in one sequential
        // pass; on bad input, find the error the period-by-period order meets first.
        s.idx.clear();
        s.val.clear();
        s.off.clear();
        s.off.push(0);
        for c in 0..m {
            for j in 0..r {
                if let Err(e) = self.row(weights, first + c, j, &mut s.idx, &mut s.val) {
                    self.check_rows_in_order(weights, first, m)?;
                    return Err(e);
                }
                s.off.push(s.idx.len());
            }
        }
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

    /// End of holding period `j` for the `c`-th candidate of the chunk, whose levels over the
    /// period are in `lv`: charge the rebalance into `w_{j+1}`.
    fn settle(&self, j: usize, lv: &mut [f64], to: &mut [f64], s: &mut Scratch, c: usize) {
        let (t, r) = (self.t, self.rebalance.len());
        let start = self.rebalance[j];
        let end = if j + 1 < r {
            self.rebalance[j + 1]
        } else {
            t - 1
        };
        let anchor = lv[start];
        let Scratch {
            idx: all_idx,
            val: all_val,
            off,
            drift,
        } = s;
        let (a, b) = (off[c * r + j], off[c * r + j + 1]);
        let (idx, val) = (&all_idx[a..b], &all_val[a..b]);
        if j + 1 < r {
            // Growth over the period (pre-cost) and the drifted weights at its end.
            let growth = lv[end] / anchor;
            for (&i, &w) in idx.iter().zip(val) {
                drift[i] = w * self.end_rel[j * self.n + i] / growth;
            }
            let nb = off[c * r + j + 2];
            let (mut traded, mut cost) = (0.0, 0.0);
            for (&i, &w) in all_idx[b..nb].iter().zip(&all_val[b..nb]) {
                let diff = (w - drift[i]).abs();
                traded += diff;
                cost += self.rates[i] * diff;
                drift[i] = 0.0;
            }
            for &i in idx {
                let diff = drift[i].abs();
                traded += diff;
                cost += self.rates[i] * diff;
                drift[i] = 0.0;
            }
            lv[end] *= 1.0 - cost;
            to[j + 1] = traded;
        }
    }
}

/// One block of days for every candidate of a chunk: `out[d] = sum_i w_i rel[d, i]`,
/// accumulated in registers over the held names in order.
#[inline(always)]
fn block_sums_generic(
    lv: &mut [f64],
    t: usize,
    rows: Rows<'_>,
    blk: &[[f64; BLOCK]],
    d0: usize,
    width: usize,
) {
    let (all_idx, all_val, off, r, j, start) = rows;
    for (c, row_l) in lv.chunks_mut(t).enumerate() {
        let (a, b) = (off[c * r + j], off[c * r + j + 1]);
        let (idx, val) = (&all_idx[a..b], &all_val[a..b]);
        // Weights in index points: the level at `r_j` times each weight.
        let anchor = row_l[start];
        let mut acc = [0.0_f64; BLOCK];
        for (&i, &w) in idx.iter().zip(val) {
            let x: &[f64; BLOCK] = &blk[i];
            // Indexing fixed-size arrays keeps `acc` in registers.
            #[allow(clippy::needless_range_loop)]
            let w = w * anchor;
            for q in 0..BLOCK {
                acc[q] += w * x[q];
            }
        }
        row_l[d0..d0 + width].copy_from_slice(&acc[..width]);
    }
}

/// The same loop with explicit 256-bit vectors: eight independent accumulators per candidate
/// (32 days), so the adds are not serialised on one register. Plain multiplies and adds (no
/// FMA), lane by lane in the same order as [`block_sums_generic`]: bit-identical results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_sums_avx2(
    lv: &mut [f64],
    t: usize,
    rows: Rows<'_>,
    blk: &[[f64; BLOCK]],
    d0: usize,
    width: usize,
) {
    use std::arch::x86_64::*;
    const _: () = assert!(BLOCK == 32);
    let (all_idx, all_val, off, r, j, start) = rows;
    for (c, row_l) in lv.chunks_mut(t).enumerate() {
        let (a, b) = (off[c * r + j], off[c * r + j + 1]);
        let (idx, val) = (&all_idx[a..b], &all_val[a..b]);
        // Weights in index points: the level at `r_j` times each weight.
        let anchor = row_l[start];
        let mut acc = [_mm256_setzero_pd(); 8];
        for (&i, &w) in idx.iter().zip(val) {
            let x: &[f64; BLOCK] = &blk[i];
            let wv = _mm256_set1_pd(w * anchor);
            let p = x.as_ptr();
            for (q, a) in acc.iter_mut().enumerate() {
                // SAFETY: `x` holds BLOCK = 32 doubles, so lanes 4q..4q+4 (q < 8) are in bounds.
                let v = unsafe { _mm256_loadu_pd(p.add(4 * q)) };
                *a = _mm256_add_pd(*a, _mm256_mul_pd(wv, v));
            }
        }
        if width == BLOCK {
            let out = &mut row_l[d0..d0 + BLOCK];
            for (q, a) in acc.iter().enumerate() {
                // SAFETY: `out` holds 32 doubles, lanes 4q..4q+4 (q < 8) are in bounds.
                unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(4 * q), *a) };
            }
        } else {
            let mut out = [0.0_f64; BLOCK];
            for (q, a) in acc.iter().enumerate() {
                // SAFETY: `out` holds 32 doubles, lanes 4q..4q+4 (q < 8) are in bounds.
                unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(4 * q), *a) };
            }
            row_l[d0..d0 + width].copy_from_slice(&out[..width]);
        }
    }
}

/// Wheels target plain x86-64 (SSE2); pick the AVX2 build of the hot loop at run time.
fn block_sums(
    lv: &mut [f64],
    t: usize,
    rows: Rows<'_>,
    blk: &[[f64; BLOCK]],
    d0: usize,
    width: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { block_sums_avx2(lv, t, rows, blk, d0, width) };
        return;
    }
    block_sums_generic(lv, t, rows, blk, d0, width)
}

/// The rows of a chunk's candidates: names, weights, row offsets (`off[c * R + j]`), `R`, the
/// current rebalance `j` and its day `r_j`.
type Rows<'a> = (&'a [usize], &'a [f64], &'a [usize], usize, usize, usize);

/// Per-thread buffers: every row of the current chunk of candidates (names and weights, with
/// row offsets), and a dense drift vector (all zeros between uses).
struct Scratch {
    idx: Vec<usize>,
    val: Vec<f64>,
    off: Vec<usize>,
    drift: Vec<f64>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self {
            idx: Vec::new(),
            val: Vec::new(),
            off: Vec::new(),
            drift: vec![0.0; n],
        }
    }
}

/// Days per block of relative prices (eight 256-bit register accumulators).
const BLOCK: usize = 32;

fn check_rebalance(rebalance: &[i64], t: usize) -> Result<Vec<usize>> {
    if rebalance.is_empty() {
        return data_err!("rebalance is empty: the first rebalance must be day 0");
    }
    if rebalance[0] != 0 {
        return data_err!(
            "rebalance[0] is day {}, expected 0 (weights are set at the close of day 0)",
            rebalance[0]
        );
    }
    for (j, p) in rebalance.windows(2).enumerate() {
        if p[1] <= p[0] {
            return data_err!(
                "rebalance days must be strictly increasing: rebalance[{}] = {} follows rebalance[{j}] = {}",
                j + 1,
                p[1],
                p[0]
            );
        }
    }
    let last = rebalance[rebalance.len() - 1];
    if last >= t as i64 {
        return data_err!(
            "rebalance[{}] is day {last}, past the last day {} of tr",
            rebalance.len() - 1,
            t - 1
        );
    }
    Ok(rebalance.iter().map(|&d| d as usize).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// Straight transcription of DESIGN section 5 over dense weights, day by day.
    fn reference(
        tr: &[f64],
        t: usize,
        n: usize,
        reb: &[usize],
        w: &[f64],
        rate: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let r = reb.len();
        let k = w.len() / (r * n);
        let mut ctr = tr.to_vec();
        for day in 1..t {
            for i in 0..n {
                if ctr[day * n + i].is_nan() {
                    ctr[day * n + i] = ctr[(day - 1) * n + i];
                }
            }
        }
        let mut levels = vec![0.0; k * t];
        let mut turn = vec![0.0; k * r];
        for c in 0..k {
            let lv = &mut levels[c * t..(c + 1) * t];
            lv[0] = 1000.0;
            for j in 0..r {
                let wj = &w[(c * r + j) * n..(c * r + j + 1) * n];
                let end = if j + 1 < r { reb[j + 1] } else { t - 1 };
                for day in reb[j] + 1..=end {
                    let s: f64 = (0..n)
                        .filter(|&i| wj[i] != 0.0)
                        .map(|i| wj[i] * ctr[day * n + i] / ctr[reb[j] * n + i])
                        .sum();
                    lv[day] = lv[reb[j]] * s;
                }
                if j + 1 < r {
                    let wn = &w[(c * r + j + 1) * n..(c * r + j + 2) * n];
                    let g: Vec<f64> = (0..n)
                        .map(|i| {
                            if wj[i] != 0.0 {
                                wj[i] * ctr[end * n + i] / ctr[reb[j] * n + i]
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let tot: f64 = g.iter().sum();
                    let traded: f64 = (0..n).map(|i| (wn[i] - g[i] / tot).abs()).sum();
                    lv[end] *= 1.0 - rate * traded;
                    turn[c * r + j + 1] = traded;
                }
            }
        }
        (levels, turn)
    }

    /// The error of a dense, cost-free backtest on [`market`] that must fail.
    fn dense_error(w: &[f64], rebalance: &[i64]) -> Error {
        let (tr, t, n) = market();
        backtest_batch(
            &tr,
            t,
            n,
            rebalance,
            &Weights::Dense(w),
            CostRate::Scalar(0.0),
            1000.0,
            false,
        )
        .unwrap_err()
    }

    fn market() -> (Vec<f64>, usize, usize) {
        // 6 days x 3 names; name 2 lists on day 2, name 1 suspended on days 3-4.
        let nan = f64::NAN;
        let tr = vec![
            10.0, 20.0, nan, //
            11.0, 19.0, nan, //
            12.0, 21.0, 5.0, //
            11.5, nan, 5.5, //
            12.5, nan, 6.0, //
            13.0, 22.0, 5.8,
        ];
        (tr, 6, 3)
    }

    #[test]
    fn matches_reference_dense_and_csr() {
        let (tr, t, n) = market();
        let reb = [0_i64, 2, 4];
        let w = vec![
            0.5, 0.5, 0.0, 0.2, 0.3, 0.5, 0.0, 0.6, 0.4, // candidate 0
            1.0, 0.0, 0.0, 0.4, 0.4, 0.2, 0.1, 0.1, 0.8, // candidate 1
        ];
        let (lv, to) = reference(&tr, t, n, &[0, 2, 4], &w, 0.01);
        let out = backtest_batch(
            &tr,
            t,
            n,
            &reb,
            &Weights::Dense(&w),
            CostRate::Scalar(0.01),
            1000.0,
            false,
        )
        .unwrap();
        for (a, b) in out.levels.iter().zip(&lv) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
        }
        for (a, b) in out.turnover.iter().zip(&to) {
            assert!((a - b).abs() <= 1e-12, "{a} vs {b}");
        }
        // The same weights as CSR.
        let (mut indptr, mut indices, mut data) = (vec![0_i64], vec![], vec![]);
        for row in w.chunks(n) {
            for (i, &x) in row.iter().enumerate() {
                if x != 0.0 {
                    indices.push(i as i64);
                    data.push(x);
                }
            }
            indptr.push(indices.len() as i64);
        }
        let csr = Weights::Csr {
            indptr: &indptr,
            indices: &indices,
            data: &data,
        };
        let out2 =
            backtest_batch(&tr, t, n, &reb, &csr, CostRate::Scalar(0.01), 1000.0, false).unwrap();
        assert_eq!(out.levels, out2.levels);
        assert_eq!(out.turnover, out2.turnover);
    }

    #[test]
    fn errors_name_candidate_and_rebalance() {
        let w = vec![0.5, 0.0, 0.5, 0.5, 0.5, 0.0];
        let err = dense_error(&w, &[0, 2]);
        let Error::Data(msg) = err else {
            panic!("wrong variant")
        };
        assert!(
            msg.contains("candidate 0, rebalance 0") && msg.contains("name 2"),
            "{msg}"
        );
        let w = vec![0.5, 0.5, 0.0, 0.5, 0.6, 0.0];
        let err = dense_error(&w, &[0, 2]);
        assert!(
            err.to_string().contains("candidate 0, rebalance 1"),
            "{err}"
        );
        let err = dense_error(&w, &[1, 2]);
        assert!(err.to_string().contains("expected 0"), "{err}");
    }

    #[test]
    fn first_error_is_by_rebalance_then_candidate() {
        // Candidate 0 is bad at rebalance 1, candidate 1 at rebalance 0: rebalance 0 first.
        let w = vec![
            0.5, 0.5, 0.0, 0.5, 0.6, 0.0, // candidate 0
            0.5, 0.4, 0.0, 0.5, 0.5, 0.0, // candidate 1
        ];
        let err = dense_error(&w, &[0, 2]);
        assert!(
            err.to_string().contains("candidate 1, rebalance 0"),
            "{err}"
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_block_sums_match_generic_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let n = 5;
        let blk: Vec<[f64; BLOCK]> = (0..n)
            .map(|i| std::array::from_fn(|q| 1.0 + ((i * 37 + q * 11) % 17) as f64 / 7.0))
            .collect();
        let idx = [0, 2, 3, 1, 4, 0, 3];
        let val = [0.1, 0.3, 0.6, 0.25, 0.75, 0.2, 0.8];
        let off = [0, 3, 5, 7];
        let (t, start, d0) = (40, 3, 4);
        for width in [BLOCK, 5] {
            let mut a = vec![0.0; 3 * t];
            for c in 0..3 {
                a[c * t + start] = 1000.0 + c as f64 / 3.0;
            }
            let mut b = a.clone();
            block_sums_generic(&mut a, t, (&idx, &val, &off, 1, 0, start), &blk, d0, width);
            // SAFETY: AVX2 is available, checked above.
            unsafe { block_sums_avx2(&mut b, t, (&idx, &val, &off, 1, 0, start), &blk, d0, width) };
            assert_eq!(a, b);
            assert!(a[d0 + width - 1] > 0.0 && a[d0 + width] == 0.0);
        }
    }
}
