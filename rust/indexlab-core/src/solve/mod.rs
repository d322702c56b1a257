//! Batch solvers: many parameter instances of one optimisation problem, solved in parallel.
//!
//! `conic` is the generic path: a parameter-affine conic program (cvxpy's DPP canonical form)
//! instantiated per instance and solved with Clarabel. `fastpath` is the exact pure-Rust
//! active-set solver for capped factor QPs, the shape users hit most.

pub mod conic;
pub mod fastpath;
