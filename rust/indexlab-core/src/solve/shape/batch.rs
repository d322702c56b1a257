//! A batch's flattened parameters `theta` (`B x n_theta`, last entry the constant 1), as one
//! row-major array or as each parameter's own `B x size` array. The second form spares the
//! caller assembling (and the memory traffic of) a batch-sized `theta`: each worker assembles
//! one instance's row at a time in its scratch.

use crate::data_err;
use crate::error::Result;
use rayon::prelude::*;

/// One parameter's values: entries `col..col + size` of every instance's `theta`, row-major
/// `B x size`.
#[derive(Debug, Clone, Copy)]
pub struct ThetaPart<'a> {
    pub col: usize,
    pub size: usize,
    pub values: &'a [f64],
    /// What the values must be, checked as each instance's row is read; `None`: checked by
    /// the caller.
    pub rule: Option<SignRule>,
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

    /// Instance `i`'s row of `n_theta` entries: a slice of the rows, or assembled in `buf`
    /// (see [`ThetaBatch::row_into`]).
    pub fn row<'b>(&'b self, i: usize, n_theta: usize, buf: &'b mut Vec<f64>) -> Result<&'b [f64]> {
        match self {
            ThetaBatch::Rows(theta) => Ok(&theta[i * n_theta..(i + 1) * n_theta]),
            ThetaBatch::Parts { .. } => {
                buf.resize(n_theta, 0.0);
                self.row_into(i, buf)?;
                Ok(buf)
            }
        }
    }

    /// Instance `i`'s row into `out` (`n_theta` entries), each part's values checked
    /// against its rule: a refused value is a data error naming the part's column.
    pub fn row_into(&self, i: usize, out: &mut [f64]) -> Result<()> {
        let n_theta = out.len();
        match self {
            ThetaBatch::Rows(theta) => out.copy_from_slice(&theta[i * n_theta..(i + 1) * n_theta]),
            ThetaBatch::Parts { parts, .. } => {
                // Parts do not overlap ([`ThetaBatch::batch`]): when they cover every entry
                // but the constant, there is nothing else to clear.
                if parts.iter().map(|p| p.size).sum::<usize>() + 1 != n_theta {
                    out.fill(0.0);
                }
                out[n_theta - 1] = 1.0;
                for p in parts {
                    let values = &p.values[i * p.size..(i + 1) * p.size];
                    if p.rule.is_some_and(|rule| !row_admitted(values, rule)) {
                        return data_err!(
                            "parameter at theta column {}: expected finite values{}",
                            p.col,
                            if p.rule == Some(SignRule::default()) {
                                ""
                            } else {
                                " of its sign"
                            }
                        );
                    }
                    out[p.col..p.col + p.size].copy_from_slice(values);
                }
            }
        }
        Ok(())
    }
}

/// What a parameter's values must be besides finite: cvxpy's sign attributes as bits
/// ([`SignRule::NONNEG`], ...), several at once when a parameter carries several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignRule(u8);

impl SignRule {
    pub const NONNEG: u8 = 1;
    pub const POS: u8 = 2;
    pub const NONPOS: u8 = 4;
    pub const NEG: u8 = 8;

    /// The rule of these bits; `None` for bits no attribute has.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits < 16).then_some(Self(bits))
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Whether values between `lo` and `hi` (the smallest and largest of a row) all obey it.
    fn admits(self, lo: f64, hi: f64) -> bool {
        (!self.has(Self::NONNEG) || lo >= 0.0)
            && (!self.has(Self::POS) || lo > 0.0)
            && (!self.has(Self::NONPOS) || hi <= 0.0)
            && (!self.has(Self::NEG) || hi < 0.0)
    }
}

/// Whether every value of `row` is finite and obeys `rule`: one pass keeping the extremes and
/// `Σ 0·v`, which is NaN as soon as one value is infinite or NaN, in [`LANES`] independent
/// lanes (a single running sum would wait on each addition).
pub fn row_admitted(row: &[f64], rule: SignRule) -> bool {
    let (mut lo, mut hi, mut poison) = (
        [f64::INFINITY; LANES],
        [f64::NEG_INFINITY; LANES],
        [0.0; LANES],
    );
    let mut lanes = row.chunks_exact(LANES);
    for chunk in &mut lanes {
        for l in 0..LANES {
            let v = chunk[l];
            lo[l] = if v < lo[l] { v } else { lo[l] };
            hi[l] = if v > hi[l] { v } else { hi[l] };
            poison[l] += 0.0 * v;
        }
    }
    for (l, &v) in lanes.remainder().iter().enumerate() {
        lo[l] = if v < lo[l] { v } else { lo[l] };
        hi[l] = if v > hi[l] { v } else { hi[l] };
        poison[l] += 0.0 * v;
    }
    let lo = lo.iter().fold(f64::INFINITY, |a, &b| a.min(b));
    let hi = hi.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    poison.iter().sum::<f64>() == 0.0 && (row.is_empty() || rule.admits(lo, hi))
}

/// Independent accumulators of [`row_admitted`].
const LANES: usize = 8;

/// Each row of `x` (`n` wide) gathered at `index` into the rows of `out` (`index.len()` wide),
/// in parallel: `out[i][p] = x[i][index[p]]`.
pub fn gather_rows(x: &[f64], n: usize, index: &[usize], out: &mut [f64]) -> Result<()> {
    let (rows, width) = (x.len() / n.max(1), index.len());
    if index.iter().any(|&j| j >= n) || out.len() != rows * width {
        return data_err!(
            "gather: {} values into {} rows of {width}, from rows of {n} (largest index {:?})",
            out.len(),
            rows,
            index.iter().max()
        );
    }
    if width == 0 {
        return Ok(());
    }
    out.par_chunks_mut(width)
        .zip(x.par_chunks(n))
        .for_each(|(o, row)| {
            for (o, &j) in o.iter_mut().zip(index) {
                *o = row[j];
            }
        });
    Ok(())
}
