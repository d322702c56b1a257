//! Bindings for the index-rules engine: numpy arrays in a dict -> core slices -> dict of arrays.

use crate::arrays::slice1;
use crate::errors::{run_detached, to_py};
use crate::limits::check_alloc_py;
use indexlab_core::rules::{self, ReviewInput, ReviewParams, VelocityMethod};
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;

fn item<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(key)?
        .ok_or_else(|| PyKeyError::new_err(format!("rules input is missing {key:?}")))
}

fn f64s<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<PyReadonlyArray1<'py, f64>> {
    item(d, key)?.extract()
}

fn i64s(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Vec<i64>> {
    let a: PyReadonlyArray1<'_, i64> = item(d, key)?.extract()?;
    Ok(a.as_array().to_vec())
}

fn bools(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Vec<bool>> {
    let a: PyReadonlyArray1<'_, bool> = item(d, key)?.extract()?;
    Ok(a.as_array().to_vec())
}

/// A rule value of the expected type; anything else (a float for a count, an int past the
/// platform's range) is a `DataError` naming the value, not a bare Overflow/TypeError.
fn get<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    let value = item(d, key)?;
    value
        .extract::<T>()
        .map_err(Into::<PyErr>::into)
        .map_err(|e| {
            let found = value
                .repr()
                .map_or_else(|_| "?".to_string(), |r| r.to_string());
            to_py(
                d.py(),
                indexlab_core::Error::Data(format!("rules value {key} is {found}: {e}")),
            )
        })
}

#[pyfunction]
#[pyo3(signature = (turnover_shares, shares, ff, month, n, method))]
#[allow(clippy::too_many_arguments)]
fn monthly_velocity<'py>(
    py: Python<'py>,
    turnover_shares: PyReadonlyArray1<'py, f64>,
    shares: PyReadonlyArray1<'py, f64>,
    ff: PyReadonlyArray1<'py, f64>,
    month: PyReadonlyArray1<'py, i64>,
    n: usize,
    method: &str,
) -> PyResult<(usize, Bound<'py, PyAny>)> {
    let method = match method {
        "median" => VelocityMethod::MedianTimesDays,
        "sum" => VelocityMethod::Sum,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "velocity method must be 'median' or 'sum', got {other:?}"
            )))
        }
    };
    let ts = slice1(&turnover_shares);
    let (shares, ff) = (slice1(&shares), slice1(&ff));
    let month: Vec<i64> = month.as_array().to_vec();
    let (months, v) = run_detached(py, || {
        rules::monthly_velocity(&ts, &shares, &ff, &month, n, method)
    })?;
    Ok((months, v.into_pyarray(py).into_any()))
}

/// `(ff_mcap, mcap, first_idx)`: HKD market caps forward-filled, first day with a close.
#[pyfunction]
fn market_arrays<'py>(
    py: Python<'py>,
    close: PyReadonlyArray1<'py, f64>,
    shares: PyReadonlyArray1<'py, f64>,
    ff: PyReadonlyArray1<'py, f64>,
    fx: PyReadonlyArray1<'py, f64>,
    n_currencies: usize,
    currency: PyReadonlyArray1<'py, i64>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let (close, shares, ff, fx) = (slice1(&close), slice1(&shares), slice1(&ff), slice1(&fx));
    let currency: Vec<i64> = currency.as_array().to_vec();
    let m = run_detached(py, || {
        rules::market_arrays(&close, &shares, &ff, &fx, n_currencies, &currency)
    })?;
    Ok((
        m.ff_mcap.into_pyarray(py).into_any(),
        m.mcap.into_pyarray(py).into_any(),
        m.first_idx.into_pyarray(py).into_any(),
    ))
}

/// `(R x N)` flattened: the last day with a close on or before each day in `at`.
#[pyfunction]
fn last_trade_at<'py>(
    py: Python<'py>,
    close: PyReadonlyArray1<'py, f64>,
    n: usize,
    at: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let close = slice1(&close);
    let at: Vec<i64> = at.as_array().to_vec();
    let out = run_detached(py, || rules::last_trade_at(&close, n, &at))?;
    Ok(out.into_pyarray(py).into_any())
}

#[pyfunction]
fn run_reviews<'py>(
    py: Python<'py>,
    arrays: &Bound<'py, PyDict>,
    params: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let ff_mcap = f64s(arrays, "ff_mcap")?;
    let mcap = f64s(arrays, "mcap")?;
    let name_cap = f64s(arrays, "name_cap")?;
    let weight_base = f64s(arrays, "weight_base")?;
    let velocity = f64s(arrays, "velocity")?;
    let adt = f64s(arrays, "adt")?;
    let key_arrays: Vec<PyReadonlyArray1<'py, f64>> = get(arrays, "keys")?;
    let ids: Vec<String> = get(arrays, "ids")?;
    let days: Vec<String> = get(arrays, "days")?;
    let (listing_day, first_idx, delisting_idx) = (
        i64s(arrays, "listing_day")?,
        i64s(arrays, "first_idx")?,
        i64s(arrays, "delisting_idx")?,
    );
    let (industry, cutoff_idx, impl_idx) = (
        i64s(arrays, "industry")?,
        i64s(arrays, "cutoff_idx")?,
        i64s(arrays, "impl_idx")?,
    );
    let (cutoff_day, cutoff_month, days_since_trade) = (
        i64s(arrays, "cutoff_day")?,
        i64s(arrays, "cutoff_month")?,
        i64s(arrays, "days_since_trade")?,
    );
    let universe = bools(arrays, "universe")?;
    let entry_universe = bools(arrays, "entry_universe")?;
    let no_data = bools(arrays, "no_data")?;
    let quota_flag = bools(arrays, "quota_flag")?;
    let p = ReviewParams {
        sleeve_sizes: get(params, "sleeve_sizes")?,
        sizes_by_review: get(params, "sizes_by_review")?,
        buffer: get(params, "buffer")?,
        min_listing_days: get(params, "min_listing_days")?,
        velocity_threshold: get(params, "velocity_threshold")?,
        velocity_window: get(params, "velocity_window")?,
        velocity_required: get(params, "velocity_required")?,
        velocity_recent: get(params, "velocity_recent")?,
        incumbent_required: get(params, "incumbent_required")?,
        incumbent_recent: get(params, "incumbent_recent")?,
        min_ff_mcap: get(params, "min_ff_mcap")?,
        min_adt: get(params, "min_adt")?,
        max_suspension_days: get(params, "max_suspension_days")?,
        fast_entry_top: get(params, "fast_entry_top")?,
        fast_entry_days: get(params, "fast_entry_days")?,
        max_per_industry: get(params, "max_per_industry")?,
        quota_min: get(params, "quota_min")?,
        quota_max: get(params, "quota_max")?,
        cap: get(params, "cap")?,
        equal_weight: get(params, "equal_weight")?,
    };
    let n_days: usize = get(params, "n_days")?;
    let n_months: usize = get(params, "n_months")?;
    // `(R x N)` diagnostics: status (1 byte) and rank, vel_pass, vel_avail (8 bytes each).
    let (r_count, n_sec) = (cutoff_idx.len() as u128, ids.len() as u128);
    check_alloc_py(
        py,
        &format!("run_reviews: diagnostics {r_count} reviews x {n_sec} names"),
        &[(r_count * n_sec, 25)],
    )?;
    let (ff_mcap, mcap) = (slice1(&ff_mcap), slice1(&mcap));
    let (name_cap, weight_base) = (slice1(&name_cap), slice1(&weight_base));
    let (velocity, adt) = (slice1(&velocity), slice1(&adt));
    let keys: Vec<Cow<'_, [f64]>> = key_arrays.iter().map(slice1).collect();
    let out = run_detached(py, || {
        let input = ReviewInput {
            n_days,
            n_sec: ids.len(),
            ids: &ids,
            days: &days,
            ff_mcap: &ff_mcap,
            mcap: &mcap,
            listing_day: &listing_day,
            first_idx: &first_idx,
            delisting_idx: &delisting_idx,
            universe: &universe,
            entry_universe: &entry_universe,
            no_data: &no_data,
            industry: &industry,
            quota_flag: &quota_flag,
            name_cap: &name_cap,
            weight_base: &weight_base,
            cutoff_idx: &cutoff_idx,
            impl_idx: &impl_idx,
            cutoff_day: &cutoff_day,
            cutoff_month: &cutoff_month,
            velocity: &velocity,
            n_months,
            days_since_trade: &days_since_trade,
            adt: &adt,
            keys: keys.iter().map(|k| k.as_ref()).collect(),
        };
        rules::run_reviews(&input, &p)
    })?;
    let d = PyDict::new(py);
    d.set_item("event_kind", out.event_kind.into_pyarray(py))?;
    d.set_item("event_review", out.event_review.into_pyarray(py))?;
    d.set_item("event_ref_idx", out.event_ref_idx.into_pyarray(py))?;
    d.set_item("row_event", out.row_event.into_pyarray(py))?;
    d.set_item("row_sec", out.row_sec.into_pyarray(py))?;
    d.set_item("row_weight", out.row_weight.into_pyarray(py))?;
    d.set_item("row_cf", out.row_cf.into_pyarray(py))?;
    d.set_item("row_rank", out.row_rank.into_pyarray(py))?;
    d.set_item("row_reason", out.row_reason.into_pyarray(py))?;
    d.set_item("status", out.status.into_pyarray(py))?;
    d.set_item("rank", out.rank.into_pyarray(py))?;
    d.set_item("vel_pass", out.vel_pass.into_pyarray(py))?;
    d.set_item("vel_avail", out.vel_avail.into_pyarray(py))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(monthly_velocity, m)?)?;
    m.add_function(wrap_pyfunction!(market_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(last_trade_at, m)?)?;
    m.add_function(wrap_pyfunction!(run_reviews, m)?)?;
    Ok(())
}
