//! Hang Seng-style index rules: eligibility screens, ranking with buffers, fast entry, limits,
//! quotas and capped weighting, run review by review in time order (point in time).
//!
//! The Python layer (`indexlab.rules`) turns a typed rule set and a dataset into the plain arrays
//! of [`ReviewInput`] and [`ReviewParams`]; [`run_reviews`] does the rest.

pub mod prepare;
mod review;
pub mod velocity;

pub use prepare::{last_trade_at, market_arrays, MarketArrays};
pub use review::{run_reviews, EventKind, Reason, ReviewInput, ReviewOutput, ReviewParams, Status};
pub use velocity::{monthly_velocity, VelocityMethod};
