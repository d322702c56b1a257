//! A batch's flattened parameters `theta` (`B x n_theta`, last entry the constant 1), as one
//! row-major array or as each parameter's own `B x size` array. The second form spares the
//! caller assembling (and the memory traffic of) a batch-sized `theta`: each worker assembles
//! one instance's row at a time in its scratch.

use crate::data_err;
use crate::error::Result;

/// One parameter's values: entries `col..col + size` of every instance's `theta`, row-major
/// `B x size`.
#[derive(Debug, Clone, Copy)]
pub struct ThetaPart<'a> {
    pub col: usize,
    pub size: usize,
    pub values: &'a [f64],
}

/// The flattened parameters of a batch.
#[derive(Debug, Clone)]
pub enum ThetaBatch<'a> {
    /// `B x n_theta`, row-major.
    Rows(&'a [f64]),
    /// The parameters' arrays; entries no part covers are 0, the last entry is 1.
    Parts {
        batch: usize,
        parts: Vec<ThetaPart<'a>>,
    },
}

impl<'a> ThetaBatch<'a> {
    /// The number of instances, checking the arrays against `n_theta`.
    pub fn batch(&self, n_theta: usize) -> Result<usize> {
        match self {
            ThetaBatch::Rows(theta) => {
                if theta.len() % n_theta != 0 {
                    return data_err!(
                        "theta has {} values, not a whole number of rows of {n_theta} parameters",
                        theta.len()
                    );
                }
                Ok(theta.len() / n_theta)
            }
            ThetaBatch::Parts { batch, parts } => {
                let mut sorted: Vec<&ThetaPart> = parts.iter().collect();
                sorted.sort_by_key(|p| p.col);
                let mut next = 0;
                for p in sorted {
                    if p.col < next || p.col + p.size >= n_theta {
                        return data_err!(
                            "theta part at column {} of size {}: overlaps another or reaches \
                             the constant entry {}",
                            p.col,
                            p.size,
                            n_theta - 1
                        );
                    }
                    if p.values.len() != batch * p.size {
                        return data_err!(
                            "theta part at column {}: expected {batch} x {} values, found {}",
                            p.col,
                            p.size,
                            p.values.len()
                        );
                    }
                    next = p.col + p.size;
                }
                Ok(*batch)
            }
        }
    }

    /// Instance `i`'s row of `n_theta` entries: a slice of the rows, or assembled in `buf`.
    pub fn row<'b>(&'b self, i: usize, n_theta: usize, buf: &'b mut Vec<f64>) -> &'b [f64] {
        match self {
            ThetaBatch::Rows(theta) => &theta[i * n_theta..(i + 1) * n_theta],
            ThetaBatch::Parts { parts, .. } => {
                buf.clear();
                buf.resize(n_theta, 0.0);
                buf[n_theta - 1] = 1.0;
                for p in parts {
                    buf[p.col..p.col + p.size]
                        .copy_from_slice(&p.values[i * p.size..(i + 1) * p.size]);
                }
                buf
            }
        }
    }
}
