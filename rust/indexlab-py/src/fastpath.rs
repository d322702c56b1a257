//! Binding of the capped-QP fast path. Python normalises shapes; per-instance arguments arrive
//! as 2-D arrays with 1 row (shared by the batch) or `batch` rows.

use crate::arrays::slice2;
use crate::errors::{run_detached, to_py};
use crate::limits::{self, check_alloc_py};
use indexlab_core::solve::fastpath::{
    self, CappedQp, FastBatch, Groups, PerInstance, RiskModel, Turnover,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// Instances per worker in the first chunk; later chunks are sized by the measured time per
/// instance so that Ctrl-C is checked every few tens of milliseconds ([`limits::in_chunks`]).
/// Instances are independent and a chunk's error is its lowest instance's, so timing changes
/// no result.
const FIRST_CHUNK: usize = 1;
/// Instances per chunk at most.
const MAX_CHUNK: usize = 4096;

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
#[pyo3(signature = (scores, bench, loadings, factor_cov, specific_var, gamma, lo, hi, groups, group_lo, group_hi, prev=None, turnover_cost=None, threads=None))]
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
    prev: Option<PyReadonlyArray2<'py, f64>>,
    turnover_cost: Option<PyReadonlyArray2<'py, f64>>,
    threads: Option<Bound<'py, PyAny>>,
) -> PyResult<Out<'py>> {
    if prev.is_some() != turnover_cost.is_some() {
        return Err(to_py(
            py,
            indexlab_core::Error::Data(
                "prev and turnover_cost go together: give both for a turnover term, or neither"
                    .into(),
            ),
        ));
    }
    let threads = limits::threads(py, threads.as_ref())?;
    let (batch, names) = (scores.shape()[0], scores.shape()[1]);
    // Weights plus objective, status and iterations per instance.
    check_alloc_py(
        py,
        &format!("capped_qp_batch: weights {batch} x {names}"),
        &[(batch as u128 * names as u128, 8), (batch as u128, 24)],
    )?;
    let pool = limits::pool(py, threads)?;
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
    let prev_s = prev.as_ref().map(|a| (a.shape()[0], slice2(a)));
    let cost_s = turnover_cost.as_ref().map(|a| (a.shape()[0], slice2(a)));

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
    let turnover = match (&prev_s, &cost_s) {
        (Some((pr, p)), Some((cr, c))) => Some(Turnover {
            prev: per_instance(*pr, p),
            cost: per_instance(*cr, c),
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
        turnover,
    };
    // Shared inputs checked and the risk model factored once for all chunks.
    let prepared = run_detached(py, || match &pool {
        Some(p) => p.install(|| fastpath::PreparedBatch::new(&problem)),
        None => fastpath::PreparedBatch::new(&problem),
    })?;
    // Each chunk writes its weights straight into the output buffer (no per-chunk copies).
    let mut all = FastBatch {
        weights: vec![0.0; batch * names],
        objective: Vec::with_capacity(batch),
        status: Vec::with_capacity(batch),
        iterations: Vec::with_capacity(batch),
    };
    let (objective, status, iterations) =
        (&mut all.objective, &mut all.status, &mut all.iterations);
    let weights = &mut all.weights;
    limits::in_chunks(
        py,
        pool.as_deref(),
        batch,
        (FIRST_CHUNK, MAX_CHUNK),
        |start, end| {
            prepared.solve_range_into(start, end, &mut weights[start * names..end * names])
        },
        |part| {
            objective.extend_from_slice(&part.objective);
            status.extend_from_slice(&part.status);
            iterations.extend_from_slice(&part.iterations);
        },
    )?;
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
