//! Batch solvers: many parameter instances of one optimisation problem, solved in parallel.
//!
//! `conic` is the generic path: a parameter-affine conic program (cvxpy's DPP canonical form)
//! instantiated per instance and solved with Clarabel, or, when an instance is a small strictly
//! convex QP, exactly by the dense dual active-set method of `dual_active_set`. `fastpath` is
//! the exact pure-Rust active-set solver for capped factor QPs, the shape users hit most.

pub mod conic;
pub mod csr;
mod dual_active_set;
mod exact_qp;
pub mod fastpath;
pub mod presolve;
pub mod shape;

/// Worker threads allowed per available core: enough to oversubscribe on purpose, never so
/// many that starting the pool hangs the machine (`threads=10**6`).
pub const THREADS_PER_CORE: usize = 4;

/// The largest thread count any batch entry point accepts: [`THREADS_PER_CORE`] x the cores
/// this process may use.
pub fn max_threads() -> usize {
    // Read once: on Linux the answer comes from the cgroup's files, several system calls on
    // every call of a one-instance solve otherwise.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .saturating_mul(THREADS_PER_CORE)
}

/// Check a requested thread count against `1..=max_threads()`.
pub fn check_threads(threads: usize) -> crate::Result<usize> {
    let max = max_threads();
    if threads == 0 || threads > max {
        return crate::data_err!(
            "threads: expected an integer from 1 to {max} ({THREADS_PER_CORE} x the {} \
             available cores), found {threads}",
            max / THREADS_PER_CORE
        );
    }
    Ok(threads)
}
