//! numpy <-> Rust conversions: zero-copy views when contiguous, one copy otherwise.

use numpy::PyReadonlyArray1;
use std::borrow::Cow;

/// A 1-D float64 array as a slice, borrowing when the array is contiguous.
pub fn slice1<'a>(a: &'a PyReadonlyArray1<'_, f64>) -> Cow<'a, [f64]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}
