//! From the weights to the canonical point cvxpy's program would have, and its objective.

use super::instance::Scratch;
use super::IndexShape;

impl IndexShape {
    /// The canonical point of the solved instance: the weights, the auxiliaries they define,
    /// the turnover epigraph variables at their optimum `sigma |w - prev|`, and the budget's
    /// variable at its bound (NaN if no map of it is known).
    pub(super) fn write_canonical(&self, theta: &[f64], s: &mut Scratch, x: &mut [f64]) {
        let sp = &self.spec;
        if !self.writes_every_column {
            x.fill(f64::NAN);
        }
        for (&col, &w) in sp.weight_cols.iter().zip(&s.w) {
            x[col] = w;
        }
        let aux = &sp.aux;
        s.vals.clear();
        s.vals.resize(aux.cols.len(), 0.0);
        self.aux_by_weight.add_transpose_mul(&s.w, &mut s.vals);
        for (u, &col) in aux.cols.iter().enumerate() {
            x[col] = s.vals[u] + self.maps.aux.at(u, theta);
        }
        if let Some(t) = &sp.turnover {
            for ((&j, &col), &sigma) in t.weights.iter().zip(&t.cols).zip(&t.sigma) {
                x[col] = sigma * (s.w[j] - s.prev[j]).abs();
            }
        }
        if let Some((var, map)) = sp.budget.as_ref().and_then(|b| b.var.as_ref()) {
            x[*var] = match (map, &self.maps.var) {
                (Some(_), Some(m)) => m.at(0, theta),
                _ => f64::NAN,
            };
        }
    }

    /// `1/2 x'Px + q'x + offset`, summed over the variables in a fixed order. Only variables
    /// with a term in the objective are read (the budget's variable may have no known value),
    /// and those at 0 add nothing (the point is finite).
    pub(super) fn canonical_objective(&self, theta: &[f64], x: &[f64]) -> f64 {
        let q = &self.maps.q;
        let mut sum = 0.0;
        for &r in &self.objective_vars {
            if x[r] != 0.0 {
                let px = match &self.p_diag {
                    Some(d) => d[r] * x[r],
                    None => self.spec.p.row_dot(r, x),
                };
                sum += x[r] * (0.5 * px + q.at(r, theta));
            }
        }
        sum + q.at(self.spec.n, theta)
    }
}
