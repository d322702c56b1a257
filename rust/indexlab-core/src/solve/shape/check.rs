//! Shapes and indices of a [`ShapeSpec`], checked once so that the per-instance code can index
//! without bounds surprises (the risk models and the group matrix are checked where the fast
//! path prepares them).

use super::super::csr::Csr;
use super::ShapeSpec;
use crate::data_err;
use crate::error::Result;

/// A matrix of the spec: its shape, and finite entries (the fast path's arithmetic, gathers
/// included, assumes them).
fn dims(what: &str, m: &Csr, rows: usize, cols: usize) -> Result<()> {
    if m.rows() != rows || m.cols() != cols {
        return data_err!(
            "{what}: expected {rows} x {cols}, found {} x {}",
            m.rows(),
            m.cols()
        );
    }
    m.check_finite(what)
}

fn indices_below(what: &str, idx: &[usize], limit: usize) -> Result<()> {
    if let Some(&bad) = idx.iter().find(|&&j| j >= limit) {
        return data_err!("{what}: index {bad} out of range for {limit}");
    }
    Ok(())
}

fn len(what: &str, found: usize, expected: usize) -> Result<()> {
    if found != expected {
        return data_err!("{what}: expected {expected} values, found {found}");
    }
    Ok(())
}

pub(super) fn spec(s: &ShapeSpec) -> Result<()> {
    let (n, nt, nw) = (s.n, s.n_theta, s.weight_cols.len());
    if nt == 0 {
        return data_err!("n_theta: expected at least the constant entry, found 0");
    }
    // `sum w = 1` needs a weight (the batch loop also relies on rows of nonzero width).
    if nw == 0 {
        return data_err!("weight_cols: expected at least one weight, found none");
    }
    indices_below("weight_cols", &s.weight_cols, n)?;
    dims("lo map", &s.lo.map, s.lo.weight.len(), nt)?;
    indices_below("lo weights", &s.lo.weight, nw)?;
    if let Some(hi) = &s.hi {
        dims("hi map", &hi.map, hi.weight.len(), nt)?;
        indices_below("hi weights", &hi.weight, nw)?;
    }
    dims("c map", &s.c, nw, nt)?;
    if let Some(g) = &s.groups {
        let m = g.lo.rows();
        dims("group lo map", &g.lo, m, nt)?;
        dims("group hi map", &g.hi, m, nt)?;
        len("group lo_inf", g.lo_inf.len(), m)?;
        len("group hi_inf", g.hi_inf.len(), m)?;
    }
    if let Some(t) = &s.turnover {
        let k = t.weights.len();
        indices_below("turnover weights", &t.weights, nw)?;
        indices_below("turnover cols", &t.cols, n)?;
        len("turnover cols", t.cols.len(), k)?;
        len("turnover sigma", t.sigma.len(), k)?;
        len("turnover cost", t.cost.len(), nw)?;
        dims("turnover prev map", &t.prev, k, nt)?;
    }
    let u = s.aux.cols.len();
    indices_below("aux cols", &s.aux.cols, n)?;
    dims("aux from weights", &s.aux.from_weights, u, nw)?;
    dims("aux from theta", &s.aux.from_theta, u, nt)?;
    dims("P", &s.p, n, n)?;
    dims("q map", &s.q_map, n + 1, nt)?;
    if let Some(b) = &s.budget {
        let r = b.m.rows();
        dims("budget M", &b.m, r, nw)?;
        dims("budget m map", &b.m_map, r, nt)?;
        dims("budget map", &b.budget, 1, nt)?;
        if !(b.alpha.is_finite() && b.alpha >= 0.0) {
            return data_err!("budget alpha: expected finite and >= 0, found {}", b.alpha);
        }
        if let Some((var, map)) = &b.var {
            indices_below("budget var", &[*var], n)?;
            if let Some(m) = map {
                dims("budget var map", m, 1, nt)?;
            }
        }
    }
    Ok(())
}
