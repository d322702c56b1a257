//! Maps of the flattened parameters, evaluated per instance. Most rows of a canonical
//! problem's maps read one parameter entry and the constant (`cap * mask_j`, `-score_j + k_j`),
//! so such maps are stored as a gather, a few loads per row instead of a sparse row's walk.

use super::super::csr::Csr;

/// Row `r` is `coef[r] * theta[col[r]] + konst[r] * theta[last]` (`col[r] == NONE`: no
/// parameter entry), the same value the sparse row gives.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Gather {
    col: Vec<u32>,
    coef: Vec<f64>,
    konst: Vec<f64>,
    last: usize,
    /// `Some(start)` when row `r` reads `theta[start + r]` for every `r` (one parameter's
    /// entries in order, the common case): evaluated as one contiguous, vectorisable pass.
    run: Option<usize>,
}

const NONE: u32 = u32::MAX;

/// A map of `theta`: a gather where every row allows it, else the sparse rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ThetaMap {
    Gather(Gather),
    Sparse(Csr),
}

impl ThetaMap {
    /// From a `rows x n_theta` sparse map whose last column is the constant entry.
    pub fn of(m: &Csr) -> Self {
        if c_too_large(m.cols()) {
            return ThetaMap::Sparse(m.clone());
        }
        let last = m.cols().saturating_sub(1);
        let rows = m.rows();
        let mut g = Gather {
            col: vec![NONE; rows],
            coef: vec![0.0; rows],
            konst: vec![0.0; rows],
            last,
            run: None,
        };
        for r in 0..rows {
            let (idx, val) = m.row(r);
            let (mut params, mut consts) = (0, 0);
            for (&c, &v) in idx.iter().zip(val) {
                if c == last {
                    consts += 1;
                    g.konst[r] = v;
                } else {
                    params += 1;
                    g.col[r] = c as u32;
                    g.coef[r] = v;
                }
            }
            // The gather keeps one sum of two terms: the sparse row's value exactly.
            if params > 1 || consts > 1 {
                return ThetaMap::Sparse(m.clone());
            }
        }
        g.run = contiguous_run(&g.col);
        ThetaMap::Gather(g)
    }

    /// Row `r` at `theta`.
    #[inline(always)]
    pub fn at(&self, r: usize, theta: &[f64]) -> f64 {
        match self {
            ThetaMap::Gather(g) => {
                let k = g.konst[r] * theta[g.last];
                match g.col[r] {
                    NONE => 0.0 + k,
                    c => g.coef[r] * theta[c as usize] + k,
                }
            }
            ThetaMap::Sparse(m) => m.row_dot(r, theta),
        }
    }

    /// `f(r, value)` for every row `r` in order, each value the one [`ThetaMap::at`] gives.
    #[inline]
    pub fn for_each_row(&self, theta: &[f64], mut f: impl FnMut(usize, f64)) {
        match self {
            ThetaMap::Gather(g) => {
                let one = theta[g.last];
                let rows = g.col.iter().zip(&g.coef).zip(&g.konst);
                for (r, ((&c, &a), &k)) in rows.enumerate() {
                    f(
                        r,
                        match c {
                            NONE => 0.0 + k * one,
                            c => a * theta[c as usize] + k * one,
                        },
                    );
                }
            }
            ThetaMap::Sparse(m) => (0..m.rows()).for_each(|r| f(r, m.row_dot(r, theta))),
        }
    }

    /// Every row at `theta`, into `out`.
    pub fn eval_into(&self, theta: &[f64], out: &mut Vec<f64>) {
        out.clear();
        match self {
            ThetaMap::Gather(
                g @ Gather {
                    run: Some(start), ..
                },
            ) => {
                let one = theta[g.last];
                let entries = &theta[*start..*start + g.col.len()];
                // The general arm's arithmetic, row for row.
                out.extend(
                    g.coef
                        .iter()
                        .zip(&g.konst)
                        .zip(entries)
                        .map(|((&a, &k), &t)| a * t + k * one),
                );
            }
            ThetaMap::Gather(g) => {
                let one = theta[g.last];
                out.extend(
                    g.col
                        .iter()
                        .zip(&g.coef)
                        .zip(&g.konst)
                        .map(|((&c, &a), &k)| match c {
                            NONE => 0.0 + k * one,
                            c => a * theta[c as usize] + k * one,
                        }),
                );
            }
            ThetaMap::Sparse(m) => m.mul_into(theta, out),
        }
    }
}

/// `Some(start)` when `col` is `start, start + 1, ...` with no row lacking a column.
fn contiguous_run(col: &[u32]) -> Option<usize> {
    let start = *col.first()?;
    let in_order = col
        .iter()
        .enumerate()
        .all(|(r, &c)| c != NONE && c as usize == start as usize + r);
    in_order.then_some(start as usize)
}

/// Parameter columns beyond `u32` stay sparse (never in practice).
fn c_too_large(cols: usize) -> bool {
    cols > NONE as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_equals_the_sparse_rows() {
        // theta = [a, b, 1]: rows 2a + 3, 5, -b, 0; then a row with two parameters.
        let rows = Csr::new(
            "m",
            3,
            vec![0, 2, 3, 4, 4],
            vec![2, 0, 2, 1],
            vec![3.0, 2.0, 5.0, -1.0],
        )
        .unwrap();
        let map = ThetaMap::of(&rows);
        assert!(matches!(map, ThetaMap::Gather(_)));
        let theta = [0.7, -1.3, 1.0];
        let (mut got, mut want) = (Vec::new(), Vec::new());
        map.eval_into(&theta, &mut got);
        rows.mul_into(&theta, &mut want);
        assert_eq!(got, want);
        assert_eq!((0..4).map(|r| map.at(r, &theta)).collect::<Vec<_>>(), want);
        let two = Csr::new("m", 3, vec![0, 2], vec![0, 1], vec![1.0, 1.0]).unwrap();
        assert!(matches!(ThetaMap::of(&two), ThetaMap::Sparse(_)));
    }

    fn run_of(map: &ThetaMap) -> Option<usize> {
        match map {
            ThetaMap::Gather(g) => g.run,
            ThetaMap::Sparse(_) => None,
        }
    }

    #[test]
    fn a_run_of_one_parameter_is_read_in_one_pass_with_the_same_values() {
        // theta = [a, b, c, d, 1]: rows -b + 0.5, 3c, -0.25d - 2 read b, c, d in order.
        let theta = [9.0, 0.3, -1.7, 1e-3, 1.0];
        let rows = |idx: Vec<usize>| {
            let data = vec![-1.0, 0.5, 3.0, -0.25, -2.0];
            Csr::new("m", 5, vec![0, 2, 3, 5], idx, data).unwrap()
        };
        let run = rows(vec![1, 4, 2, 3, 4]);
        let map = ThetaMap::of(&run);
        assert_eq!(run_of(&map), Some(1));
        let (mut got, mut want) = (Vec::new(), Vec::new());
        map.eval_into(&theta, &mut got);
        run.mul_into(&theta, &mut want);
        assert_eq!(got, want, "the sparse rows' values, bit for bit");
        assert_eq!((0..3).map(|r| map.at(r, &theta)).collect::<Vec<_>>(), want);
        // Out of order (c, b, d), or a row with no parameter (b, c, constant): the general
        // gather, the same values.
        let out_of_order = rows(vec![2, 4, 1, 3, 4]);
        let no_parameter = Csr::new(
            "m",
            5,
            vec![0, 2, 3, 4],
            vec![1, 4, 2, 4],
            vec![-1.0, 0.5, 3.0, -2.0],
        )
        .unwrap();
        for m in [out_of_order, no_parameter] {
            let map = ThetaMap::of(&m);
            assert!(matches!(map, ThetaMap::Gather(_)));
            assert_eq!(run_of(&map), None);
            map.eval_into(&theta, &mut got);
            m.mul_into(&theta, &mut want);
            assert_eq!(got, want);
        }
    }
}
