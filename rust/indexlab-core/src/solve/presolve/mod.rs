//! Per-instance presolve of the generic conic path, in its own type like Clarabel's
//! `presolver.rs`: [`Presolver::new`] analyses one instance and builds the reduced program,
//! [`Presolver::reduced`] hands it to the solver, [`Presolver::reverse`] maps the reduced
//! primal and dual solutions back to the full program.
//!
//! Five passes (see `docs/conventions.md`, Optimisation), each in the file named after it:
//! 1. a variable `x_j` with both bound rows `x_j <= 0` and `-x_j <= 0` in the nonnegative cone
//!    (one nonzero coefficient, right-hand side exactly 0) is fixed at zero (`w <= mask * cap`
//!    with `mask_j = 0`, plus `w >= 0`) [`fixing`];
//! 2. then a zero-cone row left with a single nonzero `a x_k = b` fixes `x_k = b / a` (the
//!    auxiliary residual variables cvxpy creates for `sum_squares(w - bench)` of removed names)
//!    [`fixing`];
//! 3. then a variable with a positive cost, no quadratic term and only lower bounds left, each
//!    a nonnegative row `a x_j <= b` (`a < 0`) with no other variable left, is fixed at the
//!    largest of them (the auxiliary `t >= |w - prev|` of an L1 turnover term once the name's
//!    weight is fixed: `t = |prev|`) [`fixing`];
//! 4. then a zero-cone row `a_t x_t + a_w x_w = b` whose `x_t` appears in no other row and only
//!    on the diagonal of P (the residual variable of `sum_squares` for a kept name) lets
//!    `x_t = (b - a_w x_w) / a_t` be substituted into the objective [`substitution`];
//! 5. then, on an instance passes 1 to 4 reduce (see [`Presolver::new`] for why only there), a
//!    nonnegative row whose largest value over its variables' bound rows is below its
//!    right-hand side (a sector cap the held names' caps cannot reach, a name's cap looser
//!    than its liquidity cap) is dropped [`redundant`].
//!
//! Fixed values are substituted into `b`, `q` and the objective offset, their columns removed,
//! and zero-cone or nonnegative rows left without a nonzero dropped when they hold (to 1e-12
//! relative).
//!
//! Duals of removed rows come from stationarity of the full program, `P x + q + A' z = 0`,
//! column by column [`reverse`]: a pass-4 row from its eliminated column `t` (which has no other
//! row), a pass-3 column's cost on the bound it sits at, a pass-2 row from its fixed column once
//! every other row of that column is known, a pass-1 pair from the reduced cost of its column
//! (put on the upper bound row when nonnegative, else on the lower one, so both stay in the dual
//! cone). Rows dropped by pass 5 are slack by a margin at every feasible point, so
//! complementary slackness makes their dual 0 in every solution; rows dropped as empty get 0,
//! which it allows. Where the bounds of a fixed variable are both active the full program's
//! duals are not unique; these are one valid choice.

mod build;
mod fixing;
mod redundant;
mod reverse;
mod substitution;
#[cfg(test)]
mod tests;
mod work;

use super::conic::Canonical;
pub use fixing::RowSingletons;
use fixing::{Bounds, Defining, Floor};
pub use substitution::Substitution;
use work::Work;

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

impl Presolver {
    /// Analyse one instance and build its reduced program (see the module docs). `None` when
    /// nothing is removed, when nothing would remain, or when an emptied row would be violated
    /// (the unreduced problem then reports the infeasibility).
    pub fn new(c: &Canonical) -> Option<Self> {
        Self::with_rows(c, &RowSingletons::of(&c.a))
    }

    /// [`Presolver::new`] with `A`'s row singletons already known (`rows` must be those of
    /// `c.a`: a template whose `A` is the same for every instance computes them once).
    pub fn with_rows(c: &Canonical, rows: &RowSingletons) -> Option<Self> {
        let mut w = Work::new(c);
        let bounds = fixing::fix_bound_pairs(&mut w, rows);
        let defining = fixing::fix_singleton_equalities(&mut w);
        w.substitute_fixed_into_objective();
        let floors = fixing::fix_floors(&mut w);
        let substituted = substitution::substitute_residuals(&mut w);
        let kept_cols = w.kept_cols();
        // Pass 5 only on an instance the first four reduce. On a degenerate program the
        // solver's choice among equally optimal duals depends on every row it is given, and cvxpy
        // reports Clarabel's choice on the full program: an instance nothing else reduces is
        // solved as cvxpy solves it; a reduced one is not seen whole by the solver anyway.
        if kept_cols.is_empty() || kept_cols.len() == c.a.n {
            return None;
        }
        let box_bounds = redundant::box_bounds(&w, &kept_cols);
        redundant::drop_redundant_rows(&mut w, &kept_cols, &box_bounds);
        if !w.emptied_rows_hold() {
            return None;
        }
        let (reduced, new_row) = build::reduced_program(&w, &kept_cols)?;
        Some(Self {
            reduced,
            kept_cols,
            fixed_value: w.value,
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
}
