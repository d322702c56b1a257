//! One instance's fast-path inputs from its row of `theta` (bounds reduced per weight, the
//! budget's implied upper bound, group bounds, the linear term, previous weights), and one
//! fast-path solve of them.

use super::super::fastpath::{
    self, CappedQp, Groups, Outcome, PerInstance, RiskModel, SharedPrep, Turnover,
};
use super::theta::ThetaMap;
use super::{budget, IndexShape, Risk, ShapeSpec};
use crate::error::Result;

/// One worker's buffers, reused across its instances.
#[derive(Default)]
pub(super) struct Scratch {
    /// The instance's row of `theta` when the batch comes as parameter arrays.
    pub theta: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub glo: Vec<f64>,
    pub ghi: Vec<f64>,
    /// The objective's linear term `c` in the weights.
    pub c: Vec<f64>,
    /// The scores of the next fast-path solve (`-c` without a budget).
    pub scores: Vec<f64>,
    pub prev: Vec<f64>,
    cost: Vec<f64>,
    /// The weights of the last fast-path solve.
    pub w: Vec<f64>,
    pub vals: Vec<f64>,
    fast: fastpath::Scratch,
    pub budget: budget::Scratch,
}

impl Scratch {
    /// Let the next fast-path solve start from the working set of the last one (see
    /// [`fastpath::Scratch::warm_start_next`]).
    pub fn warm_start_next(&mut self) {
        self.fast.warm_start_next();
    }

    /// Weights not fixed by their bounds.
    pub fn held(&self) -> u32 {
        self.lo.iter().zip(&self.hi).filter(|(l, h)| h > l).count() as u32
    }
}

/// Which quadratic a fast-path solve uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Model {
    /// The objective's own.
    Objective,
    /// The tracking-error budget's `Σ1`.
    Budget,
    /// None: a linear objective.
    Linear,
}

/// The shared inputs of the fast path for a risk model, checked and factored once.
pub(super) fn prepare(spec: &ShapeSpec, risk: Option<&Risk>) -> Result<SharedPrep> {
    let nw = spec.weight_cols.len();
    let (zeros, ones) = (vec![0.0; nw], vec![1.0; nw]);
    let m = spec.groups.as_ref().map_or(0, |g| g.lo.rows());
    let (glo, ghi) = (vec![f64::NEG_INFINITY; m], vec![f64::INFINITY; m]);
    let inputs = Inputs {
        scores: &zeros,
        lo: &zeros,
        hi: &ones,
        glo: &glo,
        ghi: &ghi,
        prev: &zeros,
        cost: &zeros,
    };
    SharedPrep::new(&problem(spec, risk, &inputs))
}

/// The per-instance arrays of one fast-path solve.
struct Inputs<'a> {
    scores: &'a [f64],
    lo: &'a [f64],
    hi: &'a [f64],
    glo: &'a [f64],
    ghi: &'a [f64],
    prev: &'a [f64],
    cost: &'a [f64],
}

fn problem<'a>(spec: &'a ShapeSpec, risk: Option<&'a Risk>, x: &Inputs<'a>) -> CappedQp<'a> {
    CappedQp {
        batch: 1,
        names: spec.weight_cols.len(),
        scores: x.scores,
        bench: None,
        risk: risk.map(|r| RiskModel {
            factors: r.factors,
            loadings: &r.loadings,
            factor_cov: &r.factor_cov,
            specific_var: &r.specific_var,
        }),
        gamma: if risk.is_some() { 1.0 } else { 0.0 },
        lo: PerInstance::Rows(x.lo),
        hi: PerInstance::Rows(x.hi),
        groups: spec.groups.as_ref().map(|g| Groups {
            rows: g.lo.rows(),
            matrix: &g.matrix,
            lo: PerInstance::Rows(x.glo),
            hi: PerInstance::Rows(x.ghi),
        }),
        turnover: spec.turnover.as_ref().map(|_| Turnover {
            prev: PerInstance::Rows(x.prev),
            cost: PerInstance::Rows(x.cost),
        }),
    }
}

/// Values of `map` at `theta`, with the flagged rows replaced by `inf`.
fn side(map: &ThetaMap, inf: &[bool], theta: &[f64], fill: f64, out: &mut Vec<f64>) {
    map.eval_into(theta, out);
    for (v, &none) in out.iter_mut().zip(inf) {
        if none {
            *v = fill;
        }
    }
}

impl IndexShape {
    /// Load instance `theta`'s inputs into `s`; `false` when its bounds alone are infeasible
    /// (crossed beyond rounding, a weight with no lower bound, crossed group bounds).
    pub(super) fn load(&self, theta: &[f64], s: &mut Scratch) -> bool {
        let sp = &self.spec;
        let nw = sp.weight_cols.len();
        let maps = &self.maps;
        maps.lo.eval_into(theta, &mut s.lo);
        match &maps.hi {
            Some(hi) => hi.eval_into(theta, &mut s.hi),
            None => {
                s.hi.clear();
                s.hi.resize(nw, f64::INFINITY);
            }
        }
        // sum w = 1 bounds each weight by 1 minus the others' lower bounds.
        let sum_lo: f64 = s.lo.iter().sum();
        for (h, &l) in s.hi.iter_mut().zip(&s.lo) {
            *h = h.min((1.0 - (sum_lo - l)).max(l));
        }
        s.glo.clear();
        s.ghi.clear();
        if let (Some(g), Some(lo), Some(hi)) = (&sp.groups, &maps.glo, &maps.ghi) {
            side(lo, &g.lo_inf, theta, f64::NEG_INFINITY, &mut s.glo);
            side(hi, &g.hi_inf, theta, f64::INFINITY, &mut s.ghi);
        }
        maps.c.eval_into(theta, &mut s.c);
        s.scores.clear();
        s.scores.extend(s.c.iter().map(|v| -v));
        s.prev.clear();
        if let (Some(t), Some(prev)) = (&sp.turnover, &maps.prev) {
            s.prev.resize(nw, 0.0);
            for (r, &j) in t.weights.iter().enumerate() {
                s.prev[j] = prev.at(r, theta);
            }
        }
        let crossed = s.lo.iter().zip(&s.hi).any(|(&l, &h)| {
            // Written so that a NaN bound counts as crossed.
            let within = l <= h + 1e-12 * (1.0 + h.abs());
            !within || !l.is_finite()
        });
        if crossed || s.glo.iter().zip(&s.ghi).any(|(a, b)| a > b) {
            return false;
        }
        // Crossed by rounding only: make lo <= hi exactly, keeping a constant lower bound.
        if self.lo_constant {
            s.hi.iter_mut().zip(&s.lo).for_each(|(h, &l)| *h = h.max(l));
        } else {
            s.lo.iter_mut().zip(&s.hi).for_each(|(l, &h)| *l = l.min(h));
        }
        true
    }

    /// One fast-path solve of the loaded instance with `s.scores`, the quadratic `model` and
    /// the turnover costs times `cost_scale`; the weights go to `s.w`.
    pub(super) fn solve_weights(
        &self,
        s: &mut Scratch,
        model: Model,
        cost_scale: f64,
    ) -> Result<Outcome> {
        let sp = &self.spec;
        let (risk, prep) = match model {
            Model::Objective => (sp.risk.as_ref(), &self.prep),
            Model::Budget => (sp.budget.as_ref().map(|b| &b.risk), self.budget_prep()?),
            Model::Linear => (None, &self.linear_prep),
        };
        s.cost.clear();
        if let Some(t) = &sp.turnover {
            s.cost.extend(t.cost.iter().map(|c| c * cost_scale));
        }
        let inputs = Inputs {
            scores: &s.scores,
            lo: &s.lo,
            hi: &s.hi,
            glo: &s.glo,
            ghi: &s.ghi,
            prev: &s.prev,
            cost: &s.cost,
        };
        s.w.clear();
        s.w.resize(sp.weight_cols.len(), 0.0);
        let p = problem(sp, risk, &inputs);
        fastpath::solve_instance(&p, prep, &mut s.w, &mut s.fast)
    }
}
