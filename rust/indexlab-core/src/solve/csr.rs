//! A compressed-sparse-row matrix: the parameter maps of a compiled problem (rows over the
//! flattened parameters `theta`, whose last entry is the constant 1) and its constant matrices
//! (rows over the canonical variables or the weights).

use crate::data_err;
use crate::error::Result;

/// `rows x cols`, CSR. Products sum each row's entries in their stored order, so results are
/// bitwise reproducible whatever the batch or thread an instance is solved in.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<usize>,
    data: Vec<f64>,
}

impl Csr {
    /// Build from CSR arrays with `indptr.len() - 1` rows and `cols` columns; `what` names the
    /// matrix in errors.
    pub fn new(
        what: &str,
        cols: usize,
        indptr: Vec<usize>,
        indices: Vec<usize>,
        data: Vec<f64>,
    ) -> Result<Self> {
        if indptr.first() != Some(&0) {
            return data_err!("{what}: expected a CSR indptr starting at 0, found {indptr:?}");
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) || indptr[indptr.len() - 1] != indices.len() {
            return data_err!(
                "{what}: expected a nondecreasing indptr ending at nnz = {}, found end {}",
                indices.len(),
                indptr[indptr.len() - 1]
            );
        }
        if indices.len() != data.len() {
            return data_err!(
                "{what}: {} column indices but {} values",
                indices.len(),
                data.len()
            );
        }
        if let Some(&bad) = indices.iter().find(|&&c| c >= cols) {
            return data_err!("{what}: column {bad} out of range for {cols} columns");
        }
        Ok(Self {
            cols,
            indptr,
            indices,
            data,
        })
    }

    /// Refuse a NaN or infinite entry (`what` names the matrix).
    pub fn check_finite(&self, what: &str) -> Result<()> {
        match self.data.iter().find(|v| !v.is_finite()) {
            Some(bad) => data_err!("{what}: expected finite values, found {bad}"),
            None => Ok(()),
        }
    }

    /// An empty `0 x cols` matrix.
    pub fn empty(cols: usize) -> Self {
        Self {
            cols,
            indptr: vec![0],
            indices: Vec::new(),
            data: Vec::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r`'s column indices and values.
    #[inline]
    pub fn row(&self, r: usize) -> (&[usize], &[f64]) {
        let (lo, hi) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[lo..hi], &self.data[lo..hi])
    }

    /// Row `r` times `x`.
    #[inline]
    pub fn row_dot(&self, r: usize, x: &[f64]) -> f64 {
        let (idx, val) = self.row(r);
        idx.iter().zip(val).fold(0.0, |s, (&c, &v)| s + v * x[c])
    }

    /// `out = self @ x` (`out` resized to the row count).
    pub fn mul_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend((0..self.rows()).map(|r| self.row_dot(r, x)));
    }

    /// `out += self' @ y` (`out` of length `cols`). Rows where `y` is 0 are skipped: a weight
    /// vector with a few names held costs those names' rows only.
    pub fn add_transpose_mul(&self, y: &[f64], out: &mut [f64]) {
        for (r, &yr) in y.iter().enumerate() {
            if yr == 0.0 {
                continue;
            }
            let (idx, val) = self.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                out[c] += v * yr;
            }
        }
    }

    /// `self'`, its rows' entries in ascending column order.
    pub fn transpose(&self) -> Csr {
        let mut count = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            count[c + 1] += 1;
        }
        for c in 0..self.cols {
            count[c + 1] += count[c];
        }
        let indptr = count.clone();
        let (mut indices, mut data) = (vec![0; self.data.len()], vec![0.0; self.data.len()]);
        for r in 0..self.rows() {
            let (idx, val) = self.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                indices[count[c]] = r;
                data[count[c]] = v;
                count[c] += 1;
            }
        }
        Csr {
            cols: self.rows(),
            indptr,
            indices,
            data,
        }
    }

    /// Whether no row reads any column but `col` (a map of `theta` that only reads its
    /// constant entry is the same for every instance).
    pub fn only_reads(&self, col: usize) -> bool {
        self.indices.iter().all(|&c| c == col)
    }

    /// Row `r`'s value in every instance when, as a map of `theta`, it reads only the constant
    /// entry (the last column, 1): what [`Csr::row_dot`] gives there. `None` when it reads a
    /// parameter.
    pub fn constant_row(&self, r: usize) -> Option<f64> {
        let constant = self.cols.checked_sub(1)?;
        let (idx, val) = self.row(r);
        idx.iter()
            .all(|&c| c == constant)
            .then(|| val.iter().fold(0.0, |s, &v| s + v * 1.0))
    }
}

/// Refuse a `theta` row whose last entry is not the constant 1: maps fold their constant rows
/// ([`Csr::constant_row`]) with that value.
pub fn check_constant_entry(theta: &[f64]) -> Result<()> {
    match theta.last() {
        Some(&1.0) => Ok(()),
        Some(&v) => data_err!("theta: the last entry is the constant 1, found {v}"),
        None => data_err!("theta: the last entry is the constant 1, found no entry"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Csr {
        // [[1, 0, 2], [0, 0, 0], [0, 3, 0]]
        Csr::new("m", 3, vec![0, 2, 2, 3], vec![0, 2, 1], vec![1.0, 2.0, 3.0]).unwrap()
    }

    #[test]
    fn products_by_hand() {
        let m = small();
        let mut out = Vec::new();
        m.mul_into(&[1.0, 10.0, 100.0], &mut out);
        assert_eq!(out, vec![201.0, 0.0, 30.0]);
        let mut t = vec![0.0; 3];
        m.add_transpose_mul(&[1.0, 5.0, 2.0], &mut t);
        assert_eq!(t, vec![1.0, 6.0, 2.0]);
        assert!(!m.only_reads(2));
        let t = m.transpose();
        let mut back = Vec::new();
        t.mul_into(&[1.0, 5.0, 2.0], &mut back);
        assert_eq!(back, vec![1.0, 6.0, 2.0]);
        assert_eq!(t.transpose(), m);
        assert!(Csr::new("c", 3, vec![0, 1], vec![2], vec![4.0])
            .unwrap()
            .only_reads(2));
    }

    #[test]
    fn constant_rows_and_entry() {
        // As maps of theta = [a, b, 1]: row 0 reads a and the constant, row 1 nothing (0 in
        // every instance), row 2 reads b; `k`'s one row only the constant (3).
        let m = small();
        assert_eq!(m.constant_row(0), None);
        assert_eq!(m.constant_row(1), Some(0.0));
        assert_eq!(m.constant_row(2), None);
        let k = Csr::new("k", 3, vec![0, 1], vec![2], vec![3.0]).unwrap();
        assert_eq!(k.constant_row(0), Some(3.0));
        assert!(check_constant_entry(&[0.5, 1.0]).is_ok());
        let msg = |t: &[f64]| check_constant_entry(t).unwrap_err().to_string();
        assert!(msg(&[1.0, 0.5]).contains("found 0.5"));
        assert!(msg(&[]).contains("found no entry"));
    }

    #[test]
    fn refuses_malformed_arrays() {
        let err = |r: Result<Csr>| r.unwrap_err().to_string();
        assert!(err(Csr::new("m", 2, vec![1, 1], vec![0], vec![1.0])).contains("starting at 0"));
        assert!(err(Csr::new("m", 2, vec![0, 2], vec![0], vec![1.0])).contains("nnz = 1"));
        assert!(err(Csr::new("m", 2, vec![0, 1], vec![5], vec![1.0])).contains("column 5"));
        let nan = Csr::new("m", 2, vec![0, 1], vec![0], vec![f64::NAN]).unwrap();
        assert!(nan
            .check_finite("m")
            .unwrap_err()
            .to_string()
            .contains("finite"));
        assert!(err(Csr::new("m", 2, vec![0, 1], vec![0], vec![])).contains("1 column"));
    }
}
