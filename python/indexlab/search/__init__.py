"""Search over candidate index designs: run them through history and compare them.

- :func:`evaluate`: rule variants, member lists and optimiser candidates through every review,
  point in time, one batch backtest per chunk, one table row per candidate.
- :class:`SearchResult`: the table, its Pareto frontier (:meth:`SearchResult.pareto`),
  :meth:`~SearchResult.top`, :meth:`~SearchResult.best` and a Parquet round trip.
- :func:`random_subsets`: lazy random k-subsets as optimiser candidates.
- :func:`best_subset`: the best k-name membership for a compiled problem (seeds, swap local
  search and restarts over batched solves).

Examples
--------
>>> import indexlab
>>> from indexlab import rules, search
>>> ds = indexlab.datasets.synthetic(n_securities=150, years=3, seed=2)
>>> res = search.evaluate(ds, [search.MemberList(list(ds.ids[:20]), name="first20")])
>>> res.table.loc["first20", "status"]
'ok'
"""

from indexlab.search.candidates import (
    MemberList,
    OptimisedCandidate,
    random_subsets,
)
from indexlab.search.evaluate import evaluate, review_risk_model
from indexlab.search.result import DEFAULT_OBJECTIVES, SearchResult, pareto_mask
from indexlab.search.subset import SubsetResult, best_subset

__all__ = [
    "DEFAULT_OBJECTIVES",
    "MemberList",
    "OptimisedCandidate",
    "SearchResult",
    "SubsetResult",
    "best_subset",
    "evaluate",
    "pareto_mask",
    "random_subsets",
    "review_risk_model",
]
