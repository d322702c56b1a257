//! The reduced program: kept rows and columns of `A` and `P`, with the substituted `b`, `q` and
//! offset.

use super::super::conic::{Canonical, Cone};
use super::work::Work;
use clarabel::algebra::CscMatrix;

/// The reduced program and the reduced row of each full row (`usize::MAX`: removed); `None`
/// when no row is left.
pub(super) fn reduced_program(w: &Work, kept_cols: &[usize]) -> Option<(Canonical, Vec<usize>)> {
    let new_row = renumber_rows(&w.keep_row);
    let b: Vec<f64> = (0..w.c.a.m)
        .filter(|&r| w.keep_row[r])
        .map(|r| w.b[r])
        .collect();
    if b.is_empty() {
        return None;
    }
    let reduced = Canonical {
        p: reduced_p(w, kept_cols),
        q: kept_cols.iter().map(|&j| w.q[j]).collect(),
        a: reduced_a(w, kept_cols, &new_row, b.len()),
        b,
        offset: w.offset,
        cones: reduced_cones(w),
    };
    Some((reduced, new_row))
}

/// Consecutive numbers for the kept rows, `usize::MAX` for the others.
fn renumber_rows(keep: &[bool]) -> Vec<usize> {
    let mut next = 0;
    keep.iter()
        .map(|&k| {
            if k {
                next += 1;
                next - 1
            } else {
                usize::MAX
            }
        })
        .collect()
}

/// `A[kept rows, kept columns]`, explicit zeros included (the pattern is the template's).
fn reduced_a(w: &Work, kept_cols: &[usize], new_row: &[usize], m_new: usize) -> CscMatrix<f64> {
    let a = &w.c.a;
    let mut colptr = Vec::with_capacity(kept_cols.len() + 1);
    let (mut rowval, mut nzval) = (Vec::new(), Vec::new());
    colptr.push(0);
    for &j in kept_cols {
        for k in a.colptr[j]..a.colptr[j + 1] {
            let r = new_row[a.rowval[k]];
            if r != usize::MAX {
                rowval.push(r);
                nzval.push(a.nzval[k]);
            }
        }
        colptr.push(rowval.len());
    }
    CscMatrix::new(m_new, kept_cols.len(), colptr, rowval, nzval)
}

/// `P[kept, kept]` (upper triangle) plus pass 4's additions to its diagonal.
fn reduced_p(w: &Work, kept_cols: &[usize]) -> CscMatrix<f64> {
    let p = &w.c.p;
    let mut new_col = vec![usize::MAX; p.n];
    for (i, &j) in kept_cols.iter().enumerate() {
        new_col[j] = i;
    }
    let mut colptr = Vec::with_capacity(kept_cols.len() + 1);
    let (mut rowval, mut nzval) = (Vec::new(), Vec::new());
    colptr.push(0);
    for &j in kept_cols {
        let mut has_diag = false;
        for k in p.colptr[j]..p.colptr[j + 1] {
            let i = p.rowval[k];
            if new_col[i] != usize::MAX {
                rowval.push(new_col[i]);
                nzval.push(p.nzval[k] + if i == j { w.diag_add[j] } else { 0.0 });
                has_diag |= i == j;
            }
        }
        if !has_diag && w.diag_add[j] != 0.0 {
            // Upper triangle, rows sorted: the diagonal is the last entry of its column.
            rowval.push(new_col[j]);
            nzval.push(w.diag_add[j]);
        }
        colptr.push(rowval.len());
    }
    let n_new = kept_cols.len();
    CscMatrix::new(n_new, n_new, colptr, rowval, nzval)
}

/// The full program's cones with the zero and nonnegative ones shrunk to the rows kept.
fn reduced_cones(w: &Work) -> Vec<Cone> {
    let kept_in = |rows: std::ops::Range<usize>| rows.filter(|&r| w.keep_row[r]).count();
    let zero_left = kept_in(0..w.rows.n_zero);
    let nonneg_left = kept_in(w.rows.n_zero..w.rows.n_lin);
    let mut cones = Vec::with_capacity(w.c.cones.len());
    if zero_left > 0 {
        cones.push(Cone::Zero(zero_left));
    }
    if nonneg_left > 0 {
        cones.push(Cone::Nonneg(nonneg_left));
    }
    cones.extend(
        w.c.cones
            .iter()
            .filter(|k| !matches!(k, Cone::Zero(_) | Cone::Nonneg(_)))
            .cloned(),
    );
    cones
}
