//! indexlab._core: the thin PyO3 layer over indexlab-core.
//!
//! Each function converts numpy arrays to slices, releases the GIL, calls the core inside a
//! panic guard and converts the result back. Logic belongs in the core, not here.

mod arrays;
mod backtest;
mod capping;
mod errors;
mod fastpath;
mod limits;
mod optimise;
mod rules;
mod scipy_blas;
mod shape;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    capping::register(m)?;
    rules::register(m)?;
    backtest::register(m)?;
    optimise::register(m)?;
    fastpath::register(m)?;
    shape::register(m)?;
    limits::register(m)?;
    Ok(())
}
