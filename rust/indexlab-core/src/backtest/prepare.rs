//! Validating the market once per call and laying out its relative prices for the kernel.

use super::{CostRate, Days, Prepared, BLOCK};
use crate::data_err;
use crate::error::Result;

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
                    blocks.push(Days(x));
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
            scalar_rate,
            base,
            allow_short,
        })
    }
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
