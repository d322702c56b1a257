"""The factsheet of an index: performance, risk and composition, as data.

:func:`factsheet` backtests the index twice (price and total return, in HKD, net of the
per-market trading costs of :class:`~indexlab.HKCosts`) and reads its composition at the last
rebalance in the window. :func:`indexlab.report.factsheet.html` turns the result into one page.

Conventions:

* **Period returns** end on the factsheet's date (``as_of``, the window's last day). A period
  starts on the last trading day on or before ``as_of`` minus the period (1M, 3M, 6M, 1Y, 3Y,
  5Y), on the last trading day of the previous year (YTD), or at the first level (since
  inception). A period that reaches before the first level is NaN. Periods longer than a year
  are annualised: ``(1 + r) ** (1 / years) - 1`` with ``years`` 3 and 5 for 3Y and 5Y, and
  calendar days / 365.25 since inception.
* **Calendar years** run from the last level of the previous year (or the first level) to the
  last level of the year (or ``as_of``); ``partial`` marks the first year when there is no
  level of the previous year, and the last when ``as_of`` is before 24 December.
* **Benchmarks**: the dataset's index levels (HSI and HSTECH are price indices; the data hold
  no total-return series of them, so their total-return columns are absent, never guessed).
* **Risk** is measured on price returns, against the chosen benchmark's price levels (like
  with like), 252 days a year, over the days the benchmark covers (:func:`indexlab.metrics`).
* **Turnover** is one-way: ``sum |w_new - w_drifted| / 2`` at each rebalance after the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from indexlab.analytics._common import (
    benchmark_name,
    check_dataset,
    day_index,
    index_name,
)
from indexlab.backtest import HKCosts, backtest, metrics
from indexlab.data import Dataset
from indexlab.errors import DataError
from indexlab.market import Market

__all__ = ["PERIODS", "Factsheet", "factsheet", "period_returns"]

#: Period labels and their length (``None``: YTD and since inception).
PERIODS: tuple[tuple[str, pd.DateOffset | None], ...] = (
    ("1M", pd.DateOffset(months=1)),
    ("3M", pd.DateOffset(months=3)),
    ("6M", pd.DateOffset(months=6)),
    ("YTD", None),
    ("1Y", pd.DateOffset(years=1)),
    ("3Y", pd.DateOffset(years=3)),
    ("5Y", pd.DateOffset(years=5)),
    ("Since inception", None),
)
_YEARS = {"3Y": 3.0, "5Y": 5.0}
BREAKDOWNS = ("industry", "ai_layer", "market")


@dataclass(frozen=True)
class Factsheet:
    """What :func:`factsheet` returns; every table is a DataFrame.

    * ``period_returns``: rows :data:`PERIODS`, columns ``"<name> (price)"``,
      ``"<name> (total return)"`` and ``"<benchmark> (price)"`` per dataset benchmark;
      ``annualised`` says which rows are annualised.
    * ``calendar_years``: one row per year, the same columns plus ``partial``.
    * ``risk``: rows volatility, max drawdown, Sharpe, tracking error and information ratio;
      columns the index (price), the index (total return) and the chosen benchmark (price).
    * ``constituents``: every constituent at the last rebalance (``id``, ``name``, ``weight``,
      ``industry``, ``ai_layer``, ``market``, ``market_cap_hkd`` and ``ff_market_cap_hkd`` on
      ``as_of``), by weight; ``top10`` its first ten rows.
    * ``breakdowns[industry | ai_layer | market]``: ``weight`` and ``count`` per group.
    * ``market_cap``: average and median market cap and free-float market cap (HKD).
    * ``turnover``: one-way turnover per rebalance after the first.
    * ``levels``: price and total-return levels (base 1000) and the benchmarks rebased.
    """

    name: str
    benchmark: str
    inception: pd.Timestamp
    as_of: pd.Timestamp
    composition_date: pd.Timestamp
    period_returns: pd.DataFrame
    calendar_years: pd.DataFrame
    risk: pd.DataFrame
    constituents: pd.DataFrame
    top10: pd.DataFrame
    breakdowns: dict[str, pd.DataFrame]
    market_cap: pd.Series
    turnover: pd.Series
    levels: pd.DataFrame
    notes: tuple[str, ...] = ()

    @property
    def n_constituents(self) -> int:
        """Names held at the last rebalance."""
        return len(self.constituents)


def _base_position(index: pd.DatetimeIndex, day: pd.Timestamp) -> int:
    """The last position on or before ``day`` (-1 when ``day`` is before the first)."""
    return int(index.searchsorted(day, side="right")) - 1


def period_returns(levels: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Period returns of each column of a dates x series level table, ending on its last date.

    See the module docstring for the periods and annualisation. Returns the table and a
    boolean series saying which rows are annualised.

    Examples
    --------
    >>> import pandas as pd
    >>> from indexlab.analytics import period_returns
    >>> days = pd.bdate_range("2024-01-01", "2025-12-31")
    >>> lv = pd.DataFrame({"x": range(100, 100 + len(days))}, index=days, dtype=float)
    >>> table, annualised = period_returns(lv)
    >>> expected = lv.x.iloc[-1] / lv.x.loc["2024-12-31"] - 1
    >>> bool(abs(table.loc["YTD", "x"] - expected) < 1e-12), bool(annualised["3Y"])
    (True, True)
    """
    index = pd.DatetimeIndex(levels.index)
    as_of = index[-1]
    rows, ann = {}, {}
    for label, offset in PERIODS:
        if label == "Since inception":
            pos = 0
        elif label == "YTD":
            pos = _base_position(
                index, pd.Timestamp(year=as_of.year, month=1, day=1) - pd.Timedelta(days=1)
            )
        else:
            assert offset is not None
            target = as_of - offset
            pos = _base_position(index, target) if target >= index[0] else -1
        if pos < 0:
            rows[label] = pd.Series(np.nan, index=levels.columns)
            ann[label] = label in _YEARS
            continue
        base = levels.iloc[pos]
        growth = levels.iloc[-1] / base
        years = _YEARS.get(label)
        if label == "Since inception":
            span = (as_of - index[pos]).days / 365.25
            years = span if span > 1.0 else None
        ann[label] = years is not None
        rows[label] = growth ** (1.0 / years) - 1.0 if years is not None else growth - 1.0
    table = pd.DataFrame(rows).T
    table.index.name = "period"
    return table, pd.Series(ann, name="annualised")


def _calendar_years(levels: pd.DataFrame) -> pd.DataFrame:
    index = pd.DatetimeIndex(levels.index)
    years = sorted(set(index.year))
    out = {}
    partial = {}
    for y in years:
        last = _base_position(index, pd.Timestamp(year=y, month=12, day=31))
        before = _base_position(index, pd.Timestamp(year=y - 1, month=12, day=31))
        start = max(before, 0)
        out[y] = levels.iloc[last] / levels.iloc[start] - 1.0
        # Whole only from the previous year's last close; the last year ends at as_of.
        short_start = before < 0
        short_end = y == index[-1].year and index[-1] < pd.Timestamp(year=y, month=12, day=24)
        notes = []
        if short_start:
            notes.append(f"from {index[0]:%Y-%m-%d}")
        if short_end:
            notes.append(f"to {index[-1]:%Y-%m-%d}")
        partial[y] = ", ".join(notes)
    table = pd.DataFrame(out).T
    table.index.name = "year"
    table["partial"] = pd.Series(partial)
    return table


def factsheet(
    dataset: Dataset,
    index: Any,
    benchmark: str = "HSTECH",
    name: str | None = None,
    end: Any = None,
    costs: HKCosts | None = None,
    carry_last_price: bool = False,
) -> Factsheet:
    """The factsheet of any index: rebuilt by rules, designed, optimised or from a search.

    Parameters
    ----------
    dataset
        The market.
    index
        An :class:`~indexlab.IndexHistory` or any schedule :func:`indexlab.backtest` accepts
        (a :class:`~indexlab.Schedule`, a ``(dates, ids, weights)`` tuple).
    benchmark
        The dataset benchmark for tracking error and information ratio (``"HSTECH"``,
        ``"HSI"``); every dataset benchmark appears in the return tables.
    name
        The index's name (default: the rule set's name, else ``"index"``).
    end
        The factsheet date; default the dataset's complete-universe date (else its last date).
        It must lie inside the data and after the first rebalance.
    costs
        The cost model of the backtest (default :class:`~indexlab.HKCosts`).
    carry_last_price
        As in :func:`indexlab.backtest`.

    Raises
    ------
    DataError
        An unknown ``benchmark``, an ``end`` outside the history, or what
        :func:`indexlab.backtest` raises.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.analytics import factsheet
    >>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    >>> fs = factsheet(ds, indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=15)))
    >>> fs.n_constituents >= 15, list(fs.period_returns.index[:3])  # 15 plus fast entries
    (True, ['1M', '3M', '6M'])
    """
    ds = check_dataset(dataset)
    bench = benchmark_name(ds, benchmark)
    label = name if name is not None else index_name(index)
    if not isinstance(label, str) or not label:
        raise DataError(f"name must be a non-empty string, got {name!r}")
    if end is not None:
        day_index(ds, end, "end")
    price = backtest(
        ds,
        {label: index},
        costs=costs,
        benchmark=bench,
        end=end,
        returns="price",
        carry_last_price=carry_last_price,
    )
    total = backtest(
        ds,
        {label: index},
        costs=costs,
        benchmark=None,
        end=end,
        returns="total_return",
        carry_last_price=carry_last_price,
    )
    dates = price.levels.index
    as_of = dates[-1]
    columns = {
        f"{label} (price)": price.levels[label],
        f"{label} (total return)": total.levels[label],
    }
    for b in ds.benchmarks.columns:
        series = ds.benchmarks[b].reindex(dates)
        first = series.first_valid_index()
        columns[f"{b} (price)"] = (
            series / series.loc[first] * 1000.0 if first is not None else series
        )
    levels = pd.DataFrame(columns)
    notes = [
        "HSI and HSTECH are price indices; the data hold no total-return series of them.",
    ]
    stale = [c for c in levels.columns if np.isnan(levels[c].iloc[-1])]
    if stale:
        notes.append(
            f"No level on {as_of:%Y-%m-%d} for {', '.join(stale)}: those returns are blank."
        )
    periods, annualised = period_returns(levels)
    periods["annualised"] = annualised
    risk = _risk(price, total, label, bench)
    comp_date, constituents = _composition(ds, price, label, as_of)
    turnover = price.turnover[label].iloc[1:] / 2.0
    turnover.name = "one_way_turnover"
    caps = constituents[["market_cap_hkd", "ff_market_cap_hkd"]]
    market_cap = pd.Series(
        {
            "average_market_cap_hkd": float(caps["market_cap_hkd"].mean()),
            "median_market_cap_hkd": float(caps["market_cap_hkd"].median()),
            "average_ff_market_cap_hkd": float(caps["ff_market_cap_hkd"].mean()),
            "median_ff_market_cap_hkd": float(caps["ff_market_cap_hkd"].median()),
        }
    )
    breakdowns = {
        g: constituents.groupby(g)
        .agg(weight=("weight", "sum"), count=("id", "size"))
        .sort_values("weight", ascending=False, kind="stable")
        for g in BREAKDOWNS
    }
    return Factsheet(
        name=label,
        benchmark=bench,
        inception=pd.Timestamp(dates[0]),
        as_of=pd.Timestamp(as_of),
        composition_date=comp_date,
        period_returns=periods,
        calendar_years=_calendar_years(levels),
        risk=risk,
        constituents=constituents,
        top10=constituents.head(10).reset_index(drop=True),
        breakdowns=breakdowns,
        market_cap=market_cap,
        turnover=turnover,
        levels=levels,
        notes=tuple(notes),
    )


def _risk(price: Any, total: Any, label: str, bench: str) -> pd.DataFrame:
    m = price.metrics.loc[label]
    t = total.metrics.loc[label]
    b = price.levels["benchmark"].dropna()
    bm = metrics(b).iloc[0] if len(b) > 2 else pd.Series(dtype=float)
    rows = ["volatility", "max_drawdown", "sharpe", "tracking_error", "information_ratio"]
    table = pd.DataFrame(
        {
            f"{label} (price)": [m.get(r, np.nan) for r in rows],
            f"{label} (total return)": [
                t.get(r, np.nan) if r in rows[:3] else np.nan for r in rows
            ],
            f"{bench} (price)": [bm.get(r, np.nan) if r in rows[:3] else np.nan for r in rows],
        },
        index=pd.Index(rows, name="measure"),
    )
    return table.astype(np.float64)


def _composition(
    ds: Dataset, price: Any, label: str, as_of: pd.Timestamp
) -> tuple[pd.Timestamp, pd.DataFrame]:
    w = price.weights
    w = w[(w["schedule"] == label) & (w["kind"] == "target")]
    day = pd.Timestamp(w["date"].max())
    held = w[w["date"] == day][["id", "weight"]]
    held = held[held["weight"] != 0]
    sec = ds.securities_at(day).set_index("id")
    out = held.assign(
        name=held["id"].map(sec["name"]),
        industry=held["id"].map(sec["industry"]).astype(str),
        ai_layer=held["id"].map(sec["ai_layer"]).astype(str),
        market=held["id"].map(sec["market"]).astype(str),
    )
    market = Market.of(ds)
    t = ds.date_index(as_of)
    pos = pd.Index(ds.ids).get_indexer(out["id"])
    out["market_cap_hkd"] = _carried_cap(market, False)[t, pos]
    out["ff_market_cap_hkd"] = _carried_cap(market, True)[t, pos]
    out = out.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
    return day, out[
        [
            "id",
            "name",
            "weight",
            "industry",
            "ai_layer",
            "market",
            "market_cap_hkd",
            "ff_market_cap_hkd",
        ]
    ]


def _carried_cap(market: Market, free_float: bool) -> Any:
    """Market caps carried past a name's last observation (the last known cap), so a name held
    through a coverage gap (``carry_last_price``) still has one."""
    caps = market.market_cap_hkd(free_float=free_float)
    t = np.arange(caps.shape[0])[:, None]
    after = (t > market.last_obs[None, :]) & (market.last_obs >= 0)[None, :]
    last = caps[np.maximum(market.last_obs, 0), np.arange(caps.shape[1])]
    return np.where(after, last[None, :], caps)
