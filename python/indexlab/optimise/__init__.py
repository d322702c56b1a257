"""Optimisation: cvxpy models compiled once and solved in batches by the Rust core.

- :func:`compile` turns any DPP cvxpy problem into a :class:`CompiledProblem` whose
  :meth:`~CompiledProblem.solve_batch` solves many parameter instances in parallel (Clarabel).
- :mod:`indexlab.optimise.blocks`: index building blocks (AI exposure, tracking error, caps,
  liquidity, group bounds, turnover, minimum holding).
- :class:`RiskModel`: a factor risk model, e.g. statistical factors from returns.
- :func:`ai_chain_model`: the AI-chain index model, ready for batches.
- :func:`capped_qp_batch`: the exact pure-Rust fast path for capped factor QPs, which
  :func:`compile` uses by itself when it recognises the structure.
"""

from indexlab.optimise.blocks import (
    TrackingError,
    ai_exposure,
    group_bounds,
    liquidity_cap,
    min_weight_if_held,
    tracking_error,
    turnover,
    weight_cap,
)
from indexlab.optimise.compile import BatchSolution, CompiledProblem, Duals, Solution, compile
from indexlab.optimise.fastpath import FastSolution, capped_qp_batch
from indexlab.optimise.models import AIChainModel, CappedFactorForm, ai_chain_model
from indexlab.optimise.risk import RiskModel

__all__ = [
    "AIChainModel",
    "BatchSolution",
    "CappedFactorForm",
    "CompiledProblem",
    "Duals",
    "FastSolution",
    "RiskModel",
    "Solution",
    "TrackingError",
    "ai_chain_model",
    "ai_exposure",
    "capped_qp_batch",
    "compile",
    "group_bounds",
    "liquidity_cap",
    "min_weight_if_held",
    "tracking_error",
    "turnover",
    "weight_cap",
]
