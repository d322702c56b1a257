"""Optimisation: cvxpy models compiled once and solved in batches by the Rust core.

- :func:`compile` turns any DPP cvxpy problem into a :class:`CompiledProblem` whose
  :meth:`~CompiledProblem.solve_batch` solves many parameter instances in parallel (Clarabel).
- :mod:`indexlab.optimise.blocks`: index building blocks (AI exposure, tracking error, caps,
  liquidity, group bounds, turnover, minimum holding).
- :class:`RiskModel`: a factor risk model, e.g. statistical factors from returns.
- :func:`ai_chain_model`: the AI-chain index model, ready for batches.
"""

from indexlab.optimise.blocks import (
    ai_exposure,
    group_bounds,
    liquidity_cap,
    min_weight_if_held,
    tracking_error,
    turnover,
    weight_cap,
)
from indexlab.optimise.compile import BatchSolution, CompiledProblem, Solution, compile
from indexlab.optimise.models import ai_chain_model
from indexlab.optimise.risk import RiskModel

__all__ = [
    "BatchSolution",
    "CompiledProblem",
    "RiskModel",
    "Solution",
    "ai_chain_model",
    "ai_exposure",
    "compile",
    "group_bounds",
    "liquidity_cap",
    "min_weight_if_held",
    "tracking_error",
    "turnover",
    "weight_cap",
]
