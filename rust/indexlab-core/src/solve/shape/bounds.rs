//! One side (lower or upper) of the weights' one-weight bound rows in evaluation form. A row
//! that reads no parameter (`w >= 0`, a liquidity cap `w <= 0.2 adv / aum`) has the same value
//! in every instance: such rows are folded per weight once, when the shape is built, and an
//! instance evaluates only the rows that read its parameters (`w <= cap * mask`). The result
//! is the one a walk over every row gives (the tightest value per weight), bit for bit
//! ([`Csr::constant_row`]).

use super::super::csr::Csr;
use super::theta::ThetaMap;
use super::BoundRows;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct BoundSide {
    /// Per weight, the tightest row that reads no parameter (`-inf` for a lower side, `inf`
    /// for an upper one, where a weight has none).
    folded: Vec<f64>,
    /// The rows that read a parameter, and the weight each bounds.
    rows: ThetaMap,
    weight: Vec<usize>,
    upper: bool,
    /// Row `j` bounds weight `j`, one row per weight (a cap on every weight): evaluated as
    /// one pass over the weights.
    one_per_weight: bool,
}

impl BoundSide {
    /// From checked bound rows over `weights` weights (`upper`: the rows are upper bounds).
    pub fn of(b: &BoundRows, weights: usize, upper: bool) -> Result<Self> {
        let none = if upper {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        let mut folded = vec![none; weights];
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        let mut weight = Vec::new();
        for (r, &j) in b.weight.iter().enumerate() {
            if let Some(v) = b.map.constant_row(r) {
                folded[j] = tighter(folded[j], v, upper);
            } else {
                let (idx, val) = b.map.row(r);
                indices.extend_from_slice(idx);
                data.extend_from_slice(val);
                indptr.push(indices.len());
                weight.push(j);
            }
        }
        let rows = Csr::new("parametric bound rows", b.map.cols(), indptr, indices, data)?;
        let one_per_weight =
            weight.len() == weights && weight.iter().enumerate().all(|(r, &j)| r == j);
        Ok(Self {
            folded,
            rows: ThetaMap::of(&rows),
            weight,
            upper,
            one_per_weight,
        })
    }

    /// Each weight's tightest bound at `theta` (whose last entry is 1) into `out`.
    pub fn eval_into(&self, theta: &[f64], out: &mut Vec<f64>) {
        let upper = self.upper;
        if self.one_per_weight {
            self.rows.eval_into(theta, out);
            for (v, &f) in out.iter_mut().zip(&self.folded) {
                *v = tighter(f, *v, upper);
            }
            return;
        }
        out.clear();
        out.extend_from_slice(&self.folded);
        self.rows.for_each_row(theta, |r, v| {
            let j = self.weight[r];
            out[j] = tighter(out[j], v, upper);
        });
    }
}

/// The tighter of two bounds. The values are finite (finite maps of finite parameters) or the
/// side's infinity, so plain comparisons do.
#[inline(always)]
fn tighter(current: f64, v: f64, upper: bool) -> f64 {
    if upper {
        if v < current {
            v
        } else {
            current
        }
    } else if v > current {
        v
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folded side against a walk over every row.
    fn walk(b: &BoundRows, theta: &[f64], weights: usize, upper: bool) -> Vec<f64> {
        let none = if upper {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        let mut out = vec![none; weights];
        for (r, &j) in b.weight.iter().enumerate() {
            let v = b.map.row_dot(r, theta);
            out[j] = if upper { out[j].min(v) } else { out[j].max(v) };
        }
        out
    }

    #[test]
    fn folding_the_constant_rows_changes_no_bound() {
        // theta = [m0, m1, 1]: rows 0.08 m0 (w0), 0.05 (w0), 0.08 m1 (w1), 0.3 (w1), 0.7 (w2),
        // and a row reading two entries, m0 + 0.1 (w2).
        let map = Csr::new(
            "m",
            3,
            vec![0, 1, 2, 3, 4, 5, 7],
            vec![0, 2, 1, 2, 2, 0, 2],
            vec![0.08, 0.05, 0.08, 0.3, 0.7, 1.0, 0.1],
        )
        .unwrap();
        let b = BoundRows {
            map,
            weight: vec![0, 0, 1, 1, 2, 2],
        };
        let side = BoundSide::of(&b, 4, true).unwrap();
        assert_eq!(side.weight, vec![0, 1, 2], "the rows reading a parameter");
        for theta in [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.3, 7.0, 1.0]] {
            let mut got = Vec::new();
            side.eval_into(&theta, &mut got);
            assert_eq!(got, walk(&b, &theta, 4, true));
            assert_eq!(got[3], f64::INFINITY, "no row: unbounded");
        }
        assert!(!side.one_per_weight);
        let lower = BoundSide::of(&b, 4, false).unwrap();
        let mut got = Vec::new();
        lower.eval_into(&[0.5, 0.5, 1.0], &mut got);
        assert_eq!(got, walk(&b, &[0.5, 0.5, 1.0], 4, false));
    }

    #[test]
    fn one_row_per_weight_gives_the_walk_s_bounds() {
        // theta = [m0, m1, m2, 1]: caps 0.08 m_j on every weight, and constant caps 0.05 on w1
        // and 0.3 on w2 folded in; the parametric rows are one per weight, in order.
        let map = Csr::new(
            "m",
            4,
            vec![0, 1, 2, 3, 4, 5],
            vec![0, 1, 3, 2, 3],
            vec![0.08, 0.08, 0.05, 0.08, 0.3],
        )
        .unwrap();
        let b = BoundRows {
            map,
            weight: vec![0, 1, 1, 2, 2],
        };
        let side = BoundSide::of(&b, 3, true).unwrap();
        assert!(side.one_per_weight);
        for theta in [
            [1.0, 1.0, 1.0, 1.0],
            [0.0, 0.5, 7.0, 1.0],
            [2.0, 0.0, 0.0, 1.0],
        ] {
            let mut got = Vec::new();
            side.eval_into(&theta, &mut got);
            assert_eq!(got, walk(&b, &theta, 3, true));
        }
    }
}
