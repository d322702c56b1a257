//! Per-dataset arrays every rule set needs: market caps in HKD (forward-filled over
//! suspensions), each name's first day with data and the last trade at given days.
//!
//! One row-major pass over `(T x N)` inputs; cheaper than the equivalent chain of numpy
//! temporaries on large panels.

use crate::data_err;
use crate::error::Result;

/// Market caps prepared for the review loop.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketArrays {
    /// `(T x N)` free-float market cap in HKD, NaN carried forward from the last known value.
    pub ff_mcap: Vec<f64>,
    /// `(T x N)` full market cap in HKD, carried forward the same way.
    pub mcap: Vec<f64>,
    /// First day with a close, `T` if none.
    pub first_idx: Vec<i64>,
}

/// `close`, `shares`, `ff` are `(T x N)`; `fx` is `(T x C)` HKD per unit of currency `c`;
/// `currency[i]` is the column of name `i` in `fx`, or `-1` for HKD.
pub fn market_arrays(
    close: &[f64],
    shares: &[f64],
    ff: &[f64],
    fx: &[f64],
    n_currencies: usize,
    currency: &[i64],
) -> Result<MarketArrays> {
    let n = currency.len();
    if n == 0 {
        return Ok(MarketArrays {
            ff_mcap: Vec::new(),
            mcap: Vec::new(),
            first_idx: Vec::new(),
        });
    }
    let t = close.len() / n;
    if close.len() != t * n || shares.len() != t * n || ff.len() != t * n {
        return data_err!(
            "close, shares and free float must all be {t} x {n}, got {}, {} and {} values",
            close.len(),
            shares.len(),
            ff.len()
        );
    }
    if t.checked_mul(n_currencies) != Some(fx.len()) {
        return data_err!(
            "fx must be {t} days x {n_currencies} currencies, got {}",
            fx.len()
        );
    }
    if let Some(&bad) = currency
        .iter()
        .find(|&&c| c < -1 || c >= n_currencies as i64)
    {
        return data_err!("currency code {bad} is not -1 (HKD) or a column of fx");
    }
    let mut ff_mcap = vec![f64::NAN; t * n];
    let mut mcap = vec![f64::NAN; t * n];
    let mut first_idx = vec![t as i64; n];
    let mut last_ff = vec![f64::NAN; n];
    let mut last_full = vec![f64::NAN; n];
    for d in 0..t {
        let row = d * n;
        for i in 0..n {
            let rate = match currency[i] {
                -1 => 1.0,
                c => fx[d * n_currencies + c as usize],
            };
            let full = close[row + i] * shares[row + i] * rate;
            if full.is_finite() {
                last_full[i] = full;
                if first_idx[i] == t as i64 {
                    first_idx[i] = d as i64;
                }
            }
            let free = full * ff[row + i];
            if free.is_finite() {
                last_ff[i] = free;
            }
            mcap[row + i] = last_full[i];
            ff_mcap[row + i] = last_ff[i];
        }
    }
    Ok(MarketArrays {
        ff_mcap,
        mcap,
        first_idx,
    })
}

/// `(R x N)` index of the last day with a close on or before each day in `at` (`-1` if none).
/// `at` must be increasing.
pub fn last_trade_at(close: &[f64], n: usize, at: &[i64]) -> Result<Vec<i64>> {
    let t = close.len().checked_div(n).unwrap_or(0);
    if close.len() != t * n {
        return data_err!("close must be T x {n}, got {} values", close.len());
    }
    if at.windows(2).any(|w| w[1] < w[0]) || at.iter().any(|&d| d < 0 || d as usize >= t) {
        return data_err!("days must be increasing indices into the {t} panel days");
    }
    if at.is_empty() {
        // Nothing to report; `n` comes from the caller and may be far larger than the panel.
        return Ok(Vec::new());
    }
    let mut last = vec![-1i64; n];
    let mut out = Vec::with_capacity(at.len() * n);
    let mut d = 0usize;
    for &stop in at {
        while d <= stop as usize {
            for (i, slot) in last.iter_mut().enumerate() {
                if !close[d * n + i].is_nan() {
                    *slot = d as i64;
                }
            }
            d += 1;
        }
        out.extend_from_slice(&last);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_caps_fill_and_fx() {
        // Two days, two names: HKD name, then a CNY name at 1.1 / 1.2 HKD per CNY that is
        // suspended on day 1 (close NaN): its caps carry forward.
        let close = [2.0, 10.0, 3.0, f64::NAN];
        let shares = [100.0, 50.0, 100.0, 50.0];
        let ff = [0.5, 1.0, 0.5, 1.0];
        let fx = [1.1, 1.2];
        let m = market_arrays(&close, &shares, &ff, &fx, 1, &[-1, 0]).unwrap();
        let near = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
        assert!(near(&m.mcap, &[200.0, 550.0, 300.0, 550.0]), "{:?}", m.mcap);
        assert!(
            near(&m.ff_mcap, &[100.0, 550.0, 150.0, 550.0]),
            "{:?}",
            m.ff_mcap
        );
        assert_eq!(m.first_idx, vec![0, 0]);
        assert_eq!(last_trade_at(&close, 2, &[0, 1]).unwrap(), vec![0, 0, 1, 0]);
    }

    #[test]
    fn bad_currency_is_a_data_error() {
        assert!(market_arrays(&[1.0], &[1.0], &[1.0], &[], 0, &[0]).is_err());
    }
}
