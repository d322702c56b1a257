//! Bindings for the batch backtest and the batch metrics.

use crate::arrays::{slice1, slice2};
use crate::errors::run_detached;
use crate::limits::{self, check_alloc_py};
use indexlab_core::backtest::{CostRate, Indices, Prepared, Weights};
use indexlab_core::metrics::{metrics_batch, METRIC_NAMES};
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use std::borrow::Cow;

/// Work per chunk of candidates between two Ctrl-C checks, in values read or written (levels
/// plus weights): a few milliseconds per core. Sized by work, not by time, so the chunks, and
/// with them the error reported when several candidates are bad, do not depend on timing.
const CHUNK_WORK: usize = 1 << 22;

/// A CSR index array as scipy hands it over: int32 (the usual case) or int64, never widened.
#[derive(FromPyObject)]
enum IndexArray<'py> {
    I32(PyReadonlyArray1<'py, i32>),
    I64(PyReadonlyArray1<'py, i64>),
}

enum IndexSlice<'a> {
    I32(Cow<'a, [i32]>),
    I64(Cow<'a, [i64]>),
}

impl IndexArray<'_> {
    fn slice(&self) -> IndexSlice<'_> {
        match self {
            IndexArray::I32(a) => IndexSlice::I32(slice1(a)),
            IndexArray::I64(a) => IndexSlice::I64(slice1(a)),
        }
    }
}

impl IndexSlice<'_> {
    fn indices(&self) -> Indices<'_> {
        match self {
            IndexSlice::I32(s) => Indices::I32(s),
            IndexSlice::I64(s) => Indices::I64(s),
        }
    }
}

type Pair<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>);

/// `weights` is either `dense` (K*R*N values, row-major) or CSR (`indptr`, `indices`, `data`).
#[pyfunction]
#[pyo3(signature = (tr, rebalance, dense, indptr, indices, data, cost_rate, cost_rates, base, allow_short, threads))]
#[allow(clippy::too_many_arguments)]
fn _backtest_batch<'py>(
    py: Python<'py>,
    tr: PyReadonlyArray2<'py, f64>,
    rebalance: PyReadonlyArray1<'py, i64>,
    dense: Option<PyReadonlyArray1<'py, f64>>,
    indptr: Option<IndexArray<'py>>,
    indices: Option<IndexArray<'py>>,
    data: Option<PyReadonlyArray1<'py, f64>>,
    cost_rate: f64,
    cost_rates: Option<PyReadonlyArray1<'py, f64>>,
    base: f64,
    allow_short: bool,
    threads: Option<Bound<'py, PyAny>>,
) -> PyResult<Pair<'py>> {
    let threads = limits::threads(py, threads.as_ref())?;
    let shape = tr.as_array().shape().to_vec();
    let (t, n) = (shape[0], shape[1]);
    // Prepared relative prices: about two `T x N` copies of `tr`.
    let (t128, n128) = (t as u128, n as u128);
    check_alloc_py(
        py,
        &format!("backtest_batch: prepared prices of {t} days x {n} names"),
        &[(2 * t128 * n128, 8)],
    )?;
    let tr_s = slice2(&tr);
    let reb = slice1(&rebalance);
    let rates = cost_rates.as_ref().map(slice1);
    let dense_s = dense.as_ref().map(slice1);
    let (ip, ix, dv) = (
        indptr.as_ref().map(IndexArray::slice),
        indices.as_ref().map(IndexArray::slice),
        data.as_ref().map(slice1),
    );
    let weights = match (&dense_s, &ip, &ix, &dv) {
        (Some(d), None, None, None) => Weights::Dense(d),
        (None, Some(p), Some(i), Some(v)) => Weights::Csr {
            indptr: p.indices(),
            indices: i.indices(),
            data: v,
        },
        _ => {
            return Err(crate::errors::to_py(
                py,
                indexlab_core::Error::Data(
                    "weights: give either dense weights or all of indptr, indices, data".into(),
                ),
            ))
        }
    };
    let cost = match &rates {
        Some(r) => CostRate::PerName(r),
        None => CostRate::Scalar(cost_rate),
    };
    let pool = limits::pool(py, threads)?;
    let prep = run_detached(py, || {
        let prepare = || Prepared::new(&tr_s, t, n, &reb, cost, base, allow_short);
        match &pool {
            Some(p) => p.install(prepare),
            None => prepare(),
        }
    })?;
    let k = prep
        .candidates(&weights)
        .map_err(|e| crate::errors::to_py(py, e))?;
    let r = prep.rebalances();
    check_alloc_py(
        py,
        &format!("backtest_batch: levels {k} x {t} and turnover {k} x {r}"),
        &[
            (k as u128 * t128, 8),
            (k as u128 * r as u128, 8),
            (2 * t128 * n128, 8),
        ],
    )?;
    let mut levels = vec![0.0; k * t];
    advise_huge_pages(&mut levels);
    let mut turnover = vec![0.0; k * r];
    // Values one candidate reads (its weights) and writes (its levels and turnover).
    let weight_values = match &weights {
        Weights::Dense(d) => d.len(),
        Weights::Csr { data, .. } => data.len() + k * r,
    };
    let per_candidate = (t + r + weight_values / k.max(1)).max(1);
    let per_chunk = (CHUNK_WORK / per_candidate).max(1);
    let mut first = 0;
    while first < k {
        let end = first.saturating_add(per_chunk).min(k);
        let lv = &mut levels[first * t..end * t];
        let to = &mut turnover[first * r..end * r];
        run_detached(py, || match &pool {
            Some(p) => p.install(|| prep.run(&weights, first, lv, to)),
            None => prep.run(&weights, first, lv, to),
        })?;
        py.check_signals()?;
        first = end;
    }
    let levels = levels.into_pyarray(py).reshape([k, t])?;
    let turnover = turnover.into_pyarray(py).reshape([k, r])?;
    Ok((levels, turnover))
}

/// Ask Linux to back a large, still untouched output buffer with 2 MB pages: the workers then
/// take one page fault per 2 MB instead of one per 4 KB (~25,000 for 100 MB of levels), which
/// cost about as much as the arithmetic. Only a hint: without transparent huge pages nothing
/// changes.
fn advise_huge_pages(buf: &mut [f64]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let begin = buf.as_mut_ptr() as usize;
        let end = begin + std::mem::size_of_val(buf);
        let (a, b) = (begin.next_multiple_of(HUGE), end / HUGE * HUGE);
        if b > a {
            // SAFETY: [a, b) lies inside `buf`, which this function borrows mutably; the
            // advice changes how its pages are backed, never their contents.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

#[pyfunction]
#[pyo3(signature = (levels, benchmark, rf, periods_per_year))]
fn _metrics<'py>(
    py: Python<'py>,
    levels: PyReadonlyArray2<'py, f64>,
    benchmark: Option<PyReadonlyArray1<'py, f64>>,
    rf: f64,
    periods_per_year: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let shape = levels.as_array().shape().to_vec();
    let (k, t) = (shape[0], shape[1]);
    let lv = slice2(&levels);
    let bench = benchmark.as_ref().map(slice1);
    let out = run_detached(py, || {
        metrics_batch(&lv, t, bench.as_deref(), rf, periods_per_year)
    })?;
    out.into_pyarray(py).reshape([k, METRIC_NAMES.len()])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_backtest_batch, m)?)?;
    m.add_function(wrap_pyfunction!(_metrics, m)?)?;
    m.add("METRIC_NAMES", METRIC_NAMES.to_vec())?;
    Ok(())
}
