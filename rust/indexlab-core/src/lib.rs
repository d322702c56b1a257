//! indexlab-core: the pure-Rust engine behind indexlab (no Python in here).
//!
//! Modules follow the user's workflow: weighting and capping, index rules, batch solvers,
//! batch backtests, metrics and search. Everything is plain slices in, plain vectors out, so each
//! stage can be called and tested alone.

pub mod capping;
pub mod error;
pub mod solve;

pub use error::{Error, Result};
