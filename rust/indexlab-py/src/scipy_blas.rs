//! The BLAS and LAPACK routines Clarabel's PSD cones call, taken from SciPy.
//!
//! Clarabel's `sdp` feature calls the Fortran symbols `dgemm_`, `dsyevr_`, ... through the
//! `blas-sys` and `lapack-sys` crates and leaves it to the final link to provide them. SciPy
//! already ships these routines and publishes them as function pointers in the `__pyx_capi__`
//! tables of `scipy.linalg.cython_blas` and `scipy.linalg.cython_lapack` (the way Clarabel's own
//! Python wheel loads them: `src/python/pyblas` in the clarabel crate). So this extension defines
//! each symbol itself, with the exact `blas-sys`/`lapack-sys` signature (no hidden Fortran
//! string-length arguments), forwarding to the pointer read from SciPy. [`load`] runs when a
//! conic program is built (`ConicProgram::new`, the only way to Clarabel), before any of its
//! solves, so the core stays free of Python and of a BLAS build, and the wheel needs no BLAS
//! of its own.

use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};
use std::ffi::{c_char, c_double, c_float, c_int, c_void};
use std::sync::OnceLock;

fn capsule_pointer(table: &Bound<'_, PyAny>, module: &str, name: &str) -> PyResult<*mut c_void> {
    let item = table.get_item(name).map_err(|e| {
        pyo3::exceptions::PyImportError::new_err(format!(
            "{module}.__pyx_capi__: expected the routine {name:?} (needed for PSD cones), \
             found none: {e}"
        ))
    })?;
    let capsule = item.cast::<PyCapsule>().map_err(|_| {
        pyo3::exceptions::PyImportError::new_err(format!(
            "{module}.__pyx_capi__[{name:?}]: expected a capsule, found {}",
            item.get_type()
        ))
    })?;
    // Cython names each capsule after the C signature; asking with that name reads the pointer.
    let sig = capsule.name()?;
    // SAFETY: the name comes from this capsule and lives as long as it does.
    let sig = sig.map(|n| unsafe { n.as_cstr() });
    Ok(capsule.pointer_checked(sig)?.as_ptr())
}

macro_rules! scipy_routines {
    ($( $module:literal $field:ident => $symbol:ident ( $( $arg:ident : $ty:ty ),* $(,)? ); )*) => {
        /// SciPy's routines, read once, by the first conic program built.
        struct Routines {
            $( $field: unsafe extern "C" fn($( $ty ),*), )*
        }

        static ROUTINES: OnceLock<Routines> = OnceLock::new();

        /// Reads SciPy's BLAS and LAPACK function pointers (once); every conic program's
        /// constructor calls it, so an environment without a usable SciPy fails when a problem
        /// is compiled, not inside a solve.
        pub fn load(py: Python<'_>) -> PyResult<()> {
            if ROUTINES.get().is_some() {
                return Ok(());
            }
            let blas = PyModule::import(py, "scipy.linalg.cython_blas")?.getattr("__pyx_capi__")?;
            let lapack =
                PyModule::import(py, "scipy.linalg.cython_lapack")?.getattr("__pyx_capi__")?;
            let table = |module: &str| if module == "blas" { &blas } else { &lapack };
            let full = |module: &str| format!("scipy.linalg.cython_{module}");
            let routines = Routines {
                $(
                    // SAFETY: the capsule holds SciPy's routine of this name, whose C signature
                    // is the Fortran ABI that `blas-sys`/`lapack-sys` declare for the symbol.
                    $field: unsafe {
                        std::mem::transmute::<*mut c_void, unsafe extern "C" fn($( $ty ),*)>(
                            capsule_pointer(table($module), &full($module), stringify!($field))?,
                        )
                    },
                )*
            };
            let _ = ROUTINES.set(routines);
            Ok(())
        }

        fn routines() -> &'static Routines {
            match ROUTINES.get() {
                Some(r) => r,
                None => {
                    // Unreachable: a program's constructor loads the table before its solves. A panic
                    // cannot unwind out of an `extern "C"` function, so say why and stop.
                    eprintln!("indexlab._core: BLAS/LAPACK called before SciPy's routines were loaded");
                    std::process::abort()
                }
            }
        }

        $(
            /// Forwards to SciPy's routine of the same name.
            ///
            /// # Safety
            /// The Fortran BLAS/LAPACK contract of the routine: every pointer valid for the
            /// sizes the other arguments give.
            #[no_mangle]
            pub unsafe extern "C" fn $symbol($( $arg: $ty ),*) {
                // SAFETY: the caller upholds the routine's contract; the pointer is SciPy's.
                unsafe { (routines().$field)($( $arg ),*) }
            }
        )*
    };
}

scipy_routines! {
    "blas" dgemm => dgemm_(transa: *const c_char, transb: *const c_char, m: *const c_int,
        n: *const c_int, k: *const c_int, alpha: *const c_double, a: *const c_double,
        lda: *const c_int, b: *const c_double, ldb: *const c_int, beta: *const c_double,
        c: *mut c_double, ldc: *const c_int);
    "blas" sgemm => sgemm_(transa: *const c_char, transb: *const c_char, m: *const c_int,
        n: *const c_int, k: *const c_int, alpha: *const c_float, a: *const c_float,
        lda: *const c_int, b: *const c_float, ldb: *const c_int, beta: *const c_float,
        c: *mut c_float, ldc: *const c_int);
    "blas" dgemv => dgemv_(trans: *const c_char, m: *const c_int, n: *const c_int,
        alpha: *const c_double, a: *const c_double, lda: *const c_int, x: *const c_double,
        incx: *const c_int, beta: *const c_double, y: *mut c_double, incy: *const c_int);
    "blas" sgemv => sgemv_(trans: *const c_char, m: *const c_int, n: *const c_int,
        alpha: *const c_float, a: *const c_float, lda: *const c_int, x: *const c_float,
        incx: *const c_int, beta: *const c_float, y: *mut c_float, incy: *const c_int);
    "blas" dsymv => dsymv_(uplo: *const c_char, n: *const c_int, alpha: *const c_double,
        a: *const c_double, lda: *const c_int, x: *const c_double, incx: *const c_int,
        beta: *const c_double, y: *mut c_double, incy: *const c_int);
    "blas" ssymv => ssymv_(uplo: *const c_char, n: *const c_int, alpha: *const c_float,
        a: *const c_float, lda: *const c_int, x: *const c_float, incx: *const c_int,
        beta: *const c_float, y: *mut c_float, incy: *const c_int);
    "blas" dsyrk => dsyrk_(uplo: *const c_char, trans: *const c_char, n: *const c_int,
        k: *const c_int, alpha: *const c_double, a: *const c_double, lda: *const c_int,
        beta: *const c_double, c: *mut c_double, ldc: *const c_int);
    "blas" ssyrk => ssyrk_(uplo: *const c_char, trans: *const c_char, n: *const c_int,
        k: *const c_int, alpha: *const c_float, a: *const c_float, lda: *const c_int,
        beta: *const c_float, c: *mut c_float, ldc: *const c_int);
    "blas" dsyr2k => dsyr2k_(uplo: *const c_char, trans: *const c_char, n: *const c_int,
        k: *const c_int, alpha: *const c_double, a: *const c_double, lda: *const c_int,
        b: *const c_double, ldb: *const c_int, beta: *const c_double, c: *mut c_double,
        ldc: *const c_int);
    "blas" ssyr2k => ssyr2k_(uplo: *const c_char, trans: *const c_char, n: *const c_int,
        k: *const c_int, alpha: *const c_float, a: *const c_float, lda: *const c_int,
        b: *const c_float, ldb: *const c_int, beta: *const c_float, c: *mut c_float,
        ldc: *const c_int);
    "lapack" dsyevr => dsyevr_(jobz: *const c_char, range: *const c_char, uplo: *const c_char,
        n: *const c_int, a: *mut c_double, lda: *const c_int, vl: *const c_double,
        vu: *const c_double, il: *const c_int, iu: *const c_int, abstol: *const c_double,
        m: *mut c_int, w: *mut c_double, z: *mut c_double, ldz: *const c_int,
        isuppz: *mut c_int, work: *mut c_double, lwork: *const c_int, iwork: *mut c_int,
        liwork: *const c_int, info: *mut c_int);
    "lapack" ssyevr => ssyevr_(jobz: *const c_char, range: *const c_char, uplo: *const c_char,
        n: *const c_int, a: *mut c_float, lda: *const c_int, vl: *const c_float,
        vu: *const c_float, il: *const c_int, iu: *const c_int, abstol: *const c_float,
        m: *mut c_int, w: *mut c_float, z: *mut c_float, ldz: *const c_int,
        isuppz: *mut c_int, work: *mut c_float, lwork: *const c_int, iwork: *mut c_int,
        liwork: *const c_int, info: *mut c_int);
    "lapack" dpotrf => dpotrf_(uplo: *const c_char, n: *const c_int, a: *mut c_double,
        lda: *const c_int, info: *mut c_int);
    "lapack" spotrf => spotrf_(uplo: *const c_char, n: *const c_int, a: *mut c_float,
        lda: *const c_int, info: *mut c_int);
    "lapack" dpotrs => dpotrs_(uplo: *const c_char, n: *const c_int, nrhs: *const c_int,
        a: *const c_double, lda: *const c_int, b: *mut c_double, ldb: *const c_int,
        info: *mut c_int);
    "lapack" spotrs => spotrs_(uplo: *const c_char, n: *const c_int, nrhs: *const c_int,
        a: *const c_float, lda: *const c_int, b: *mut c_float, ldb: *const c_int,
        info: *mut c_int);
    "lapack" dgesdd => dgesdd_(jobz: *const c_char, m: *const c_int, n: *const c_int,
        a: *mut c_double, lda: *const c_int, s: *mut c_double, u: *mut c_double,
        ldu: *const c_int, vt: *mut c_double, ldvt: *const c_int, work: *mut c_double,
        lwork: *const c_int, iwork: *mut c_int, info: *mut c_int);
    "lapack" sgesdd => sgesdd_(jobz: *const c_char, m: *const c_int, n: *const c_int,
        a: *mut c_float, lda: *const c_int, s: *mut c_float, u: *mut c_float,
        ldu: *const c_int, vt: *mut c_float, ldvt: *const c_int, work: *mut c_float,
        lwork: *const c_int, iwork: *mut c_int, info: *mut c_int);
    "lapack" dgesvd => dgesvd_(jobu: *const c_char, jobvt: *const c_char, m: *const c_int,
        n: *const c_int, a: *mut c_double, lda: *const c_int, s: *mut c_double,
        u: *mut c_double, ldu: *const c_int, vt: *mut c_double, ldvt: *const c_int,
        work: *mut c_double, lwork: *const c_int, info: *mut c_int);
    "lapack" sgesvd => sgesvd_(jobu: *const c_char, jobvt: *const c_char, m: *const c_int,
        n: *const c_int, a: *mut c_float, lda: *const c_int, s: *mut c_float,
        u: *mut c_float, ldu: *const c_int, vt: *mut c_float, ldvt: *const c_int,
        work: *mut c_float, lwork: *const c_int, info: *mut c_int);
    "lapack" dgesv => dgesv_(n: *const c_int, nrhs: *const c_int, a: *mut c_double,
        lda: *const c_int, ipiv: *mut c_int, b: *mut c_double, ldb: *const c_int,
        info: *mut c_int);
    "lapack" sgesv => sgesv_(n: *const c_int, nrhs: *const c_int, a: *mut c_float,
        lda: *const c_int, ipiv: *mut c_int, b: *mut c_float, ldb: *const c_int,
        info: *mut c_int);
}
