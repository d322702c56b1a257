"""Candidate sets shared by the search and scale-out tests."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
from indexlab import rules, search


def parent_reviews(ds: indexlab.Dataset, dates: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(cut-off index, implementation index, parent weights) of the HSTECH review implemented
    on each of ``dates`` (the parent of the optimiser candidates in the search tests)."""
    parent = indexlab.build_index(ds, rules.HSTECH)
    cal = parent.calendar
    rev = parent.reviews[parent.reviews["event"] == "review"]
    impl = [ds.dates[int(i)] if i < len(ds.dates) else None for i in cal["impl_idx"]]
    out = []
    for d in dates:
        j = impl.index(np.datetime64(d))
        rows = rev[rev["review_date"] == cal["cutoff"].iloc[j]]
        bench = np.zeros(len(ds.ids))
        bench[pd.Index(ds.ids).get_indexer(rows["id"])] = rows["weight"].to_numpy()
        out.append((int(cal["cutoff_idx"].iloc[j]), int(cal["impl_idx"].iloc[j]), bench))
    return out


def always_listed(ds: indexlab.Dataset, k: int) -> list[str]:
    """HK ids with a close every day and no delisting, biggest free-float market cap first."""
    close = ds.field("close")
    sec = ds.securities
    ok = (
        ~np.isnan(close).any(axis=0)
        & sec["delisting_date"].isna().to_numpy()
        & (sec["market"] == "HK").to_numpy()
    )
    mcap = (close * ds.field("shares_outstanding") * ds.field("free_float_factor"))[-1]
    order = np.argsort(-np.where(ok, mcap, -np.inf), kind="stable")
    assert ok.sum() >= k
    return [str(x) for x in ds.ids[order[:k]]]


def mixed(ds: indexlab.Dataset, count: int, edge_cases: bool = False) -> list[object]:
    """Every kind of candidate; ``edge_cases`` adds a name repeated across chunks (it gets
    ``#position``) and an infeasible optimiser candidate."""
    pool = always_listed(ds, 40)
    out: list[object] = list(rules.grid(rules.HSTECH, n=[20, 25]))
    out.append(search.MemberList(pool[:15], name="equal15", weighting="equal"))
    out.append(search.OptimisedCandidate(top_k=25, name="seed"))
    out.extend(search.random_subsets(pool, 20, count, seed=1, te_weight=0.0, prefix="lin"))
    out.extend(search.random_subsets(pool, 20, count, seed=2))
    if edge_cases:
        out.append(search.MemberList(pool[:15], name="equal15", weighting="ff_mcap"))
        out.append(search.OptimisedCandidate(members=pool[:3], cap=0.1, name="too_few"))
    return out
