//! Input checks of the fast path: shapes, finiteness and ranges, each error naming the
//! argument and the instance (and name or group) where it was found.

use super::{CappedQp, Groups, PerInstance, RiskModel, Turnover};
use crate::error::{Error, Result};
use rayon::prelude::*;

impl PerInstance<'_> {
    pub(super) fn check_len(&self, name: &str, batch: usize, len: usize) -> Result<()> {
        let (got, want) = match self {
            PerInstance::Scalar(_) => return Ok(()),
            PerInstance::Shared(s) => (s.len(), len),
            PerInstance::Rows(s) => (s.len(), batch * len),
        };
        if got != want {
            return Err(Error::Data(format!(
                "{name} has {got} values, expected {want} (batch {batch} x {len})"
            )));
        }
        Ok(())
    }

    /// The first name of instance `i` whose value is not finite (or negative, when
    /// `nonneg`), with that value.
    fn first_bad(&self, i: usize, len: usize, nonneg: bool) -> Option<(usize, f64)> {
        let mut buf = Vec::new();
        let row = self.row(i, len, &mut buf);
        // Branch-free passes for the common all-good row, then the search on failure.
        if all_finite(row) && !(nonneg && row.iter().fold(false, |neg, &v| neg | (v < 0.0))) {
            return None;
        }
        let ok = |v: f64| v.is_finite() && !(nonneg && v < 0.0);
        row.iter().position(|&v| !ok(v)).map(|j| (j, row[j]))
    }
}

/// Whether every value is finite, in one pass the compiler can vectorise: `v * 0` is `0` for
/// a finite `v` and NaN otherwise, and NaN survives any sum.
fn all_finite(values: &[f64]) -> bool {
    let mut acc = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(0.0, |s, &v| s + v * 0.0);
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * 0.0;
        }
    }
    (acc.iter().sum::<f64>() + tail) == 0.0
}

fn check_finite(name: &str, values: &[f64], width: usize, what: &str) -> Result<()> {
    for (idx, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            let (row, col) = (idx / width.max(1), idx % width.max(1));
            return Err(Error::Data(format!(
                "{name}[{row}, {col}] is {v}: {what} must be finite"
            )));
        }
    }
    Ok(())
}

/// The first error of `check` over instances `start..end`, in instance order (checked in
/// parallel; the result does not depend on the thread count).
fn per_instance_first<F>(start: usize, end: usize, check: F) -> Result<()>
where
    F: Fn(usize) -> Result<()> + Sync + Send,
{
    match (start..end)
        .into_par_iter()
        .map(check)
        .find_first(|r| r.is_err())
    {
        Some(err) => err,
        None => Ok(()),
    }
}

/// A per-name argument whose every value must be finite (and `>= 0` when `nonneg`; `rule`
/// says what it must be).
fn check_per_name(
    values: &PerInstance<'_>,
    name: &str,
    (batch, n): (usize, usize),
    (start, end): (usize, usize),
    nonneg: bool,
    rule: &str,
) -> Result<()> {
    values.check_len(name, batch, n)?;
    per_instance_first(start, end, |i| match values.first_bad(i, n, nonneg) {
        Some((j, v)) => Err(Error::Data(format!(
            "{name} is {v} at instance {i}, name {j}: {rule}"
        ))),
        None => Ok(()),
    })
}

/// Checks the shared inputs and the per-instance inputs of instances `start..end`.
pub(super) fn validate(p: &CappedQp<'_>, start: usize, end: usize) -> Result<()> {
    validate_shared(p)?;
    validate_instances(p, start, end)
}

/// The inputs shared by the batch: shapes, the risk aversion, the risk model, the group
/// matrix.
pub(super) fn validate_shared(p: &CappedQp<'_>) -> Result<()> {
    if !(p.gamma.is_finite() && p.gamma >= 0.0) {
        return Err(Error::Data(format!(
            "gamma is {}: the risk aversion must be finite and >= 0",
            p.gamma
        )));
    }
    match &p.risk {
        Some(r) => check_risk(r, p.names)?,
        None if p.gamma > 0.0 => {
            return Err(Error::Data(format!(
                "gamma is {} but no risk model was given: pass loadings, factor_cov and \
                 specific_var, or gamma=0 for a linear objective",
                p.gamma
            )))
        }
        None => {}
    }
    if let Some(g) = &p.groups {
        check_group_matrix(g, p.names)?;
    }
    Ok(())
}

/// The per-instance inputs of instances `[start, end)` (the shared ones already checked).
pub(super) fn validate_instances(p: &CappedQp<'_>, start: usize, end: usize) -> Result<()> {
    let (bsz, n) = (p.batch, p.names);
    if p.scores.len() != bsz * n {
        return Err(Error::Data(format!(
            "scores has {} values, expected batch {bsz} x {n} names",
            p.scores.len()
        )));
    }
    check_per_name(
        &PerInstance::Rows(p.scores),
        "scores",
        (bsz, n),
        (start, end),
        false,
        "scores must be finite",
    )?;
    if let Some(b) = &p.bench {
        let rule = "benchmark weights must be finite";
        check_per_name(b, "bench", (bsz, n), (start, end), false, rule)?;
    }
    check_bounds(p, start, end)?;
    if let Some(g) = &p.groups {
        check_group_bounds(g, bsz, start, end)?;
    }
    if let Some(t) = &p.turnover {
        check_turnover(t, (bsz, n), (start, end))?;
    }
    Ok(())
}

fn check_bounds(p: &CappedQp<'_>, start: usize, end: usize) -> Result<()> {
    let (bsz, n) = (p.batch, p.names);
    p.lo.check_len("lo", bsz, n)?;
    p.hi.check_len("hi", bsz, n)?;
    per_instance_first(start, end, |i| {
        let (mut lo_buf, mut hi_buf) = (Vec::new(), Vec::new());
        let lo_row = p.lo.row(i, n, &mut lo_buf);
        let hi_row = p.hi.row(i, n, &mut hi_buf);
        let crossed = lo_row
            .iter()
            .zip(hi_row)
            .fold(0u32, |c, (&lo, &hi)| c + u32::from(lo > hi));
        if crossed == 0 && all_finite(lo_row) && all_finite(hi_row) {
            return Ok(());
        }
        for (j, (&lo, &hi)) in lo_row.iter().zip(hi_row).enumerate() {
            // `lo <= hi` with both finite, in one comparison chain for the common case.
            if lo.is_finite() && hi.is_finite() && lo <= hi {
                continue;
            }
            if !lo.is_finite() || !hi.is_finite() {
                return Err(Error::Data(format!(
                    "bounds at instance {i}, name {j} are lo={lo}, hi={hi}: both must be finite"
                )));
            }
            return Err(Error::Data(format!(
                "lo > hi at instance {i}, name {j}: lo={lo}, hi={hi}"
            )));
        }
        Ok(())
    })
}

fn check_risk(r: &RiskModel<'_>, n: usize) -> Result<()> {
    let k = r.factors;
    if r.loadings.len() != n * k {
        return Err(Error::Data(format!(
            "loadings has {} values, expected {n} names x {k} factors",
            r.loadings.len()
        )));
    }
    if r.factor_cov.len() != k * k {
        return Err(Error::Data(format!(
            "factor_cov has {} values, expected {k} x {k}",
            r.factor_cov.len()
        )));
    }
    if r.specific_var.len() != n {
        return Err(Error::Data(format!(
            "specific_var has {} values, expected {n} (one per name)",
            r.specific_var.len()
        )));
    }
    check_finite("loadings", r.loadings, k, "factor loadings")?;
    check_finite("factor_cov", r.factor_cov, k, "the factor covariance")?;
    for a in 0..k {
        for b in 0..a {
            let (x, y) = (r.factor_cov[a * k + b], r.factor_cov[b * k + a]);
            if (x - y).abs() > 1e-12 * (1.0 + x.abs().max(y.abs())) {
                return Err(Error::Data(format!(
                    "factor_cov is not symmetric: [{a}, {b}] = {x} but [{b}, {a}] = {y}"
                )));
            }
        }
        if r.factor_cov[a * k + a] < 0.0 {
            return Err(Error::Data(format!(
                "factor_cov[{a}, {a}] = {}: a variance must be >= 0",
                r.factor_cov[a * k + a]
            )));
        }
    }
    for (j, &d) in r.specific_var.iter().enumerate() {
        if !(d.is_finite() && d >= 0.0) {
            return Err(Error::Data(format!(
                "specific_var[{j}] is {d}: specific variances must be finite and >= 0"
            )));
        }
    }
    Ok(())
}

fn check_group_matrix(g: &Groups<'_>, n: usize) -> Result<()> {
    let m = g.rows;
    if g.matrix.len() != m * n {
        return Err(Error::Data(format!(
            "groups has {} values, expected {m} rows x {n} names",
            g.matrix.len()
        )));
    }
    check_finite("groups", g.matrix, n, "group coefficients")
}

fn check_group_bounds(g: &Groups<'_>, bsz: usize, start: usize, end: usize) -> Result<()> {
    let m = g.rows;
    g.lo.check_len("group_lo", bsz, m)?;
    g.hi.check_len("group_hi", bsz, m)?;
    for i in start..end {
        for r in 0..m {
            let (lo, hi) = (g.lo.get(i, m, r), g.hi.get(i, m, r));
            if lo.is_nan() || hi.is_nan() || lo > hi || lo == f64::INFINITY {
                return Err(Error::Data(format!(
                    "group bounds at instance {i}, group {r} are lo={lo}, hi={hi}: \
                     expected lo <= hi (use -inf/inf for one-sided bounds)"
                )));
            }
            if hi == f64::NEG_INFINITY {
                return Err(Error::Data(format!(
                    "group_hi at instance {i}, group {r} is -inf: no weights satisfy it"
                )));
            }
        }
    }
    Ok(())
}

fn check_turnover(t: &Turnover<'_>, shape: (usize, usize), range: (usize, usize)) -> Result<()> {
    let rule = "previous weights must be finite";
    check_per_name(&t.prev, "prev", shape, range, false, rule)?;
    let rule = "turnover costs must be finite and >= 0";
    check_per_name(&t.cost, "turnover_cost", shape, range, true, rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_any_nan_or_inf() {
        let mut v = vec![0.5; 19];
        assert!(all_finite(&v));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for at in [0, 7, 8, 18] {
                v[at] = bad;
                assert!(!all_finite(&v), "{bad} at {at}");
                v[at] = 0.5;
            }
        }
    }
}
