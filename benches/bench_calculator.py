"""Divisor-based index levels: indexlab.index_levels vs a plain pandas/numpy day-by-day divisor
calculation of the same levels (gross total return on a synthetic HSTECH rebuild)."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab.market import Market


def pandas_levels(ds: indexlab.Dataset, hist: indexlab.IndexHistory) -> pd.Series:
    """Day by day: index shares at each rebalance, dividends from close and total return, the
    divisor moved by each day's reinvested dividends (no splits in synthetic data)."""
    market = Market.of(ds)
    price = pd.DataFrame(market.price_hkd(), index=ds.dates, columns=ds.ids)
    tr = pd.DataFrame(market.total_return_hkd(), index=ds.dates, columns=ds.ids)
    div = (price.shift(1) * tr / tr.shift(1) - price).fillna(0.0)
    dates, ids, w = hist.weights_matrix()
    sets = pd.DataFrame(w, index=pd.DatetimeIndex(dates), columns=ids)
    end = np.searchsorted(ds.dates, ds.universe_complete_until or ds.dates[-1], side="right")
    days = pd.DatetimeIndex(ds.dates[np.searchsorted(ds.dates, dates[0]) : end])
    out, divisor, level, shares = [], 1.0, 1000.0, pd.Series(dtype=float)
    for day in days:
        p = price.loc[day]
        if len(shares):
            value = (shares * p[shares.index]).sum()
            cum = value + (shares * div.loc[day, shares.index]).sum()
            divisor *= value / cum
            level = value / divisor
        if day in sets.index:
            target = sets.loc[day]
            target = target[target != 0]
            total = level * divisor
            shares = target * total / p[target.index]
        out.append(level)
    return pd.Series(out, index=days)


@pytest.fixture(scope="module")
def case():
    ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    return ds, indexlab.build_index(ds, indexlab.rules.HSTECH)


@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_index_levels(benchmark, case, role: str) -> None:
    ds, hist = case
    benchmark.group = "index_levels gross, synthetic HSTECH 60 names x 2y"
    benchmark.extra_info.update(role=role, baseline="pandas day-by-day divisor")
    if role == "indexlab":
        levels = benchmark(lambda: indexlab.index_levels(ds, hist, "gross").levels)
    else:
        levels = benchmark(lambda: pandas_levels(ds, hist))
    ref = pandas_levels(ds, hist)
    ours = indexlab.index_levels(ds, hist, "gross").levels
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=1e-10)
    assert len(levels) == len(ref)
