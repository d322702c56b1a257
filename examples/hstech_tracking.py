"""Rebuild HSTECH by its rules and measure how closely the divisor-based price level tracks the
published index.

Run from a source checkout::

    PYTHONPATH=python python3 examples/hstech_tracking.py

Prints the annualised tracking error (daily log-return differences x sqrt(252)) against the
published HSTECH level from 2021-01-01 (the rebuilt level starts at the first rebalance on or
after that) to the end of the complete universe (``ds.universe_complete_until``), the same per
calendar year, and the rebuilt 2025 calendar price return against the published +23.45%
(hang-seng-rules.md 4.3). 2025 runs past the complete universe: names whose data end before
2025-12-31 are held at their last price (``carry_last_price=True``), and the script lists them.
"""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
from indexlab.market import Market

PUBLISHED_2025 = 0.2345


def tracking_error(ours: pd.Series, published: pd.Series) -> float:
    """Annualised standard deviation of daily log-return differences."""
    both = pd.concat([ours, published], axis=1).dropna()
    diff = np.log(both).diff().dropna()
    return float((diff.iloc[:, 0] - diff.iloc[:, 1]).std(ddof=1) * np.sqrt(252))


def main() -> None:
    ds = indexlab.datasets.hk_tech()
    hist = indexlab.build_index(ds, indexlab.rules.HSTECH, start="2020-10-01")
    level = indexlab.index_levels(ds, hist, "price").levels
    published = ds.benchmarks["HSTECH"]
    published.index = pd.DatetimeIndex(published.index)
    window = level.loc["2021-01-01":]
    end = pd.Timestamp(ds.universe_complete_until)
    print(
        f"rebuilt HSTECH (price, divisor method) vs published, {window.index[0].date()} .. "
        f"{end.date()}"
    )
    print(f"  annualised tracking error: {tracking_error(window, published):.2%}")
    for year, part in window.groupby(window.index.year):
        # Each year's returns start from the previous year's last close.
        prev = window.loc[: f"{year - 1}-12-31"].tail(1)
        span = pd.concat([prev, part])
        print(f"  {year}: {tracking_error(span, published):.2%}  ({len(part)} days)")

    full = indexlab.index_levels(ds, hist, "price", end="2025-12-31", carry_last_price=True)
    lv = full.levels
    ret = lv.loc[:"2025-12-31"].iloc[-1] / lv.loc[:"2024-12-31"].iloc[-1] - 1
    pub = published.loc[:"2025-12-31"].iloc[-1] / published.loc[:"2024-12-31"].iloc[-1] - 1
    print(
        f"2025 calendar price return: rebuilt {ret:+.2%}, published {PUBLISHED_2025:+.2%} "
        f"(dataset's HSTECH levels: {pub:+.2%})"
    )
    market = Market.of(ds)
    dates, _, w = hist.weights_matrix()
    t_end = ds.date_index("2025-12-31")
    rows = np.flatnonzero(dates <= np.datetime64("2025-12-31"))
    days = np.array([ds.date_index(d) for d in dates[rows]], dtype=np.int64)
    carried = market.carried_after_end(w[rows], days, t_end)
    late = sorted({f"{c['id']} (last {c['last_observation']})" for c in carried})
    print(f"  held at their last price until 2025-12-31: {', '.join(late) or 'none'}")


if __name__ == "__main__":
    main()
