//! Bindings for the generic batch conic solver (`indexlab.optimise.compile`).

use crate::arrays::{indices, slice2, values};
use crate::errors::{run_detached, to_py};
use crate::limits::{self, check_alloc_py};
use indexlab_core::solve::conic::{AffineMap, Cone, ConicTemplate, Pattern};
use indexlab_core::Error;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Instances in the first detached call; later calls are sized by the measured time per
/// instance so Ctrl-C is checked every few tens of milliseconds ([`limits::in_chunks`]).
/// Instances are independent, so the chunking changes no result.
const FIRST_CHUNK: usize = 1;
/// Instances per detached call at most.
const MAX_CHUNK: usize = 256;

type Csr<'py> = (
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, f64>,
);
type Csc<'py> = (
    usize,
    usize,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
);

fn affine(what: &str, n_theta: usize, m: &Csr<'_>) -> Result<AffineMap, Error> {
    AffineMap::new(
        what,
        n_theta,
        indices(what, &m.0)?,
        indices(what, &m.1)?,
        values(&m.2),
    )
}

fn pattern(what: &str, p: &Csc<'_>) -> Result<Pattern, Error> {
    Ok(Pattern {
        m: p.0,
        n: p.1,
        colptr: indices(what, &p.2)?,
        rowval: indices(what, &p.3)?,
    })
}

/// The parameter-affine conic program of a compiled cvxpy problem (see
/// `indexlab_core::solve::conic`). Immutable, so any number of threads may solve with it.
#[pyclass(frozen, module = "indexlab._core")]
struct ConicProgram {
    inner: ConicTemplate,
}

#[pymethods]
impl ConicProgram {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        n_theta: usize,
        p_pattern: Csc<'_>,
        p_map: Csr<'_>,
        a_pattern: Csc<'_>,
        a_map: Csr<'_>,
        q_map: Csr<'_>,
        cones: Vec<(String, usize, Vec<f64>)>,
    ) -> PyResult<Self> {
        // Every Clarabel solve goes through a program built here: load SciPy's BLAS and LAPACK
        // (which Clarabel's PSD cones call) now rather than at `import indexlab`.
        crate::scipy_blas::load(py)?;
        let build = || -> Result<ConicTemplate, Error> {
            let cones = cones
                .iter()
                .map(
                    |(kind, dim, alpha)| match (kind.as_str(), alpha.as_slice()) {
                        ("zero", []) => Ok(Cone::Zero(*dim)),
                        ("nonneg", []) => Ok(Cone::Nonneg(*dim)),
                        ("soc", []) => Ok(Cone::Soc(*dim)),
                        ("psd", []) => Ok(Cone::Psd(*dim)),
                        ("exp", []) => Ok(Cone::Exp),
                        ("pow", [a]) => Ok(Cone::Pow(*a)),
                        ("genpow", alpha) => Ok(Cone::GenPow(alpha.to_vec(), *dim)),
                        (other, alpha) => Err(Error::Data(format!(
                            "cones: expected (kind, dim, alphas) with kind zero, nonneg, soc, psd \
                         or exp (no alphas), pow (one alpha) or genpow; found {other:?} with \
                         alphas {alpha:?}"
                        ))),
                    },
                )
                .collect::<Result<Vec<_>, _>>()?;
            ConicTemplate::new(
                n_theta,
                pattern("P", &p_pattern)?,
                affine("P", n_theta, &p_map)?,
                pattern("A", &a_pattern)?,
                affine("A", n_theta, &a_map)?,
                affine("q", n_theta, &q_map)?,
                cones,
            )
        };
        build()
            .map(|inner| Self { inner })
            .map_err(|e| to_py(py, e))
    }

    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    #[getter]
    fn m(&self) -> usize {
        self.inner.m()
    }

    #[getter]
    fn n_theta(&self) -> usize {
        self.inner.n_theta()
    }

    /// Solve every row of `thetas` (B x n_theta). Returns (x (B x n), statuses, objectives,
    /// iterations, solve seconds, variables after presolve, z (B x m): Clarabel's duals).
    #[pyo3(signature = (thetas, presolve=true, threads=None))]
    #[allow(clippy::type_complexity)]
    fn solve_batch<'py>(
        &self,
        py: Python<'py>,
        thetas: PyReadonlyArray2<'py, f64>,
        presolve: bool,
        threads: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f64>>,
        Vec<&'static str>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray2<f64>>,
    )> {
        let threads = limits::threads(py, threads.as_ref())?;
        let (b, k) = thetas.as_array().dim();
        let n = self.inner.n();
        let m = self.inner.m();
        // Solutions, duals, a copy of the parameters, and five numbers per instance.
        check_alloc_py(
            py,
            &format!("solve_batch: solutions {b} x {n}"),
            &[
                (b as u128 * n as u128, 8),
                (b as u128 * m as u128, 8),
                (b as u128 * k as u128, 8),
                (b as u128, 48),
            ],
        )?;
        if k != self.inner.n_theta() {
            return Err(to_py(
                py,
                Error::Data(format!(
                    "thetas: expected {} columns, found {k}",
                    self.inner.n_theta()
                )),
            ));
        }
        let flat = slice2(&thetas);
        let pool = limits::pool(py, threads)?;
        let mut x = Vec::with_capacity(b * n);
        let mut z = Vec::with_capacity(b * m);
        let mut status = Vec::with_capacity(b);
        let mut obj = Vec::with_capacity(b);
        let mut iters = Vec::with_capacity(b);
        let mut secs = Vec::with_capacity(b);
        let mut nvar = Vec::with_capacity(b);
        let inner = &self.inner;
        limits::in_chunks(
            py,
            pool.as_deref(),
            b,
            (FIRST_CHUNK, MAX_CHUNK),
            // On the pool `in_chunks` runs the chunk on (a one-instance chunk on this thread).
            |start, end| inner.solve_batch(&flat[start * k..end * k], presolve),
            |rs| {
                for r in rs {
                    x.extend_from_slice(&r.x);
                    z.extend_from_slice(&r.z);
                    status.push(r.status.as_str());
                    obj.push(r.objective);
                    iters.push(i64::from(r.iterations));
                    secs.push(r.solve_seconds);
                    nvar.push(r.n_variables as i64);
                }
            },
        )?;
        let x = numpy::ndarray::Array2::from_shape_vec((b, n), x)
            .map_err(|e| to_py(py, Error::Solver(format!("solution layout: {e}"))))?;
        let z = numpy::ndarray::Array2::from_shape_vec((b, m), z)
            .map_err(|e| to_py(py, Error::Solver(format!("dual layout: {e}"))))?;
        Ok((
            x.into_pyarray(py),
            status,
            obj.into_pyarray(py),
            iters.into_pyarray(py),
            secs.into_pyarray(py),
            nvar.into_pyarray(py),
            z.into_pyarray(py),
        ))
    }

    /// The instance's conic program as CSC arrays (debugging and the golden test).
    fn canonical<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let theta = values(&theta);
        let c = run_detached(py, || self.inner.instantiate(&theta))?;
        let d = PyDict::new(py);
        let as_i64 = |v: &[usize]| v.iter().map(|&u| u as i64).collect::<Vec<i64>>();
        d.set_item("P_colptr", as_i64(&c.p.colptr).into_pyarray(py))?;
        d.set_item("P_rowval", as_i64(&c.p.rowval).into_pyarray(py))?;
        d.set_item("P_nzval", c.p.nzval.clone().into_pyarray(py))?;
        d.set_item("A_colptr", as_i64(&c.a.colptr).into_pyarray(py))?;
        d.set_item("A_rowval", as_i64(&c.a.rowval).into_pyarray(py))?;
        d.set_item("A_nzval", c.a.nzval.clone().into_pyarray(py))?;
        d.set_item("q", c.q.into_pyarray(py))?;
        d.set_item("b", c.b.into_pyarray(py))?;
        d.set_item("offset", c.offset)?;
        d.set_item("shape", (c.a.m, c.a.n))?;
        Ok(d)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ConicProgram>()?;
    Ok(())
}
