//! Passes 1 to 3: variables an instance fixes, removed with their value substituted.

use super::work::Work;
use clarabel::algebra::CscMatrix;

/// A pass-1 column fixed at zero by two bound rows `(row, coefficient)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bounds {
    pub col: usize,
    pub upper: (usize, f64),
    pub lower: (usize, f64),
}

/// A pass-2 zero-cone row `a x_col = b` that fixed `x_col`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Defining {
    pub row: usize,
    pub col: usize,
    pub a: f64,
}

/// A pass-3 column fixed at its largest lower bound, the nonnegative row `row` (coefficient
/// `a < 0`), where its cost `cost > 0` is the whole of its stationarity condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Floor {
    pub row: usize,
    pub a: f64,
    pub cost: f64,
}

/// Each row's count of nonzero coefficients in `A` and its last nonzero `(column, value)` (its
/// only one where the count is 1): pass 1's view of which rows bound one variable. It reads
/// `A`'s values only, so a template whose `A` reads no parameter computes it once for all its
/// instances.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSingletons {
    count: Vec<u32>,
    single: Vec<(usize, f64)>,
}

impl RowSingletons {
    pub fn of(a: &CscMatrix<f64>) -> Self {
        let (mut count, mut single) = (vec![0u32; a.m], vec![(0usize, 0.0f64); a.m]);
        for j in 0..a.n {
            for k in a.colptr[j]..a.colptr[j + 1] {
                let v = a.nzval[k];
                if v != 0.0 {
                    count[a.rowval[k]] += 1;
                    single[a.rowval[k]] = (j, v);
                }
            }
        }
        Self { count, single }
    }
}

/// Pass 1: a column with singleton nonnegative rows `a x_j <= 0` of both signs is fixed at 0.
/// The first row of each sign is recorded for the duals. Leaves `left` counted.
pub(super) fn fix_bound_pairs(w: &mut Work, rows: &RowSingletons) -> Vec<Bounds> {
    let n = w.c.a.n;
    // Every column counts here: a row that is a bound before anything is fixed.
    let (count, single) = (&rows.count, &rows.single);
    let (mut upper, mut lower) = (vec![None; n], vec![None; n]);
    for r in w.rows.n_zero..w.rows.n_lin {
        if count[r] == 1 && w.c.b[r] == 0.0 {
            let (j, v) = single[r];
            let side = if v > 0.0 {
                &mut upper[j]
            } else {
                &mut lower[j]
            };
            side.get_or_insert((r, v));
        }
    }
    let pairs: Vec<Bounds> = (0..n)
        .filter_map(|j| {
            Some(Bounds {
                col: j,
                upper: upper[j]?,
                lower: lower[j]?,
            })
        })
        .collect();
    for p in &pairs {
        // Fixed at 0: nothing to substitute into `b`.
        w.fixed[p.col] = true;
    }
    pairs
}

/// Pass 2: a zero-cone row with a single nonzero left, `a x_k = b`, fixes `x_k = b / a`. One
/// pass over the rows as counted after pass 1 (a row emptied here is not looked at again). The
/// defining rows are dropped.
pub(super) fn fix_singleton_equalities(w: &mut Work) -> Vec<Defining> {
    let single = w.count_left();
    let mut defining = Vec::new();
    for (r, &(j, a)) in single.iter().enumerate().take(w.rows.n_zero) {
        if w.left[r] == 1 && !w.fixed[j] {
            w.fixed[j] = true;
            defining.push(Defining { row: r, col: j, a });
        }
    }
    for d in &defining {
        w.fix_in_constraints(d.col, w.c.b[d.row] / d.a);
        w.keep_row[d.row] = false;
    }
    defining
}

/// Pass 3: a column with cost `q_j > 0`, no P entry and only nonnegative rows `a x_j <= b` with
/// `a < 0` and nothing else left in the row is fixed at `x_j = max b / a`; the rows then empty.
/// Needs P's pattern, so runs after [`Work::substitute_fixed_into_objective`].
pub(super) fn fix_floors(w: &mut Work) -> Vec<Floor> {
    let mut floors = Vec::new();
    for j in 0..w.c.a.n {
        if w.fixed[j] || w.q[j] <= 0.0 || w.p_diag[j] != 0.0 || w.p_offdiag[j] {
            continue;
        }
        if let Some((x, row, a)) = floor_of(w, j) {
            w.offset += w.q[j] * x;
            w.fix_in_constraints(j, x);
            floors.push(Floor {
                row,
                a,
                cost: w.q[j],
            });
        }
    }
    floors
}

/// The largest lower bound `(b / a, row, a)` of column `j` if all its rows are lower bounds of
/// it alone; `None` otherwise.
fn floor_of(w: &Work, j: usize) -> Option<(f64, usize, f64)> {
    let mut best: Option<(f64, usize, f64)> = None;
    for (r, v) in w.column(j) {
        if !(w.rows.is_nonneg(r) && v < 0.0 && w.left[r] == 1) {
            return None;
        }
        if best.is_none_or(|(x, _, _)| w.b[r] / v > x) {
            best = Some((w.b[r] / v, r, v));
        }
    }
    best
}
