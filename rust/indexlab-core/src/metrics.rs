//! Return and risk statistics of level series, a batch over rows.
//!
//! With levels `L_0..L_{T-1}` and simple daily returns `r_t = L_t / L_{t-1} - 1`
//! (`t = 1..T-1`), `ppy` periods per year and `rf_d = rf / ppy`:
//! * total return `L_{T-1} / L_0 - 1`; annualised `(L_{T-1}/L_0)^(ppy/(T-1)) - 1`;
//! * volatility `std(r, ddof=1) sqrt(ppy)`; Sharpe `mean(r - rf_d) / std(r, ddof=1) sqrt(ppy)`;
//! * Sortino `mean(r - rf_d) / sqrt(mean(min(r - rf_d, 0)^2)) sqrt(ppy)`;
//! * max drawdown `max_t (1 - L_t / max_{s<=t} L_s)` (a positive fraction) with the day of the
//!   peak and of the trough; Calmar `annualised / max drawdown` (NaN without a drawdown);
//! * against a benchmark level series with returns `b_t`: tracking error
//!   `std(r - b, ddof=1) sqrt(ppy)`, information ratio `mean(r - b) ppy / TE`,
//!   beta `cov(r, b) / var(b)` and correlation (both ddof=1).

use crate::data_err;
use crate::error::Result;
use rayon::prelude::*;

/// Column order of [`metrics_batch`]'s output rows.
pub const METRIC_NAMES: [&str; 13] = [
    "total_return",
    "annual_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "drawdown_peak",
    "drawdown_trough",
    "calmar",
    "tracking_error",
    "information_ratio",
    "beta",
    "correlation",
];

fn first_bad(values: &[f64]) -> Option<(usize, f64)> {
    values
        .iter()
        .copied()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && *v > 0.0))
}

fn returns(levels: &[f64]) -> Vec<f64> {
    levels.windows(2).map(|p| p[1] / p[0] - 1.0).collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample covariance (ddof = 1); NaN with fewer than two points.
fn cov(x: &[f64], y: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = (mean(x), mean(y));
    x.iter()
        .zip(y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / (x.len() - 1) as f64
}

fn one_row(levels: &[f64], bench: Option<&[f64]>, rf: f64, ppy: f64) -> [f64; 13] {
    let t = levels.len();
    let r = returns(levels);
    let rf_d = rf / ppy;
    let total = levels[t - 1] / levels[0];
    let annual = total.powf(ppy / (t - 1) as f64) - 1.0;
    let sd = cov(&r, &r).sqrt();
    let excess: Vec<f64> = r.iter().map(|x| x - rf_d).collect();
    let mean_ex = mean(&excess);
    let sharpe = mean_ex / sd * ppy.sqrt();
    let downside = (excess.iter().map(|x| x.min(0.0).powi(2)).sum::<f64>() / r.len() as f64).sqrt();
    let sortino = mean_ex / downside * ppy.sqrt();
    let (mut peak_at, mut best_peak, mut mdd, mut trough) = (0_usize, 0_usize, 0.0_f64, 0_usize);
    for (day, &l) in levels.iter().enumerate() {
        if l > levels[peak_at] {
            peak_at = day;
        }
        let dd = 1.0 - l / levels[peak_at];
        if dd > mdd {
            mdd = dd;
            trough = day;
            best_peak = peak_at;
        }
    }
    let calmar = if mdd > 0.0 { annual / mdd } else { f64::NAN };
    let (mut te, mut ir, mut beta, mut corr) = (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    if let Some(b) = bench {
        let rb = returns(b);
        let active: Vec<f64> = r.iter().zip(&rb).map(|(x, y)| x - y).collect();
        te = cov(&active, &active).sqrt() * ppy.sqrt();
        ir = mean(&active) * ppy / te;
        let var_b = cov(&rb, &rb);
        let c = cov(&r, &rb);
        beta = c / var_b;
        corr = c / (sd * var_b.sqrt());
    }
    [
        total - 1.0,
        annual,
        sd * ppy.sqrt(),
        sharpe,
        sortino,
        mdd,
        best_peak as f64,
        trough as f64,
        calmar,
        te,
        ir,
        beta,
        corr,
    ]
}

/// Metrics of each row of `levels` (`K x T`, row-major), one row of [`METRIC_NAMES`] each
/// (`K x 13`). Benchmark columns are NaN without a benchmark. Parallel over rows.
pub fn metrics_batch(
    levels: &[f64],
    t: usize,
    benchmark: Option<&[f64]>,
    rf: f64,
    periods_per_year: f64,
) -> Result<Vec<f64>> {
    if t < 2 {
        return data_err!("levels have {t} days: metrics need at least 2");
    }
    if levels.len() % t != 0 {
        return data_err!(
            "levels have {} values, not a multiple of T = {t}",
            levels.len()
        );
    }
    if !(periods_per_year.is_finite() && periods_per_year > 0.0) {
        return data_err!("periods_per_year must be finite and > 0, got {periods_per_year}");
    }
    if !rf.is_finite() {
        return data_err!("rf must be finite, got {rf}");
    }
    if let Some(b) = benchmark {
        if b.len() != t {
            return data_err!("benchmark has {} days but levels have {t}", b.len());
        }
        if let Some((d, v)) = first_bad(b) {
            return data_err!("benchmark[{d}] is {v}: levels must be finite and > 0");
        }
    }
    let rows: Vec<Result<[f64; 13]>> = levels
        .par_chunks(t)
        .enumerate()
        .map(|(k, row)| {
            if let Some((d, v)) = first_bad(row) {
                return data_err!("levels[{k}, {d}] is {v}: levels must be finite and > 0");
            }
            Ok(one_row(row, benchmark, rf, periods_per_year))
        })
        .collect();
    let mut out = Vec::with_capacity(rows.len() * METRIC_NAMES.len());
    for row in rows {
        out.extend_from_slice(&row?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_drawdown_and_returns() {
        // 100 -> 110 -> 88 -> 99: returns +10%, -20%, +12.5%; drawdown 1 - 88/110 = 20%
        // from day 1 to day 2.
        let m = metrics_batch(&[100.0, 110.0, 88.0, 99.0], 4, None, 0.0, 252.0).unwrap();
        assert!((m[0] + 0.01).abs() < 1e-15);
        assert!((m[5] - 0.2).abs() < 1e-15);
        assert_eq!((m[6], m[7]), (1.0, 2.0));
        assert!(m[9].is_nan());
    }

    #[test]
    fn benchmark_against_itself() {
        let l = [100.0, 101.0, 99.0, 102.0, 103.0];
        let m = metrics_batch(&l, 5, Some(&l), 0.0, 252.0).unwrap();
        assert_eq!(m[9], 0.0);
        assert!((m[11] - 1.0).abs() < 1e-12 && (m[12] - 1.0).abs() < 1e-12);
    }
}
