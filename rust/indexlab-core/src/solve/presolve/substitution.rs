//! Pass 4: residual variables of `sum_squares` substituted into the objective.

use super::work::Work;

/// A pass-4 substitution `x_t = beta - alpha x_w` from the zero-cone row `row`, in which `x_t`
/// has coefficient `a_t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Substitution {
    pub t: usize,
    pub w: usize,
    pub alpha: f64,
    pub beta: f64,
    pub(super) row: usize,
    pub(super) a_t: f64,
}

/// A zero-cone row `a_t x_t + a_w x_w = b` where `x_t` has no other nonzero in A and only a
/// diagonal entry in P (cvxpy's residual variable of a `sum_squares`): substitute
/// `x_t = beta - alpha x_w` into the objective, then drop `x_t` and the row. A column that has
/// received a substitution is not itself substituted (its P entry has changed).
pub(super) fn substitute_residuals(w: &mut Work) -> Vec<Substitution> {
    let pairs = two_variable_rows(w);
    let n = w.c.a.n;
    let mut is_base = vec![false; n];
    let mut substituted = Vec::new();
    for (r, pair) in pairs {
        for ((t, a_t), (base, a_w)) in [(pair[0], pair[1]), (pair[1], pair[0])] {
            if w.column(t).count() == 1 && !w.p_offdiag[t] && !is_base[t] && !w.eliminated[base] {
                let s = Substitution {
                    t,
                    w: base,
                    alpha: a_w / a_t,
                    beta: w.b[r] / a_t,
                    row: r,
                    a_t,
                };
                substitute(w, &s);
                is_base[base] = true;
                substituted.push(s);
                break;
            }
        }
    }
    substituted
}

/// The zero-cone rows still kept with exactly two nonzeros left, and those nonzeros
/// `(column, value)` in column order.
fn two_variable_rows(w: &Work) -> Vec<(usize, [(usize, f64); 2])> {
    let n_zero = w.rows.n_zero;
    let mut seen = vec![0u8; n_zero];
    let mut pair = vec![[(0usize, 0.0f64); 2]; n_zero];
    for j in (0..w.c.a.n).filter(|&j| !w.fixed[j]) {
        for (r, v) in w.column(j) {
            if r < n_zero && w.left[r] == 2 && w.keep_row[r] {
                pair[r][usize::from(seen[r])] = (j, v);
                seen[r] += 1;
            }
        }
    }
    (0..n_zero)
        .filter(|&r| seen[r] == 2)
        .map(|r| (r, pair[r]))
        .collect()
}

/// Apply `x_t = beta - alpha x_w`: `1/2 p_t x_t^2 + q_t x_t` becomes
/// `1/2 p_t alpha^2 x_w^2 - alpha (p_t beta + q_t) x_w + 1/2 p_t beta^2 + q_t beta`.
fn substitute(w: &mut Work, s: &Substitution) {
    let p_t = w.p_diag[s.t];
    w.diag_add[s.w] += p_t * s.alpha * s.alpha;
    w.q[s.w] -= s.alpha * (p_t * s.beta + w.q[s.t]);
    w.offset += 0.5 * p_t * s.beta * s.beta + w.q[s.t] * s.beta;
    w.eliminated[s.t] = true;
    w.keep_row[s.row] = false;
}
