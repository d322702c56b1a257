"""Brinson–Fachler attribution with Carino linking: indexlab's vectorised kernel
(``indexlab.analytics.brinson_fachler`` + ``carino``, bincount over period x group) vs a plain
pandas implementation (one groupby per period, then the same linking formula).

Case: 40 review periods, 500 names, 11 industries; each schedule holds 50 names a period.
``INDEXLAB_BENCH_FULL=1``: 200 periods and 3,000 names. Parity: every effect agrees to 1e-12
and the linked totals sum to the cumulative active return. Run ``pytest
benches/bench_attribution.py`` for the ratio, ``--benchmark-disable`` for the parity check only.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from indexlab.analytics import brinson_fachler, carino

FULL = os.environ.get("INDEXLAB_BENCH_FULL") == "1"
P, N = (200, 3_000) if FULL else (40, 500)
G, HELD = 11, 50


def make_case(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)

    def schedule() -> np.ndarray:
        w = np.zeros((P, N))
        for p in range(P):
            held = rng.choice(N, HELD, replace=False)
            w[p, held] = rng.random(HELD) + 0.1
        return w / w.sum(axis=1, keepdims=True)

    wp, wb = schedule(), schedule()
    r = rng.normal(0.01, 0.08, (P, N))
    groups = np.tile(rng.integers(0, G, N), (P, 1)).astype(np.int64)
    return wp, wb, r, groups


def ours(wp: np.ndarray, wb: np.ndarray, r: np.ndarray, groups: np.ndarray) -> np.ndarray:
    effects, _, _, totals = brinson_fachler(wp, wb, r, groups, G)
    return effects * carino(totals[:, 0], totals[:, 1])[:, None, None]


def pandas_baseline(
    wp: np.ndarray, wb: np.ndarray, r: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """The textbook loop: per period, group weights and returns with pandas, then the three
    effects; Carino's k_t / K from the period totals."""
    out = np.zeros((P, G, 3))
    totals = np.zeros((P, 2))
    for p in range(P):
        frame = pd.DataFrame(
            {"g": groups[p], "wp": wp[p], "wb": wb[p], "cp": wp[p] * r[p], "cb": wb[p] * r[p]}
        )
        agg = frame.groupby("g")[["wp", "wb", "cp", "cb"]].sum().reindex(range(G), fill_value=0)
        big_r, big_b = agg["cp"].sum(), agg["cb"].sum()
        rg = (agg["cp"] / agg["wp"]).where(agg["wp"] != 0)
        bg = (agg["cb"] / agg["wb"]).where(agg["wb"] != 0)
        rg, bg = rg.fillna(bg).fillna(0.0), bg.fillna(rg).fillna(0.0)
        out[p, :, 0] = (agg["wp"] - agg["wb"]) * (bg - big_b)
        out[p, :, 1] = agg["wb"] * (rg - bg)
        out[p, :, 2] = (agg["wp"] - agg["wb"]) * (rg - bg)
        totals[p] = big_r, big_b
    k = (np.log1p(totals[:, 0]) - np.log1p(totals[:, 1])) / (totals[:, 0] - totals[:, 1])
    cum_r, cum_b = np.prod(1 + totals[:, 0]) - 1, np.prod(1 + totals[:, 1]) - 1
    big_k = (np.log1p(cum_r) - np.log1p(cum_b)) / (cum_r - cum_b)
    return out * (k / big_k)[:, None, None]


@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_attribution(benchmark, role: str) -> None:
    wp, wb, r, groups = make_case()
    fn = ours if role == "indexlab" else pandas_baseline
    benchmark.group = f"attribution P={P} N={N} G={G}"
    benchmark.extra_info.update(role=role, baseline="pandas groupby loop")
    linked = benchmark(fn, wp, wb, r, groups)
    np.testing.assert_allclose(linked, pandas_baseline(wp, wb, r, groups), rtol=0, atol=1e-12)
    cum = np.prod(1 + (wp * r).sum(axis=1)) - np.prod(1 + (wb * r).sum(axis=1))
    assert linked.sum() == pytest.approx(cum, abs=1e-12)
