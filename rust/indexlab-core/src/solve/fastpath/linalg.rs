//! The few dense kernels both active-set methods need: a dot product, an LU with partial
//! pivoting and a Cholesky factorisation, in place, on small row-major matrices.

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

/// `a'b` over the shorter of the two, in four interleaved partial sums: the vectors here are
/// short (factors, names), so one running sum would wait on each addition in turn.
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f64; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for t in 0..4 {
            acc[t] += x[t] * y[t];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Call `f(j, x_j - y_j)` for every `j` where `x` and `y` differ, skipping equal blocks of eight
/// at once (the rows this scans are mostly equal: weights and benchmark off the held names).
pub(crate) fn for_each_difference(x: &[f64], y: &[f64], mut f: impl FnMut(usize, f64)) {
    for (c, (cx, cy)) in x.chunks(8).zip(y.chunks(8)).enumerate() {
        if cx == cy {
            continue;
        }
        for (t, (&a, &b)) in cx.iter().zip(cy).enumerate() {
            if a != b {
                f(8 * c + t, a - b);
            }
        }
    }
}

/// Call `f(j, x_j)` for every nonzero `x_j`, skipping zero blocks of eight at once.
pub(crate) fn for_each_nonzero(x: &[f64], mut f: impl FnMut(usize, f64)) {
    for (c, cx) in x.chunks(8).enumerate() {
        if cx.iter().all(|&v| v == 0.0) {
            continue;
        }
        for (t, &a) in cx.iter().enumerate() {
            if a != 0.0 {
                f(8 * c + t, a);
            }
        }
    }
}

/// Dense LU with partial pivoting of the `n x n` matrix `a`, in place; `false` when a pivot is
/// negligible (the matrix is singular to working precision).
pub(crate) fn lu_factor(a: &mut [f64], n: usize, piv: &mut [usize]) -> bool {
    let amax = a[..n * n].iter().fold(0.0f64, |s, v| s.max(v.abs()));
    let tiny = 1e-14 * amax.max(f64::MIN_POSITIVE);
    for k in 0..n {
        let mut p = k;
        let mut best = a[k * n + k].abs();
        for i in k + 1..n {
            let v = a[i * n + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if best <= tiny {
            return false;
        }
        piv[k] = p;
        if p != k {
            for j in 0..n {
                a.swap(k * n + j, p * n + j);
            }
        }
        let d = a[k * n + k];
        // Rows as slices (row k above row i), so the update runs without bounds checks.
        let (top, bottom) = a[..n * n].split_at_mut((k + 1) * n);
        let rowk = &top[k * n + k + 1..(k + 1) * n];
        for rowi in bottom.chunks_exact_mut(n) {
            let f = rowi[k] / d;
            rowi[k] = f;
            if f != 0.0 {
                for (x, &y) in rowi[k + 1..].iter_mut().zip(rowk) {
                    *x -= f * y;
                }
            }
        }
    }
    true
}

/// Solve `A x = b` in place with the factors of [`lu_factor`].
pub(crate) fn lu_solve(lu: &[f64], n: usize, piv: &[usize], b: &mut [f64]) {
    for k in 0..n {
        b.swap(k, piv[k]);
    }
    for i in 0..n {
        let s = b[i] - dot(&lu[i * n..i * n + i], &b[..i]);
        b[i] = s;
    }
    for i in (0..n).rev() {
        let s = b[i] - dot(&lu[i * n + i + 1..(i + 1) * n], &b[i + 1..n]);
        b[i] = s / lu[i * n + i];
    }
}

/// Cholesky factor `L` (lower triangle, in place) of the symmetric `n x n` matrix `a`, of which
/// only the lower triangle is read; `false` when a pivot is not clearly positive (the matrix
/// is not positive definite to working precision).
pub(crate) fn cholesky_factor(a: &mut [f64], n: usize) -> bool {
    let amax = (0..n).fold(0.0f64, |s, i| s.max(a[i * n + i].abs()));
    let tiny = 1e-14 * amax.max(f64::MIN_POSITIVE);
    for j in 0..n {
        let (done, rest) = a.split_at_mut(j * n);
        let rowj = &mut rest[..=j];
        for i in 0..j {
            let rowi = &done[i * n..=i * n + i];
            let (lij, li) = rowi.split_at(i);
            rowj[i] = (rowj[i] - dot(&rowj[..i], lij)) / li[0];
        }
        let pivot = rowj[j] - dot(&rowj[..j], &rowj[..j]);
        if pivot <= tiny {
            return false;
        }
        rowj[j] = pivot.sqrt();
    }
    true
}

/// `b = L⁻¹ b` in place, `L` the lower-triangular factor of [`cholesky_factor`].
pub(crate) fn forward_sub(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let row = &l[i * n..=i * n + i];
        b[i] = (b[i] - dot(&row[..i], &b[..i])) / row[i];
    }
}

/// `b = L⁻ᵀ b` in place.
pub(crate) fn back_sub(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let bi = b[i] / l[i * n + i];
        b[i] = bi;
        // Column i of L, applied to the rows above as soon as b_i is known.
        for t in 0..i {
            b[t] -= l[i * n + t] * bi;
        }
    }
}

/// Solve `A x = b` in place with the factor of [`cholesky_factor`].
pub(crate) fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    forward_sub(l, n, b);
    back_sub(l, n, b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lu_solves_a_pivoting_system() {
        // [0 2; 3 1] x = [4; 5] has x = (1, 2) and needs a row swap.
        let mut a = [0.0, 2.0, 3.0, 1.0];
        let mut piv = [0; 2];
        assert!(lu_factor(&mut a, 2, &mut piv));
        let mut b = [4.0, 5.0];
        lu_solve(&a, 2, &piv, &mut b);
        assert!(
            (b[0] - 1.0).abs() < 1e-15 && (b[1] - 2.0).abs() < 1e-15,
            "{b:?}"
        );
        let mut singular = [1.0, 2.0, 2.0, 4.0];
        assert!(!lu_factor(&mut singular, 2, &mut piv));
    }

    #[test]
    fn cholesky_solves_a_positive_definite_system() {
        // [4 2; 2 3] x = [8; 7] has x = (1.25, 1.5).
        let mut a = [4.0, 0.0, 2.0, 3.0];
        assert!(cholesky_factor(&mut a, 2));
        let mut b = [8.0, 7.0];
        cholesky_solve(&a, 2, &mut b);
        assert!(
            (b[0] - 1.25).abs() < 1e-15 && (b[1] - 1.5).abs() < 1e-15,
            "{b:?}"
        );
        let mut indefinite = [1.0, 0.0, 2.0, 1.0];
        assert!(!cholesky_factor(&mut indefinite, 2));
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f64> = (0..11).map(|i| i as f64 * 0.5).collect();
        let b: Vec<f64> = (0..11).map(|i| 1.0 - i as f64).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-12);
    }
}
