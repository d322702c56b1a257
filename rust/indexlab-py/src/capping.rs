//! Bindings for capped weighting.

use crate::arrays::slice1;
use crate::errors::run_detached;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

type CappingFn = fn(&[f64], f64, Option<&[f64]>) -> indexlab_core::Result<Vec<f64>>;

/// Shared shape of the two capping calls: borrow the arrays, run the core without the GIL.
fn call<'py>(
    py: Python<'py>,
    core: CappingFn,
    market_caps: PyReadonlyArray1<'py, f64>,
    cap: f64,
    caps: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let m = slice1(&market_caps);
    let per_name = caps.as_ref().map(slice1);
    let out = run_detached(py, || core(&m, cap, per_name.as_deref()))?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (market_caps, cap, caps=None))]
fn cap_weights<'py>(
    py: Python<'py>,
    market_caps: PyReadonlyArray1<'py, f64>,
    cap: f64,
    caps: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    call(
        py,
        indexlab_core::capping::cap_weights,
        market_caps,
        cap,
        caps,
    )
}

#[pyfunction]
#[pyo3(signature = (market_caps, cap, caps=None))]
fn capping_factors<'py>(
    py: Python<'py>,
    market_caps: PyReadonlyArray1<'py, f64>,
    cap: f64,
    caps: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    call(
        py,
        indexlab_core::capping::capping_factors,
        market_caps,
        cap,
        caps,
    )
}

/// Test hook: proves a Rust panic surfaces as a Python exception.
#[pyfunction]
fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    run_detached(py, || -> indexlab_core::Result<()> {
        panic!("deliberate test panic")
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cap_weights, m)?)?;
    m.add_function(wrap_pyfunction!(capping_factors, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    Ok(())
}
