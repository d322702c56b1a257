//! Per-instance presolve of the generic conic path, in its own type like Clarabel's
//! `presolver.rs`: [`Presolver::new`] analyses one instance and builds the reduced program,
//! [`Presolver::reduced`] hands it to the solver, [`Presolver::reverse`] maps the reduced
//! primal and dual solutions back to the full program.
//!
//! Three passes (see `docs/conventions.md`, Optimisation):
//! 1. a variable `x_j` with both bound rows `x_j <= 0` and `-x_j <= 0` in the nonnegative cone
//!    (one nonzero coefficient, right-hand side exactly 0) is fixed at zero (`w <= mask * cap`
//!    with `mask_j = 0`, plus `w >= 0`);
//! 2. then a zero-cone row left with a single nonzero `a x_k = b` fixes `x_k = b / a` (the
//!    auxiliary residual variables cvxpy creates for `sum_squares(w - bench)` of removed names);
//! 3. then a variable with a positive cost, no quadratic term and only lower bounds left, each
//!    a nonnegative row `a x_j <= b` (`a < 0`) with no other variable left, is fixed at the
//!    largest of them (the auxiliary `t >= |w - prev|` of an L1 turnover term once the name's
//!    weight is fixed: `t = |prev|`);
//! 4. then a zero-cone row `a_t x_t + a_w x_w = b` whose `x_t` appears in no other row and only
//!    on the diagonal of P (the residual variable of `sum_squares` for a kept name) lets
//!    `x_t = (b - a_w x_w) / a_t` be substituted into the objective.
//!
//! Fixed values are substituted into `b`, `q` and the objective offset, their columns removed,
//! and zero-cone or nonnegative rows left without a nonzero dropped when they hold (to 1e-12
//! relative).
//!
//! Duals of removed rows come from stationarity of the full program, `P x + q + A' z = 0`,
//! column by column: a pass-4 row from its eliminated column `t` (which has no other row), a
//! pass-3 column's cost on the bound it sits at, a pass-2 row from its fixed column once every
//! other row of that column is known, a pass-1
//! pair from the reduced cost of its column (put on the upper bound row when nonnegative, else
//! on the lower one, so both stay in the dual cone). Rows dropped as empty get 0, which
//! complementary slackness allows. Where the bounds of a fixed variable are both active the
//! full program's duals are not unique; these are one valid choice.

use super::conic::{Canonical, Cone};
use clarabel::algebra::CscMatrix;

/// A pass-1 column fixed at zero by two bound rows `(row, coefficient)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    col: usize,
    upper: (usize, f64),
    lower: (usize, f64),
}

/// A pass-2 zero-cone row `a x_col = b` that fixed `x_col`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Defining {
    row: usize,
    col: usize,
    a: f64,
}

/// A pass-3 column fixed at its largest lower bound, the nonnegative row `row` (coefficient
/// `a < 0`), where its cost `cost > 0` is the whole of its stationarity condition.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Floor {
    row: usize,
    a: f64,
    cost: f64,
}

/// A pass-4 substitution `x_t = beta - alpha x_w` from the zero-cone row `row`, in which `x_t`
/// has coefficient `a_t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Substitution {
    pub t: usize,
    pub w: usize,
    pub alpha: f64,
    pub beta: f64,
    row: usize,
    a_t: f64,
}

/// The reduction of one instance and what is needed to undo it.
#[derive(Debug, Clone)]
pub struct Presolver {
    reduced: Canonical,
    /// Full columns kept, in reduced order.
    pub kept_cols: Vec<usize>,
    /// Value of every canonical variable fixed by passes 1 to 3 (others: unused).
    pub fixed_value: Vec<f64>,
    /// Pass 4 substitutions, in the order they were made.
    pub substituted: Vec<Substitution>,
    defining: Vec<Defining>,
    floors: Vec<Floor>,
    bounds: Vec<Bounds>,
    /// Reduced row of each full row (`usize::MAX`: removed).
    new_row: Vec<usize>,
}

/// Per row of `A`, over the given columns: how many nonzeros, and the last one `(column, value)`
/// (the only one where the count is 1).
fn row_nonzeros(
    c: &Canonical,
    columns: impl Iterator<Item = usize>,
) -> (Vec<usize>, Vec<(usize, f64)>) {
    let m = c.a.m;
    let (mut count, mut last) = (vec![0usize; m], vec![(0usize, 0.0f64); m]);
    for j in columns {
        for k in c.a.colptr[j]..c.a.colptr[j + 1] {
            let v = c.a.nzval[k];
            if v != 0.0 {
                let r = c.a.rowval[k];
                count[r] += 1;
                last[r] = (j, v);
            }
        }
    }
    (count, last)
}

impl Presolver {
    /// Analyse one instance and build its reduced program (see the module docs). `None` when
    /// nothing is removed, when nothing would remain, or when an emptied row would be violated
    /// (the unreduced problem then reports the infeasibility).
    pub fn new(c: &Canonical) -> Option<Self> {
        let (n, m) = (c.a.n, c.a.m);
        let n_zero: usize = c
            .cones
            .iter()
            .take_while(|k| matches!(k, Cone::Zero(_)))
            .map(Cone::dim)
            .sum();
        let n_nonneg: usize = c
            .cones
            .iter()
            .skip_while(|k| matches!(k, Cone::Zero(_)))
            .take_while(|k| matches!(k, Cone::Nonneg(_)))
            .map(Cone::dim)
            .sum();
        let n_lin = n_zero + n_nonneg;

        // Pass 1: x_j <= 0 and -x_j <= 0 as singleton nonnegative rows with b = 0 fix x_j = 0.
        let (count, single) = row_nonzeros(c, 0..n);
        let mut upper0 = vec![false; n];
        let mut lower0 = vec![false; n];
        let mut upper_row = vec![(0usize, 0.0f64); n];
        let mut lower_row = vec![(0usize, 0.0f64); n];
        for r in n_zero..n_lin {
            if count[r] == 1 && c.b[r] == 0.0 {
                let (j, v) = single[r];
                if v > 0.0 {
                    if !upper0[j] {
                        upper_row[j] = (r, v);
                    }
                    upper0[j] = true;
                } else {
                    if !lower0[j] {
                        lower_row[j] = (r, v);
                    }
                    lower0[j] = true;
                }
            }
        }
        let mut fixed: Vec<bool> = (0..n).map(|j| upper0[j] && lower0[j]).collect();
        let mut value = vec![0.0; n];

        // Pass 2: zero-cone rows left with one nonzero (a x_k = b) fix x_k = b / a. One pass.
        let (left, single_left) = row_nonzeros(c, (0..n).filter(|&j| !fixed[j]));
        let mut defining_row = vec![false; m];
        let mut defining = Vec::new();
        for r in 0..n_zero {
            if left[r] == 1 {
                let (j, a) = single_left[r];
                if !fixed[j] {
                    fixed[j] = true;
                    value[j] = c.b[r] / a;
                    defining_row[r] = true;
                    defining.push(Defining { row: r, col: j, a });
                }
            }
        }
        // Substitute the fixed values: b -= A[:, fixed] v; q_kept += P[kept, fixed] v;
        // offset += q_fixed' v + 1/2 v' P[fixed, fixed] v (P is the upper triangle).
        let mut b = c.b.clone();
        let mut q = c.q.clone();
        let mut offset = c.offset;
        let mut left = vec![0usize; m];
        for j in 0..n {
            for k in c.a.colptr[j]..c.a.colptr[j + 1] {
                let r = c.a.rowval[k];
                if fixed[j] {
                    b[r] -= c.a.nzval[k] * value[j];
                } else if c.a.nzval[k] != 0.0 {
                    left[r] += 1;
                }
            }
            if fixed[j] {
                offset += c.q[j] * value[j];
            }
            for k in c.p.colptr[j]..c.p.colptr[j + 1] {
                let i = c.p.rowval[k];
                let pij = c.p.nzval[k];
                match (fixed[i], fixed[j]) {
                    (true, true) if i == j => offset += 0.5 * pij * value[j] * value[j],
                    (true, true) => offset += pij * value[i] * value[j],
                    (false, true) => q[i] += pij * value[j],
                    (true, false) => q[j] += pij * value[i],
                    (false, false) => {}
                }
            }
        }

        let mut p_diag = vec![0.0; n];
        let mut p_offdiag = vec![false; n];
        for j in 0..n {
            for k in c.p.colptr[j]..c.p.colptr[j + 1] {
                let i = c.p.rowval[k];
                if i == j {
                    p_diag[j] += c.p.nzval[k];
                } else if c.p.nzval[k] != 0.0 {
                    p_offdiag[i] = true;
                    p_offdiag[j] = true;
                }
            }
        }

        // Pass 3: a column with cost q_j > 0, no P entry and only nonnegative rows a x_j <= b
        // with a < 0 and nothing else left in the row: x_j = max b / a, the rows then empty.
        let mut floors = Vec::new();
        for j in 0..n {
            if fixed[j] || q[j] <= 0.0 || p_diag[j] != 0.0 || p_offdiag[j] {
                continue;
            }
            let entries = c.a.colptr[j]..c.a.colptr[j + 1];
            let lower_only = entries.clone().all(|k| {
                let (r, v) = (c.a.rowval[k], c.a.nzval[k]);
                v == 0.0 || ((n_zero..n_lin).contains(&r) && v < 0.0 && left[r] == 1)
            });
            let mut best: Option<(f64, usize, f64)> = None;
            for k in entries.clone() {
                let (r, v) = (c.a.rowval[k], c.a.nzval[k]);
                if v != 0.0 && best.is_none_or(|(x, _, _)| b[r] / v > x) {
                    best = Some((b[r] / v, r, v));
                }
            }
            let Some((x, row, a)) = best.filter(|_| lower_only) else {
                continue;
            };
            fixed[j] = true;
            value[j] = x;
            offset += q[j] * x;
            for k in entries {
                let r = c.a.rowval[k];
                b[r] -= c.a.nzval[k] * x;
                if c.a.nzval[k] != 0.0 {
                    left[r] -= 1;
                }
            }
            floors.push(Floor { row, a, cost: q[j] });
        }

        // Pass 4: a zero-cone row a_t x_t + a_w x_w = b where x_t has no other nonzero in A and only
        // a diagonal entry in P (cvxpy's residual variable of a sum_squares): substitute
        // x_t = beta - alpha x_w into the objective, then drop x_t and the row.
        let mut keep_row = vec![true; m];
        let mut col_nnz = vec![0usize; n];
        let mut pairs: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_zero];
        for j in 0..n {
            for k in c.a.colptr[j]..c.a.colptr[j + 1] {
                let (r, v) = (c.a.rowval[k], c.a.nzval[k]);
                if v != 0.0 {
                    col_nnz[j] += 1;
                    if !fixed[j] && r < n_zero && left[r] == 2 && !defining_row[r] {
                        pairs[r].push((j, v));
                    }
                }
            }
        }
        let mut eliminated = vec![false; n];
        let mut is_base = vec![false; n];
        let mut diag_add = vec![0.0; n];
        let mut substituted = Vec::new();
        for (r, pair) in pairs.iter().enumerate() {
            if pair.len() != 2 {
                continue;
            }
            for (t_idx, w_idx) in [(0, 1), (1, 0)] {
                let ((t, a_t), (w, a_w)) = (pair[t_idx], pair[w_idx]);
                if col_nnz[t] == 1 && !p_offdiag[t] && !is_base[t] && !eliminated[w] {
                    let alpha = a_w / a_t;
                    let beta = b[r] / a_t;
                    diag_add[w] += p_diag[t] * alpha * alpha;
                    q[w] -= alpha * (p_diag[t] * beta + q[t]);
                    offset += 0.5 * p_diag[t] * beta * beta + q[t] * beta;
                    eliminated[t] = true;
                    is_base[w] = true;
                    keep_row[r] = false;
                    substituted.push(Substitution {
                        t,
                        w,
                        alpha,
                        beta,
                        row: r,
                        a_t,
                    });
                    break;
                }
            }
        }
        let kept_cols: Vec<usize> = (0..n).filter(|&j| !fixed[j] && !eliminated[j]).collect();
        if kept_cols.len() == n || kept_cols.is_empty() {
            return None;
        }

        // Rows with no nonzero left must hold at the fixed values; then they are dropped.
        for r in 0..n_lin {
            if left[r] == 0 {
                let tol = 1e-12 * (1.0 + c.b[r].abs());
                let holds = defining_row[r]
                    || if r < n_zero {
                        b[r].abs() <= tol
                    } else {
                        b[r] >= -tol
                    };
                if !holds {
                    return None;
                }
                keep_row[r] = false;
            }
        }
        let mut new_row = vec![usize::MAX; m];
        let mut next = 0;
        for r in 0..m {
            if keep_row[r] {
                new_row[r] = next;
                next += 1;
            }
        }
        let m_new = next;
        if m_new == 0 {
            return None;
        }
        let mut new_col = vec![usize::MAX; n];
        for (i, &j) in kept_cols.iter().enumerate() {
            new_col[j] = i;
        }

        let mut a_colptr = vec![0usize];
        let mut a_rowval = Vec::new();
        let mut a_nzval = Vec::new();
        let mut p_colptr = vec![0usize];
        let mut p_rowval = Vec::new();
        let mut p_nzval = Vec::new();
        for &j in &kept_cols {
            for k in c.a.colptr[j]..c.a.colptr[j + 1] {
                let r = c.a.rowval[k];
                if keep_row[r] {
                    a_rowval.push(new_row[r]);
                    a_nzval.push(c.a.nzval[k]);
                }
            }
            a_colptr.push(a_rowval.len());
            let mut has_diag = false;
            for k in c.p.colptr[j]..c.p.colptr[j + 1] {
                let i = c.p.rowval[k];
                if !fixed[i] && !eliminated[i] {
                    p_rowval.push(new_col[i]);
                    p_nzval.push(c.p.nzval[k] + if i == j { diag_add[j] } else { 0.0 });
                    has_diag |= i == j;
                }
            }
            if !has_diag && diag_add[j] != 0.0 {
                // Upper triangle, rows sorted: the diagonal is the last entry of its column.
                p_rowval.push(new_col[j]);
                p_nzval.push(diag_add[j]);
            }
            p_colptr.push(p_rowval.len());
        }
        let n_new = kept_cols.len();
        let zero_left = (0..n_zero).filter(|&r| keep_row[r]).count();
        let nonneg_left = (n_zero..n_lin).filter(|&r| keep_row[r]).count();
        let mut cones = Vec::with_capacity(c.cones.len());
        if zero_left > 0 {
            cones.push(Cone::Zero(zero_left));
        }
        if nonneg_left > 0 {
            cones.push(Cone::Nonneg(nonneg_left));
        }
        cones.extend(
            c.cones
                .iter()
                .filter(|k| !matches!(k, Cone::Zero(_) | Cone::Nonneg(_)))
                .cloned(),
        );
        let bounds = (0..n)
            .filter(|&j| upper0[j] && lower0[j])
            .map(|j| Bounds {
                col: j,
                upper: upper_row[j],
                lower: lower_row[j],
            })
            .collect();
        Some(Self {
            reduced: Canonical {
                p: CscMatrix::new(n_new, n_new, p_colptr, p_rowval, p_nzval),
                q: kept_cols.iter().map(|&j| q[j]).collect(),
                a: CscMatrix::new(m_new, n_new, a_colptr, a_rowval, a_nzval),
                b: (0..m).filter(|&r| keep_row[r]).map(|r| b[r]).collect(),
                offset,
                cones,
            },
            kept_cols,
            fixed_value: value,
            substituted,
            defining,
            floors,
            bounds,
            new_row,
        })
    }

    /// The reduced program to hand to the solver.
    pub fn reduced(&self) -> &Canonical {
        &self.reduced
    }

    /// Map a solution of the reduced program back to the full program `full` (the one given to
    /// [`Presolver::new`]): `(x, z)` over all `n` variables and `m` rows.
    pub fn reverse(&self, full: &Canonical, x_red: &[f64], z_red: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (n, m) = (full.a.n, full.a.m);
        let mut x = self.fixed_value.clone();
        for (&j, &v) in self.kept_cols.iter().zip(x_red) {
            x[j] = v;
        }
        for s in &self.substituted {
            x[s.t] = s.beta - s.alpha * x[s.w];
        }
        let mut z = vec![0.0; m];
        for (r, &nr) in self.new_row.iter().enumerate() {
            if nr != usize::MAX {
                z[r] = z_red[nr];
            }
        }
        // Gradient of the objective, P x + q, with P stored as its upper triangle.
        let mut grad = full.q.clone();
        for j in 0..n {
            for k in full.p.colptr[j]..full.p.colptr[j + 1] {
                let (i, v) = (full.p.rowval[k], full.p.nzval[k]);
                grad[i] += v * x[j];
                if i != j {
                    grad[j] += v * x[i];
                }
            }
        }
        // Column j's stationarity residual without rows `skip`: grad_j + sum A_rj z_r.
        let residual = |z: &[f64], j: usize, skip: &[usize]| -> f64 {
            let mut g = grad[j];
            for k in full.a.colptr[j]..full.a.colptr[j + 1] {
                let r = full.a.rowval[k];
                if !skip.contains(&r) {
                    g += full.a.nzval[k] * z[r];
                }
            }
            g
        };
        for s in &self.substituted {
            z[s.row] = -grad[s.t] / s.a_t;
        }
        for f in &self.floors {
            z[f.row] = -f.cost / f.a;
        }
        for d in &self.defining {
            z[d.row] = -residual(&z, d.col, &[d.row]) / d.a;
        }
        for bd in &self.bounds {
            let g = -residual(&z, bd.col, &[bd.upper.0, bd.lower.0]);
            if g >= 0.0 {
                z[bd.upper.0] = g / bd.upper.1;
            } else {
                z[bd.lower.0] = g / bd.lower.1;
            }
        }
        (x, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::conic::solve_canonical;

    /// Stationarity `P x + q + A' z = 0` and, on nonnegative rows, `z >= 0` and
    /// complementary slackness.
    fn assert_kkt(c: &Canonical, x: &[f64], z: &[f64]) {
        let n = c.q.len();
        let mut g = c.q.clone();
        for j in 0..n {
            for k in c.p.colptr[j]..c.p.colptr[j + 1] {
                let i = c.p.rowval[k];
                g[i] += c.p.nzval[k] * x[j];
                if i != j {
                    g[j] += c.p.nzval[k] * x[i];
                }
            }
            for k in c.a.colptr[j]..c.a.colptr[j + 1] {
                g[j] += c.a.nzval[k] * z[c.a.rowval[k]];
            }
        }
        assert!(g.iter().all(|v| v.abs() < 1e-6), "stationarity {g:?}");
        let n_zero: usize = match c.cones.first() {
            Some(Cone::Zero(d)) => *d,
            _ => 0,
        };
        let mut s = c.b.clone();
        for (j, &xj) in x.iter().enumerate().take(n) {
            for k in c.a.colptr[j]..c.a.colptr[j + 1] {
                s[c.a.rowval[k]] -= c.a.nzval[k] * xj;
            }
        }
        for r in n_zero..c.b.len() {
            assert!(
                z[r] >= -1e-7 && (z[r] * s[r]).abs() < 1e-6,
                "row {r}: z {z:?} s {s:?}"
            );
        }
    }

    #[test]
    fn reverse_gives_duals_of_bound_pairs() {
        // min (x0 - 1)^2 + (x1 - 2)^2 s.t. x0 + x1 <= 10, 0 <= x1 <= 0 (bound pair) -> x1 fixed
        // at 0 with reduced cost -4 on its upper bound row: z = 4 there.
        let p = CscMatrix::new(2, 2, vec![0, 1, 2], vec![0, 1], vec![2.0, 2.0]);
        // Rows: 0: x0 + x1 <= 10; 1: x1 <= 0; 2: -x1 <= 0.
        let a = CscMatrix::new(
            3,
            2,
            vec![0, 1, 4],
            vec![0, 0, 1, 2],
            vec![1.0, 1.0, 1.0, -1.0],
        );
        let c = Canonical {
            p,
            q: vec![-2.0, -4.0],
            a,
            b: vec![10.0, 0.0, 0.0],
            offset: 5.0,
            cones: vec![Cone::Nonneg(3)],
        };
        let red = Presolver::new(&c).unwrap();
        assert_eq!(red.kept_cols, vec![0]);
        let r = solve_canonical(red.reduced());
        let (x, z) = red.reverse(&c, &r.x, &r.z);
        assert!((x[0] - 1.0).abs() < 1e-7 && x[1] == 0.0);
        assert!(
            (z[1] - 4.0).abs() < 1e-7 && z[2] == 0.0 && z[0].abs() < 1e-7,
            "{z:?}"
        );
        assert_kkt(&c, &x, &z);
    }

    #[test]
    fn presolve_substitutes_singleton_equalities() {
        // min x0^2 + x1^2 + x2^2 s.t. x0 + x1 + x2 = 1, x1 - x2 = 0 (zero rows), 0 <= x2 <= 0.
        // x2 = 0 (pass 1), then x1 = 0 (pass 2), leaving x0 = 1 from the sum: all fixed.
        // Instead keep x0 free by relaxing the sum: x0 + x1 + x2 >= 1 (nonneg row).
        let p = CscMatrix::new(3, 3, vec![0, 1, 2, 3], vec![0, 1, 2], vec![2.0, 2.0, 2.0]);
        // Rows: 0: x1 - x2 = 0.5 (zero); 1: -(x0 + x1 + x2) <= -1; 2: x2 <= 0; 3: -x2 <= 0.
        let a = CscMatrix::new(
            4,
            3,
            vec![0, 1, 3, 7],
            vec![1, 0, 1, 0, 1, 2, 3],
            vec![-1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0],
        );
        let c = Canonical {
            p,
            q: vec![0.0, 1.0, 0.0],
            a,
            b: vec![0.5, -1.0, 0.0, 0.0],
            offset: 0.25,
            cones: vec![Cone::Zero(1), Cone::Nonneg(3)],
        };
        let red = Presolver::new(&c).unwrap();
        assert_eq!(red.kept_cols, vec![0]);
        assert_eq!(red.fixed_value, vec![0.0, 0.5, 0.0]);
        // Left: min x0^2 + (0.25 + 0.5) + 0.25 s.t. x0 >= 0.5 -> x0 = 0.5, objective 1.25.
        assert_eq!(red.reduced().b, vec![-0.5]);
        let r = solve_canonical(red.reduced());
        let f = solve_canonical(&c);
        assert!((r.objective - 1.25).abs() < 1e-7 && (f.objective - 1.25).abs() < 1e-7);
        let (x, z) = red.reverse(&c, &r.x, &r.z);
        assert!((x[0] - 0.5).abs() < 1e-7 && x[1] == 0.5 && x[2] == 0.0);
        assert_kkt(&c, &x, &z);
    }

    #[test]
    fn presolve_fixes_absolute_value_auxiliaries_at_their_floor() {
        // min x0^2 - x0 + 0.5 t s.t. t >= x1 - 0.3, t >= 0.3 - x1 (t >= |x1 - 0.3|),
        // 0 <= x1 <= 0 (bound pair), x0 <= 10: x1 = 0 (pass 1), then t = 0.3 (pass 3), x0 = 1/2,
        // objective -1/4 + 0.15; the dual of t's active row is its cost 0.5.
        let p = CscMatrix::new(3, 3, vec![0, 1, 1, 1], vec![0], vec![2.0]);
        // Rows: 0: x1 - t <= 0.3; 1: -x1 - t <= -0.3; 2: x1 <= 0; 3: -x1 <= 0; 4: x0 <= 10.
        let a = CscMatrix::new(
            5,
            3,
            vec![0, 1, 5, 7],
            vec![4, 0, 1, 2, 3, 0, 1],
            vec![1.0, 1.0, -1.0, 1.0, -1.0, -1.0, -1.0],
        );
        let c = Canonical {
            p,
            q: vec![-1.0, 0.0, 0.5],
            a,
            b: vec![0.3, -0.3, 0.0, 0.0, 10.0],
            offset: 0.0,
            cones: vec![Cone::Nonneg(5)],
        };
        let red = Presolver::new(&c).unwrap();
        assert_eq!(red.kept_cols, vec![0]);
        assert_eq!(red.fixed_value[1..], [0.0, 0.3]);
        let r = solve_canonical(red.reduced());
        let f = solve_canonical(&c);
        assert!(
            (r.objective - (-0.25 + 0.15)).abs() < 1e-7,
            "{}",
            r.objective
        );
        assert!((f.objective - r.objective).abs() < 1e-7);
        let (x, z) = red.reverse(&c, &r.x, &r.z);
        assert!((x[0] - 0.5).abs() < 1e-7 && x[1] == 0.0 && (x[2] - 0.3).abs() < 1e-15);
        assert!((z[1] - 0.5).abs() < 1e-12 && z[0] == 0.0, "{z:?}");
        assert_kkt(&c, &x, &z);
    }

    #[test]
    fn presolve_substitutes_residual_variables() {
        // min t^2 + x0 s.t. t - 2 x0 = -1 (zero row), x0 >= 0, x0 <= 5: t = 2 x0 - 1 gives
        // min (2 x0 - 1)^2 + x0 -> x0 = 3/8, objective 1/16 + 3/8 = 7/16.
        let p = CscMatrix::new(2, 2, vec![0, 0, 1], vec![1], vec![2.0]);
        let a = CscMatrix::new(
            3,
            2,
            vec![0, 3, 4],
            vec![0, 1, 2, 0],
            vec![-2.0, -1.0, 1.0, 1.0],
        );
        let c = Canonical {
            p,
            q: vec![1.0, 0.0],
            a,
            b: vec![-1.0, 0.0, 5.0],
            offset: 0.0,
            cones: vec![Cone::Zero(1), Cone::Nonneg(2)],
        };
        let red = Presolver::new(&c).unwrap();
        assert_eq!(red.kept_cols, vec![0]);
        assert_eq!(red.substituted.len(), 1);
        assert_eq!(red.reduced().p.nzval, vec![8.0]);
        let t = red.substituted[0];
        let r = solve_canonical(red.reduced());
        assert!((r.objective - 7.0 / 16.0).abs() < 1e-7);
        assert!((r.x[0] - 0.375).abs() < 1e-7);
        assert!(
            (t.beta - t.alpha * r.x[0] + 0.25).abs() < 1e-7,
            "t = 2 x0 - 1 = -1/4"
        );
        let (x, z) = red.reverse(&c, &r.x, &r.z);
        assert!((x[1] + 0.25).abs() < 1e-7);
        assert_kkt(&c, &x, &z);
        // The full problem's duals are unique here: compare with an unreduced solve.
        let f = solve_canonical(&c);
        for (a, b) in z.iter().zip(&f.z) {
            assert!((a - b).abs() < 1e-6, "{z:?} vs {:?}", f.z);
        }
    }
}
