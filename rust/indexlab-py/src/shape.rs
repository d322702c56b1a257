//! Binding of the index shape (`indexlab_core::solve::shape`): Python recognises the shape in
//! cvxpy's canonical data and hands its maps over once; each batch is then one call from the
//! flattened parameters to the canonical points.

use crate::arrays::{indices, slice2, values};
use crate::errors::to_py;
use crate::limits::{self, check_alloc_py};
use indexlab_core::solve::csr::Csr;
use indexlab_core::solve::shape::{
    gather_rows, Auxiliaries, BoundRows, GroupRows, IndexShape as CoreShape, Risk, ShapeStats,
    SignRule, TeBudget, ThetaBatch, ThetaPart, TurnoverRows,
};
use indexlab_core::Error;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// Instances in the first detached call; later calls are sized by the measured time per
/// instance so that Ctrl-C is checked every few tens of milliseconds ([`limits::in_chunks`]).
/// Instances are independent, so the chunking changes no result.
const FIRST_CHUNK: usize = 1;
/// Instances per detached call at most.
const MAX_CHUNK: usize = 4096;

/// A CSR matrix as `(indptr, indices, data, cols)`.
type CsrArg<'py> = (
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, f64>,
    usize,
);
/// `(loadings (W, k), factor_cov (k, k), specific_var (W,))`.
type RiskArg<'py> = (
    PyReadonlyArray2<'py, f64>,
    PyReadonlyArray2<'py, f64>,
    PyReadonlyArray1<'py, f64>,
);
/// `(matrix (m, W), lo map, hi map, lo_inf (m,), hi_inf (m,))`.
type GroupsArg<'py> = (
    PyReadonlyArray2<'py, f64>,
    CsrArg<'py>,
    CsrArg<'py>,
    PyReadonlyArray1<'py, bool>,
    PyReadonlyArray1<'py, bool>,
);
/// `(weights, cols, sigma, cost (W,), prev map)`.
type TurnoverArg<'py> = (
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
    CsrArg<'py>,
);
/// `(M, m map, budget map, risk, alpha, var (-1: none), var map or None)`.
type BudgetArg<'py> = (
    CsrArg<'py>,
    CsrArg<'py>,
    CsrArg<'py>,
    RiskArg<'py>,
    f64,
    i64,
    Option<CsrArg<'py>>,
);

fn csr(what: &str, m: &CsrArg<'_>) -> Result<Csr, Error> {
    let ptr = indices(what, &m.0)?;
    Csr::new(what, m.3, ptr, indices(what, &m.1)?, values(&m.2))
}

fn risk(r: &RiskArg<'_>) -> Risk {
    Risk {
        factors: r.0.shape()[1],
        loadings: slice2(&r.0).into_owned(),
        factor_cov: slice2(&r.1).into_owned(),
        specific_var: values(&r.2),
    }
}

fn groups(g: &GroupsArg<'_>) -> Result<GroupRows, Error> {
    Ok(GroupRows {
        matrix: slice2(&g.0).into_owned(),
        lo: csr("group lo map", &g.1)?,
        hi: csr("group hi map", &g.2)?,
        lo_inf: values(&g.3),
        hi_inf: values(&g.4),
    })
}

fn turnover(t: &TurnoverArg<'_>) -> Result<TurnoverRows, Error> {
    Ok(TurnoverRows {
        weights: indices("turnover weights", &t.0)?,
        cols: indices("turnover cols", &t.1)?,
        sigma: values(&t.2),
        cost: values(&t.3),
        prev: csr("turnover prev map", &t.4)?,
    })
}

fn budget(b: &BudgetArg<'_>) -> Result<TeBudget, Error> {
    let var = match usize::try_from(b.5) {
        Ok(v) => Some((
            v,
            b.6.as_ref().map(|m| csr("budget var map", m)).transpose()?,
        )),
        Err(_) => None,
    };
    Ok(TeBudget {
        m: csr("budget M", &b.0)?,
        m_map: csr("budget m map", &b.1)?,
        budget: csr("budget map", &b.2)?,
        risk: risk(&b.3),
        alpha: b.4,
        var,
    })
}

/// The index shape of a compiled problem, ready to solve batches (see
/// `indexlab_core::solve::shape`). Immutable, so any number of threads may solve with it.
#[pyclass(frozen, module = "indexlab._core")]
struct IndexShape {
    inner: CoreShape,
}

type Solved<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<&'static str>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Option<Bound<'py, PyArray1<f64>>>,
    Vec<Bound<'py, PyArray2<f64>>>,
);

#[pymethods]
impl IndexShape {
    #[new]
    #[pyo3(signature = (
        *, n, n_theta, weight_cols, lo, lo_weight, hi, hi_weight, c, risk, groups, turnover,
        aux_cols, aux_from_weights, aux_from_theta, p, q_map, budget
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        n: usize,
        n_theta: usize,
        weight_cols: PyReadonlyArray1<'_, i64>,
        lo: CsrArg<'_>,
        lo_weight: PyReadonlyArray1<'_, i64>,
        hi: Option<CsrArg<'_>>,
        hi_weight: Option<PyReadonlyArray1<'_, i64>>,
        c: CsrArg<'_>,
        risk: Option<RiskArg<'_>>,
        groups: Option<GroupsArg<'_>>,
        turnover: Option<TurnoverArg<'_>>,
        aux_cols: PyReadonlyArray1<'_, i64>,
        aux_from_weights: CsrArg<'_>,
        aux_from_theta: CsrArg<'_>,
        p: CsrArg<'_>,
        q_map: CsrArg<'_>,
        budget: Option<BudgetArg<'_>>,
    ) -> PyResult<Self> {
        let build = || -> Result<CoreShape, Error> {
            let hi = match (&hi, &hi_weight) {
                (Some(m), Some(w)) => Some(BoundRows {
                    map: csr("hi map", m)?,
                    weight: indices("hi weights", w)?,
                }),
                (None, None) => None,
                _ => {
                    return Err(Error::Data(
                        "hi and hi_weight go together: give both, or neither".into(),
                    ))
                }
            };
            CoreShape::new(indexlab_core::solve::shape::ShapeSpec {
                n,
                n_theta,
                weight_cols: indices("weight_cols", &weight_cols)?,
                lo: BoundRows {
                    map: csr("lo map", &lo)?,
                    weight: indices("lo weights", &lo_weight)?,
                },
                hi,
                c: csr("c map", &c)?,
                risk: risk.as_ref().map(self::risk),
                groups: groups.as_ref().map(self::groups).transpose()?,
                turnover: turnover.as_ref().map(self::turnover).transpose()?,
                aux: Auxiliaries {
                    cols: indices("aux cols", &aux_cols)?,
                    from_weights: csr("aux from weights", &aux_from_weights)?,
                    from_theta: csr("aux from theta", &aux_from_theta)?,
                },
                p: csr("P", &p)?,
                q_map: csr("q map", &q_map)?,
                budget: budget.as_ref().map(self::budget).transpose()?,
            })
        };
        build()
            .map(|inner| Self { inner })
            .map_err(|e| to_py(py, e))
    }

    /// Solve a batch of `batch` instances given as each parameter's `(B, size)` array with
    /// the first column of its entries in `theta` (`parts`: `(col, values)`; entries no part
    /// covers are 0, the last is the constant 1).
    ///
    /// `rules` (one per part: cvxpy's sign attributes as [`SignRule`] bits) has the workers
    /// check every value as they read it (finite, of its sign): a refused value raises
    /// `DataError` naming the instance and the part's column. `theta_out` (writable,
    /// `(B, n_theta)`) receives each instance's row of `theta` as the workers read it.
    /// `gathers` (canonical indices) asks for, per entry, a `(B, len)` array of each
    /// instance's canonical point at those indices, also written by the workers.
    ///
    /// Returns (x (B x n) canonical points, objectives, statuses, iterations, weights held,
    /// smallest feasible tracking-error budget or None without a budget, the gathered
    /// arrays).
    #[pyo3(signature = (parts, batch, threads=None, rules=None, theta_out=None, gathers=None))]
    #[allow(clippy::too_many_arguments)]
    fn solve_batch<'py>(
        &self,
        py: Python<'py>,
        parts: Vec<(usize, PyReadonlyArray2<'py, f64>)>,
        batch: usize,
        threads: Option<Bound<'py, PyAny>>,
        rules: Option<Vec<u8>>,
        mut theta_out: Option<PyReadwriteArray2<'py, f64>>,
        gathers: Option<Vec<PyReadonlyArray1<'py, i64>>>,
    ) -> PyResult<Solved<'py>> {
        let threads = limits::threads(py, threads.as_ref())?;
        let (n, nt) = (self.inner.n(), self.inner.n_theta());
        let gathers = gathers
            .iter()
            .flatten()
            .map(|g| indices("gathers", g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| to_py(py, e))?;
        let width: usize = gathers.iter().map(Vec::len).sum();
        check_alloc_py(
            py,
            &format!("solve_batch: canonical points {batch} x {n}"),
            &[
                (batch as u128 * n as u128, 8),
                (batch as u128 * width as u128, 8),
                (batch as u128, 24),
            ],
        )?;
        let rules = part_rules(py, rules.as_deref(), parts.len())?;
        let arrays: Vec<_> = parts.iter().map(|(_, a)| slice2(a)).collect();
        let theta = ThetaBatch::Parts {
            batch,
            parts: parts
                .iter()
                .zip(&arrays)
                .zip(rules)
                .map(|(((col, a), values), rule)| ThetaPart {
                    col: *col,
                    size: a.shape()[1],
                    values,
                    rule,
                })
                .collect(),
        };
        theta.batch(nt).map_err(|e| to_py(py, e))?;
        let mut theta_rows = match theta_out.as_mut() {
            None => None,
            Some(t) if t.shape() == [batch, nt] => Some(
                t.as_slice_mut()
                    .map_err(|e| to_py(py, Error::Data(format!("theta_out: {e}"))))?,
            ),
            Some(t) => {
                return Err(to_py(
                    py,
                    Error::Data(format!(
                        "theta_out: expected shape ({batch}, {nt}), found {:?}",
                        t.shape()
                    )),
                ))
            }
        };
        let pool = limits::pool(py, threads)?;
        let mut x = limits::zeros(py, pool.as_deref(), batch * n);
        let mut gathered: Vec<Vec<f64>> = gathers
            .iter()
            .map(|g| limits::zeros(py, pool.as_deref(), batch * g.len()))
            .collect();
        let mut all = ShapeStats::default();
        let inner = &self.inner;
        limits::in_chunks(
            py,
            pool.as_deref(),
            batch,
            (FIRST_CHUNK, MAX_CHUNK),
            |start, end| {
                let rows = &mut x[start * n..end * n];
                let kept = theta_rows
                    .as_deref_mut()
                    .map(|t| &mut t[start * nt..end * nt]);
                let stats = inner.solve_range_into(&theta, start, end, rows, kept)?;
                for (index, out) in gathers.iter().zip(gathered.iter_mut()) {
                    let w = index.len();
                    gather_rows(rows, n, index, &mut out[start * w..end * w])?;
                }
                Ok(stats)
            },
            |part| {
                all.objective.extend_from_slice(&part.objective);
                all.status.extend_from_slice(&part.status);
                all.iterations.extend_from_slice(&part.iterations);
                all.held.extend_from_slice(&part.held);
                all.smallest_budget.extend_from_slice(&part.smallest_budget);
            },
        )?;
        let as_array = |rows: Vec<f64>, width: usize| {
            numpy::ndarray::Array2::from_shape_vec((batch, width), rows)
                .map(|a| a.into_pyarray(py))
                .map_err(|e| to_py(py, Error::Solver(e.to_string())))
        };
        let x = as_array(x, n)?;
        let gathered = gathered
            .into_iter()
            .zip(&gathers)
            .map(|(rows, index)| as_array(rows, index.len()))
            .collect::<PyResult<Vec<_>>>()?;
        let smallest = self
            .inner
            .has_budget()
            .then(|| all.smallest_budget.into_pyarray(py));
        Ok((
            x,
            all.objective.into_pyarray(py),
            all.status.iter().map(|s| s.as_str()).collect(),
            all.iterations.into_pyarray(py),
            all.held.into_pyarray(py),
            smallest,
            gathered,
        ))
    }
}

/// Each part's [`SignRule`] from `rules` (one set of bits per part), or no check without.
fn part_rules(
    py: Python<'_>,
    rules: Option<&[u8]>,
    parts: usize,
) -> PyResult<Vec<Option<SignRule>>> {
    let bad = |msg: String| to_py(py, Error::Data(msg));
    match rules {
        None => Ok(vec![None; parts]),
        Some(r) if r.len() != parts => Err(bad(format!(
            "rules: one per part ({parts}), found {}",
            r.len()
        ))),
        Some(r) => r
            .iter()
            .enumerate()
            .map(|(k, &bits)| {
                SignRule::from_bits(bits)
                    .map(Some)
                    .ok_or_else(|| bad(format!("rules[{k}]: {bits} is not a set of sign bits")))
            })
            .collect(),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<IndexShape>()?;
    Ok(())
}
