"""indexlab: design, optimise and backtest rules-based equity indices, with a Rust core.

The modules follow the workflow: :mod:`indexlab.data` (datasets) -> :mod:`indexlab.capping`
(capped weighting) -> rules -> optimise -> backtest -> search -> report.

Examples
--------
>>> import indexlab
>>> ds = indexlab.datasets.hk_tech()
>>> w = indexlab.cap_weights([5.0, 3.0, 1.0, 1.0], cap=0.4)
"""

from indexlab import datasets, optimise
from indexlab._core import __version__
from indexlab.capping import cap_weights, capping_factors
from indexlab.data import Dataset, load
from indexlab.errors import DataError, IndexlabError, InfeasibleError, SolverError
from indexlab.optimise import FastSolution, capped_qp_batch

__all__ = [
    "DataError",
    "Dataset",
    "FastSolution",
    "IndexlabError",
    "InfeasibleError",
    "SolverError",
    "__version__",
    "cap_weights",
    "capped_qp_batch",
    "capping_factors",
    "datasets",
    "load",
    "optimise",
]
