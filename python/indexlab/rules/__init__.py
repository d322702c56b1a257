"""Index rules: methodology as data (:mod:`~indexlab.rules.model`), presets and the engine.

Examples
--------
>>> import indexlab
>>> from indexlab import rules
>>> ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
>>> hist = rules.build_index(ds, rules.HSTECH.replace(n=20))
>>> dates, ids, w = hist.weights_matrix()
>>> w.shape[1] == len(ds.ids)
True
"""

from indexlab.rules.compare import Comparison, compare_weights
from indexlab.rules.engine import IndexHistory, PreparedData, build_index, review_calendar
from indexlab.rules.model import (
    Calendar,
    CategoryCap,
    Eligibility,
    IndexRules,
    RuleFieldError,
    Selection,
    SelectionPhase,
    Sleeve,
    Universe,
    Weighting,
    grid,
)
from indexlab.rules.presets import AI_CHAIN, AI_CHAIN_AH, HSI, HSTECH, HSTECH_2026, PRESETS

__all__ = [
    "AI_CHAIN",
    "AI_CHAIN_AH",
    "HSI",
    "HSTECH",
    "HSTECH_2026",
    "PRESETS",
    "Calendar",
    "CategoryCap",
    "Comparison",
    "Eligibility",
    "IndexHistory",
    "IndexRules",
    "PreparedData",
    "RuleFieldError",
    "Selection",
    "SelectionPhase",
    "Sleeve",
    "Universe",
    "Weighting",
    "build_index",
    "compare_weights",
    "grid",
    "review_calendar",
]
