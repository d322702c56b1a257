//! The one error type of the core. The binding maps each variant to one Python exception.

use thiserror::Error;

/// Everything the core can refuse or fail at, with a message that says what was expected,
/// what was found and where (column, security, date, candidate, constraint).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Bad input: wrong shape, NaN, negative values, misaligned data.
    #[error("{0}")]
    Data(String),
    /// Constraints that cannot all hold (e.g. `30 names x 3% cap = 90% < 100%`).
    #[error("{0}")]
    Infeasible(String),
    /// A numerical solver failed on an instance it should have solved.
    #[error("{0}")]
    Solver(String),
    /// The caller asked to stop (Ctrl-C) between chunks of work.
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for `Err(Error::Data(format!(...)))`.
#[macro_export]
macro_rules! data_err {
    ($($arg:tt)*) => { Err($crate::error::Error::Data(format!($($arg)*))) };
}
