"""Search: the best membership subset for a compiled problem (:func:`best_subset`)."""

from indexlab.search.subset import SubsetResult, best_subset

__all__ = ["SubsetResult", "best_subset"]
