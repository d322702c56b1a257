//! Core errors -> the Python exception hierarchy defined in `indexlab.errors`, and the panic
//! guard that turns a Rust panic into an exception instead of aborting the interpreter.

use indexlab_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyType;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn exception(py: Python<'_>, class: &str, msg: String) -> PyErr {
    let class = py
        .import("indexlab.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(e) => e,
    }
}

/// One exhaustive mapping from core errors to Python exceptions.
pub fn to_py(py: Python<'_>, err: Error) -> PyErr {
    match err {
        Error::Data(msg) => exception(py, "DataError", msg),
        Error::Infeasible(msg) => exception(py, "InfeasibleError", msg),
        Error::Solver(msg) => exception(py, "SolverError", msg),
        Error::Interrupted => pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"),
    }
}

/// Run core work with the GIL released; a panic becomes `IndexlabError`, never an abort.
pub fn run_detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> indexlab_core::Result<T> + Send,
{
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(work)));
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(to_py(py, err)),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(exception(
                py,
                "IndexlabError",
                format!("internal error in the Rust core (a bug, please report it): {what}"),
            ))
        }
    }
}
