//! Monthly turnover velocity, the input of the Hang Seng velocity test.
//!
//! HSIL's General Guide section 5.6.3 defines a monthly velocity test whose exact formula we
//! could not read (hang-seng-rules.md 1.2, UNVERIFIED). The default here is the commonly quoted
//! one: median daily traded shares x trading days in the month / free-float shares at month end.
//! The alternative sums the daily traded shares instead.

use crate::data_err;
use crate::error::Result;
use rayon::prelude::*;

/// How a month's traded shares are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VelocityMethod {
    /// Median of the traded days' share volume x the market's trading days in the month.
    MedianTimesDays,
    /// Sum of the month's daily share volume.
    Sum,
}

/// Monthly velocity, `(months x n)` row-major.
///
/// `turnover_shares`, `shares` and `ff` (free-float factor) are `(T x n)` row-major (NaN = no
/// data); free-float shares are `shares x ff`. `month` gives each
/// day's month number (0-based, non-decreasing). A month where the name has no free-float share
/// count (not yet listed, or delisted) is NaN ("not available"); a listed name that did not trade
/// all month has velocity 0.
pub fn monthly_velocity(
    turnover_shares: &[f64],
    shares: &[f64],
    ff: &[f64],
    month: &[i64],
    n: usize,
    method: VelocityMethod,
) -> Result<(usize, Vec<f64>)> {
    let t = month.len();
    // `n` comes from the caller: an overflowing `t x n` is a mismatch, never a wrapped match.
    let Some(values) = t.checked_mul(n) else {
        return data_err!("velocity inputs: {t} days x {n} names is too large");
    };
    if turnover_shares.len() != values || shares.len() != values || ff.len() != values {
        return data_err!(
            "velocity inputs must be {t} days x {n} names = {} values, got {} (turnover_shares), \
             {} (shares) and {} (free float)",
            t * n,
            turnover_shares.len(),
            shares.len(),
            ff.len()
        );
    }
    if t == 0 {
        return Ok((0, Vec::new()));
    }
    if month[0] != 0 || month.windows(2).any(|w| w[1] < w[0] || w[1] > w[0] + 1) {
        return data_err!(
            "month numbers must start at 0 and rise by 0 or 1 from one day to the next"
        );
    }
    let months = (month[t - 1] + 1) as usize;
    // Day ranges of each month.
    let mut bounds = vec![0usize; months + 1];
    for (d, &m) in month.iter().enumerate() {
        bounds[m as usize + 1] = d + 1;
    }
    for m in 1..=months {
        bounds[m] = bounds[m].max(bounds[m - 1]);
    }
    // One month per task: its rows are contiguous and small enough to stay in cache while each
    // name's column is gathered. Months are independent, so the result does not depend on the
    // thread count.
    let rows: Vec<Vec<f64>> = (0..months)
        .into_par_iter()
        .map(|m| {
            let (a, b) = (bounds[m], bounds[m + 1]);
            let mut out = vec![f64::NAN; n];
            let mut buf: Vec<f64> = Vec::with_capacity(b - a);
            for (i, slot) in out.iter_mut().enumerate() {
                let mut ffs = f64::NAN;
                buf.clear();
                for d in a..b {
                    let f = shares[d * n + i] * ff[d * n + i];
                    if f.is_finite() {
                        ffs = f;
                    }
                    let v = turnover_shares[d * n + i];
                    if v.is_finite() {
                        buf.push(v);
                    }
                }
                if !(ffs.is_finite() && ffs > 0.0) {
                    continue;
                }
                let traded = match method {
                    VelocityMethod::Sum => buf.iter().sum::<f64>(),
                    VelocityMethod::MedianTimesDays => median(&mut buf) * (b - a) as f64,
                };
                *slot = traded / ffs;
            }
            out
        })
        .collect();
    let flat: Vec<f64> = rows.concat();
    Ok((months, flat))
}

/// Median of the values (0 when there are none); averages the two middle values.
fn median(v: &mut [f64]) -> f64 {
    let k = v.len();
    if k == 0 {
        return 0.0;
    }
    let (below, mid, _) = v.select_nth_unstable_by(k / 2, |a, b| a.total_cmp(b));
    let upper = *mid;
    if k % 2 == 1 {
        upper
    } else {
        // The lower middle value is the largest of the values below the upper one.
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_median_and_sum() {
        // One name, month 0 has 3 days (volumes 10, NaN, 30), month 1 has 2 days (4, 6).
        // ff shares 1000 then 2000 at the end of month 1.
        let ts = [10.0, f64::NAN, 30.0, 4.0, 6.0];
        let ff = [1000.0, 1000.0, 1000.0, 1000.0, 2000.0];
        let month = [0, 0, 0, 1, 1];
        let ones = [1.0; 5];
        let (m, v) =
            monthly_velocity(&ts, &ff, &ones, &month, 1, VelocityMethod::MedianTimesDays).unwrap();
        assert_eq!(m, 2);
        // Month 0: median(10, 30) = 20 x 3 days / 1000 = 0.06; month 1: 5 x 2 / 2000 = 0.005.
        assert!((v[0] - 0.06).abs() < 1e-15 && (v[1] - 0.005).abs() < 1e-15);
        let (_, s) = monthly_velocity(&ts, &ff, &ones, &month, 1, VelocityMethod::Sum).unwrap();
        assert!((s[0] - 0.04).abs() < 1e-15 && (s[1] - 0.005).abs() < 1e-15);
    }

    #[test]
    fn unlisted_is_nan_and_untraded_is_zero() {
        let ts = [f64::NAN, f64::NAN, f64::NAN, f64::NAN];
        let ff = [f64::NAN, 100.0, f64::NAN, f64::NAN];
        let (_, v) = monthly_velocity(
            &ts,
            &ff,
            &[1.0; 4],
            &[0, 0, 1, 1],
            1,
            VelocityMethod::MedianTimesDays,
        )
        .unwrap();
        assert_eq!(v[0], 0.0);
        assert!(v[1].is_nan());
    }

    #[test]
    fn bad_shapes_are_data_errors() {
        assert!(
            monthly_velocity(&[1.0], &[1.0, 2.0], &[1.0], &[0], 1, VelocityMethod::Sum).is_err()
        );
        assert!(monthly_velocity(
            &[1.0, 1.0],
            &[1.0, 1.0],
            &[1.0, 1.0],
            &[0, 2],
            1,
            VelocityMethod::Sum
        )
        .is_err());
    }
}
