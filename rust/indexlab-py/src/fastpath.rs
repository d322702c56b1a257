//! Binding of the capped-QP fast path. Python normalises shapes; per-instance arguments arrive
//! as 2-D arrays with 1 row (shared by the batch) or `batch` rows.

use crate::arrays::slice2;
use crate::errors::{run_detached, to_py};
use indexlab_core::solve::fastpath::{self, CappedQp, FastBatch, Groups, PerInstance, RiskModel};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// Instances solved between two Ctrl-C checks.
const CHUNK: usize = 4096;

fn per_instance<'a>(rows: usize, data: &'a [f64]) -> PerInstance<'a> {
    if rows == 1 {
        PerInstance::Shared(data)
    } else {
        PerInstance::Rows(data)
    }
}

type Out<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<&'static str>,
    Bound<'py, PyArray1<u32>>,
);

#[pyfunction]
#[pyo3(signature = (scores, bench, loadings, factor_cov, specific_var, gamma, lo, hi, groups, group_lo, group_hi, threads=None))]
#[allow(clippy::too_many_arguments)]
fn capped_qp_batch<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f64>,
    bench: Option<PyReadonlyArray2<'py, f64>>,
    loadings: Option<PyReadonlyArray2<'py, f64>>,
    factor_cov: Option<PyReadonlyArray2<'py, f64>>,
    specific_var: Option<PyReadonlyArray2<'py, f64>>,
    gamma: f64,
    lo: PyReadonlyArray2<'py, f64>,
    hi: PyReadonlyArray2<'py, f64>,
    groups: Option<PyReadonlyArray2<'py, f64>>,
    group_lo: Option<PyReadonlyArray2<'py, f64>>,
    group_hi: Option<PyReadonlyArray2<'py, f64>>,
    threads: Option<usize>,
) -> PyResult<Out<'py>> {
    let pool = match threads {
        Some(t) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| {
                    to_py(
                        py,
                        indexlab_core::Error::Data(format!("threads={t}: cannot start pool: {e}")),
                    )
                })?,
        ),
        None => None,
    };
    let (batch, names) = (scores.shape()[0], scores.shape()[1]);
    let s = slice2(&scores);
    let b = bench.as_ref().map(|a| (a.shape()[0], slice2(a)));
    let f = loadings.as_ref().map(|a| (a.shape()[1], slice2(a)));
    let om = factor_cov.as_ref().map(slice2);
    let d = specific_var.as_ref().map(slice2);
    let (lo_rows, lo_s) = (lo.shape()[0], slice2(&lo));
    let (hi_rows, hi_s) = (hi.shape()[0], slice2(&hi));
    let g = groups.as_ref().map(|a| (a.shape()[0], slice2(a)));
    let glo = group_lo.as_ref().map(|a| (a.shape()[0], slice2(a)));
    let ghi = group_hi.as_ref().map(|a| (a.shape()[0], slice2(a)));

    let risk = match (&f, &om, &d) {
        (Some((k, f)), Some(om), Some(d)) => Some(RiskModel {
            factors: *k,
            loadings: f,
            factor_cov: om,
            specific_var: d,
        }),
        _ => None,
    };
    let grp = match (&g, &glo, &ghi) {
        (Some((m, g)), Some((lr, lo_g)), Some((hr, hi_g))) => Some(Groups {
            rows: *m,
            matrix: g,
            lo: per_instance(*lr, lo_g),
            hi: per_instance(*hr, hi_g),
        }),
        _ => None,
    };
    let problem = CappedQp {
        batch,
        names,
        scores: &s,
        bench: b.as_ref().map(|(r, v)| per_instance(*r, v)),
        risk,
        gamma,
        lo: per_instance(lo_rows, &lo_s),
        hi: per_instance(hi_rows, &hi_s),
        groups: grp,
    };
    // Each chunk writes its weights straight into the output buffer (no per-chunk copies).
    let mut all = FastBatch {
        weights: vec![0.0; batch * names],
        objective: Vec::with_capacity(batch),
        status: Vec::with_capacity(batch),
        iterations: Vec::with_capacity(batch),
    };
    let mut start = 0;
    while start < batch.max(1) {
        let end = (start + CHUNK).min(batch);
        let rows = &mut all.weights[start * names..end * names];
        let part = run_detached(py, || match &pool {
            Some(p) => p.install(|| fastpath::capped_qp_range_into(&problem, start, end, rows)),
            None => fastpath::capped_qp_range_into(&problem, start, end, rows),
        })?;
        all.objective.extend_from_slice(&part.objective);
        all.status.extend_from_slice(&part.status);
        all.iterations.extend_from_slice(&part.iterations);
        py.check_signals()?;
        start = end.max(start + 1);
    }
    let weights = numpy::ndarray::Array2::from_shape_vec((batch, names), all.weights)
        .map_err(|e| to_py(py, indexlab_core::Error::Solver(e.to_string())))?;
    Ok((
        weights.into_pyarray(py),
        all.objective.into_pyarray(py),
        all.status.iter().map(|s| s.as_str()).collect(),
        all.iterations.into_pyarray(py),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(capped_qp_batch, m)?)?;
    Ok(())
}
