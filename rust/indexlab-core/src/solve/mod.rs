//! Batch solvers: many parameter instances of one optimisation problem, solved in parallel.
//!
//! `conic` is the generic path: a parameter-affine conic program (cvxpy's DPP canonical form)
//! instantiated per instance and solved with Clarabel.

pub mod conic;
