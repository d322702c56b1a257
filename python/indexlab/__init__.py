"""indexlab: design, optimise and backtest rules-based equity indices, with a Rust core.

The modules follow the workflow: :mod:`indexlab.data` (datasets) -> :mod:`indexlab.capping`
(capped weighting) -> rules -> optimise -> backtest -> search -> report.

Examples
--------
>>> import indexlab
>>> ds = indexlab.datasets.hk_tech()
>>> w = indexlab.cap_weights([5.0, 3.0, 1.0, 1.0], cap=0.4)
"""

from typing import Any

from indexlab import datasets, market, rules
from indexlab._core import __version__
from indexlab.backtest import (
    BacktestResult,
    BatchBacktest,
    HKCosts,
    Schedule,
    backtest,
    backtest_batch,
    metrics,
)
from indexlab.calculator import IndexLevels, index_levels
from indexlab.capping import cap_weights, capping_factors
from indexlab.data import Dataset, load
from indexlab.errors import (
    DataError,
    DataWarning,
    IndexlabError,
    InfeasibleError,
    SolverError,
)
from indexlab.rules import IndexHistory, IndexRules, build_index

__all__ = [
    "BacktestResult",
    "BatchBacktest",
    "DataError",
    "DataWarning",
    "Dataset",
    "FastSolution",
    "HKCosts",
    "IndexHistory",
    "IndexLevels",
    "IndexRules",
    "IndexlabError",
    "InfeasibleError",
    "Schedule",
    "SolverError",
    "__version__",
    "backtest",
    "backtest_batch",
    "build_index",
    "cap_weights",
    "capped_qp_batch",
    "capping_factors",
    "datasets",
    "index_levels",
    "load",
    "market",
    "metrics",
    "optimise",
    "rules",
]


def __getattr__(name: str) -> Any:
    # indexlab.optimise needs cvxpy (slow to import, optional): load it on first use.
    import importlib

    if name == "optimise":
        return importlib.import_module("indexlab.optimise")
    if name in ("capped_qp_batch", "FastSolution"):
        return getattr(importlib.import_module("indexlab.optimise.fastpath"), name)
    raise AttributeError(f"module 'indexlab' has no attribute {name!r}")
