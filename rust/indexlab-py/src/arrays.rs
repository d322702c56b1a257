//! numpy <-> Rust conversions: zero-copy views when contiguous, one copy otherwise.

use indexlab_core::Error;
use numpy::{Element, PyReadonlyArray1, PyReadonlyArray2};
use std::borrow::Cow;

/// A 1-D array as a slice, borrowing when the array is contiguous.
pub fn slice1<'a, T: Element + Copy>(a: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// A 2-D array as a row-major slice, borrowing when the array is C-contiguous.
pub fn slice2<'a, T: Element + Copy>(a: &'a PyReadonlyArray2<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// Indices from an `int64` array, refusing negative ones (`what` names the argument).
pub fn indices(what: &str, a: &PyReadonlyArray1<'_, i64>) -> Result<Vec<usize>, Error> {
    a.as_array()
        .iter()
        .map(|&v| {
            usize::try_from(v).map_err(|_| Error::Data(format!("{what}: negative index {v}")))
        })
        .collect()
}

/// A 1-D array's values, copied.
pub fn values<T: Element + Copy>(a: &PyReadonlyArray1<'_, T>) -> Vec<T> {
    a.as_array().iter().copied().collect()
}
