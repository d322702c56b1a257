//! Validating the market once per call and laying out its relative prices for the kernel.

use super::{CostRate, Days, Prepared, BLOCK};
use crate::data_err;
use crate::error::Result;
use rayon::prelude::*;

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
        if n > u32::MAX as usize {
            return data_err!("tr has {n} names; at most {} are supported", u32::MAX);
        }
        if t == 0 {
            return data_err!("tr has no days: the backtest needs at least one day");
        }
        if !(base.is_finite() && base > 0.0) {
            return data_err!("base must be finite and > 0, got {base}");
        }
        let rebalance = check_rebalance(rebalance, t)?;
        let scalar_rate = match cost {
            CostRate::Scalar(c) => Some(c),
            CostRate::PerName(_) => None,
        };
        let rates = match cost {
            CostRate::Scalar(c) => {
                if !(0.0..=1.0).contains(&c) {
                    return data_err!(
                        "cost_rate must be a fraction of traded value in [0, 1], got {c}"
                    );
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
                    .find(|(_, c)| !(0.0..=1.0).contains(*c))
                {
                    return data_err!(
                        "cost_rate[{i}] is {c}: cost rates must be fractions of traded value \
                         in [0, 1]"
                    );
                }
                r.to_vec()
            }
        };
        let r = rebalance.len();
        // Name by name, in parallel: carried-forward values, listing flags, relative prices
        // (`N x T`). The error is the first bad value in name-major order, as in a serial pass.
        let mut rel = vec![0.0; n * t];
        let mut listed_by_name = vec![false; n * r];
        let bad: Vec<Option<(usize, f64)>> = rel
            .par_chunks_mut(t)
            .zip(listed_by_name.par_chunks_mut(r))
            .enumerate()
            .map(|(i, (col, listed))| relative_column(tr, n, i, &rebalance, col, listed))
            .collect();
        if let Some((i, (day, v))) = bad.iter().enumerate().find_map(|(i, b)| b.map(|x| (i, x))) {
            return data_err!(
                "tr[{day}, {i}] is {v}: total-return values must be finite and > 0 \
                 (NaN marks a day without a value)"
            );
        }
        let mut listed = vec![false; r * n];
        let mut end_rel = vec![0.0; r * n];
        for j in 0..r {
            let end = period_end(&rebalance, j, t);
            for i in 0..n {
                listed[j * n + i] = listed_by_name[i * r + j];
                end_rel[j * n + i] = rel[i * t + end];
            }
        }
        // Blocks of days per period (zero-padded), filled in parallel.
        let mut block_start = Vec::with_capacity(r);
        let mut spans = Vec::new();
        for j in 0..r {
            let (start, end) = (rebalance[j], period_end(&rebalance, j, t));
            block_start.push(spans.len() * n);
            for b in 0..(end - start).div_ceil(BLOCK) {
                let first = start + 1 + b * BLOCK;
                spans.push((first, BLOCK.min(end + 1 - first)));
            }
        }
        let mut blocks = vec![Days([0.0; BLOCK]); spans.len() * n];
        blocks
            .par_chunks_mut(n.max(1))
            .zip(&spans)
            .for_each(|(block, &(first, width))| {
                for (i, days) in block.iter_mut().enumerate() {
                    days.0[..width].copy_from_slice(&rel[i * t + first..i * t + first + width]);
                }
            });
        Ok(Self {
            t,
            n,
            rebalance,
            end_rel,
            blocks,
            block_start,
            listed,
            rates,
            scalar_rate,
            base,
            allow_short,
        })
    }
}

/// Last day of holding period `j`: the next rebalance, or the last day of the data.
fn period_end(rebalance: &[usize], j: usize, t: usize) -> usize {
    rebalance.get(j + 1).copied().unwrap_or(t - 1)
}

/// Name `i`'s column: carried forward over missing days, `listed[j]` = has a value by
/// rebalance `j`, then each holding period relative to its first day (day 0 set to 1).
/// Returns the first bad value (day, value), if any.
fn relative_column(
    tr: &[f64],
    n: usize,
    i: usize,
    rebalance: &[usize],
    col: &mut [f64],
    listed: &mut [bool],
) -> Option<(usize, f64)> {
    let t = col.len();
    let mut last = f64::NAN;
    for (day, slot) in col.iter_mut().enumerate() {
        let v = tr[day * n + i];
        if !v.is_nan() {
            if !(v.is_finite() && v > 0.0) {
                return Some((day, v));
            }
            last = v;
        }
        *slot = last;
    }
    for (j, flag) in listed.iter_mut().enumerate() {
        *flag = !col[rebalance[j]].is_nan();
    }
    // Walk periods backwards so each anchor value is read before it is overwritten.
    for j in (0..rebalance.len()).rev() {
        let (start, end) = (rebalance[j], period_end(rebalance, j, t));
        let anchor = col[start];
        for v in &mut col[start + 1..=end] {
            *v /= anchor;
        }
    }
    col[0] = 1.0;
    None
}

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
