"""Trading an index: trade lists at a given AUM, days to trade, and capacity.

One liquidity measure serves the trade list, the capacity of an index history and the search's
``liquidity_capacity`` column: :func:`adv_hkd`, the median daily traded value in HKD over the
``LIQUIDITY_WINDOW`` trading days up to and including a day, counted only while the name has
data (docs/conventions.md, "Coverage, suspension and delisting"):

* a day without a close between the name's first and last observation is a suspension: it
  traded nothing, so it counts as zero;
* a day before the first or after the last observation is outside the data and is left out (a
  series that simply stops, a coverage gap, is not a name that stopped trading: counting those
  days as zero drove a stale series' capacity to HK$0);
* a day with a close but no traded value is missing and left out.

Days to trade a value ``v`` at participation ``p``: ``|v| / (p x ADV)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from indexlab.analytics._common import (
    FloatArray,
    IntArray,
    aligned,
    check_dataset,
    day_index,
    drift,
    participation_rate,
    positive_number,
)
from indexlab.backtest import HKCosts
from indexlab.data import Dataset
from indexlab.errors import DataError
from indexlab.market import LIQUIDITY_WINDOW, Market

__all__ = [
    "LIQUIDITY_WINDOW",
    "Capacity",
    "TradeList",
    "adv_hkd",
    "capacity",
    "holdings_capacity",
    "trade_list",
]

#: Trading days in the window of the liquidity measure (about three months).
#: Securities-master columns read as the board lot (shares per lot), first found wins.
LOT_COLUMNS = ("board_lot", "lot_size")


def _adv_at(market: Market, day: int, window: int = LIQUIDITY_WINDOW) -> FloatArray:
    return market.adv_hkd(day, window)


def adv_hkd(dataset: Dataset, date: Any, window: int = LIQUIDITY_WINDOW) -> pd.Series:
    """Median daily traded value (HKD) of every name over ``window`` trading days to ``date``.

    See the module docstring for which days count. NaN for a name with no data in the window.

    Parameters
    ----------
    dataset
        The market.
    date
        The last day of the window (the last trading day on or before it).
    window
        Trading days in the window.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.analytics import adv_hkd
    >>> ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=3)
    >>> adv = adv_hkd(ds, ds.dates[100])
    >>> bool((adv.dropna() > 0).all())
    True
    """
    ds = check_dataset(dataset)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise DataError(f"window must be a whole number of trading days >= 1, got {window!r}")
    t = day_index(ds, date, "date")
    return pd.Series(_adv_at(Market.of(ds), t, window), index=pd.Index(ds.ids, name="id"))


def holdings_capacity(
    dataset: Dataset, days: IntArray, weights: Any, participation: float, max_days: float
) -> FloatArray:
    """Per row of ``weights`` (``(K * R, N)``, sparse CSR or dense, rebalance ``j`` of row
    ``k * R + j`` set on day index ``days[j]``): the AUM (HKD) at which building every holding
    takes ``max_days`` days at ``participation`` of :func:`adv_hkd`:
    ``min_i max_days x participation x ADV_i / w_i``. NaN when no holding has liquidity data.

    What :func:`indexlab.search.evaluate` reports as ``liquidity_capacity``; the caller has
    validated the arguments.
    """
    import scipy.sparse as sp

    market = Market.of(dataset)
    r = len(days)
    coo = sp.coo_matrix(weights)
    adv = np.stack([_adv_at(market, int(d)) for d in days])
    with np.errstate(divide="ignore", invalid="ignore"):
        aum = participation * max_days * adv[coo.row % r, coo.col] / coo.data
    out = np.full(coo.shape[0], np.inf)
    np.minimum.at(out, coo.row, np.where(np.isnan(aum) | (coo.data <= 0), np.inf, aum))
    return np.where(np.isinf(out), np.nan, out)


# ------------------------------------------------------------------------------ trade list


def _lots(dataset: Dataset) -> tuple[FloatArray, str]:
    sec = dataset.securities
    for column in LOT_COLUMNS:
        if column in sec.columns:
            lots = pd.to_numeric(sec[column], errors="coerce").to_numpy(dtype=np.float64)
            lots = np.where(np.isfinite(lots) & (lots >= 1), lots, 1.0)
            return lots, f"board lots (column {column!r}; 1 share where missing)"
    return np.ones(len(sec)), "whole shares (the data have no board lots)"


@dataclass(frozen=True)
class TradeList:
    """What :func:`trade_list` returns.

    * ``trades``: one row per name traded, columns ``id``, ``name``, ``market``, ``side``
      (``"buy"``/``"sell"``), ``weight_before`` (drifted), ``weight_after`` (target),
      ``price_hkd``, ``lot``, ``shares`` (signed, rounded to ``lot``), ``hkd`` (signed traded
      value, ``shares x price``), ``adv_hkd``, ``pct_of_adv`` (``|hkd| / ADV``),
      ``days_to_trade`` (``|hkd| / (participation x ADV)``), ``cost_hkd``.
    * ``rounding``: board lots or whole shares, and why.
    * ``one_way_turnover``: ``sum |w_after - w_before| / 2``.
    """

    date: pd.Timestamp
    aum_hkd: float
    participation: float
    trades: pd.DataFrame
    rounding: str
    one_way_turnover: float

    @property
    def total_cost_hkd(self) -> float:
        """Explicit trading costs of the whole list (HKD)."""
        return float(self.trades["cost_hkd"].sum())

    @property
    def max_days_to_trade(self) -> float:
        """Days the slowest name takes at the participation rate."""
        days = self.trades["days_to_trade"].to_numpy(dtype=np.float64)
        return float(np.nanmax(days)) if np.isfinite(days).any() else float("nan")


def trade_list(
    dataset: Dataset,
    index: Any,
    aum_hkd: float,
    date: Any,
    participation: float = 0.2,
    costs: HKCosts | None = None,
) -> TradeList:
    """The trades that move a fund tracking ``index`` from its drifted holdings to the new
    weights set at the close of ``date`` (a rebalance day of the schedule).

    Holdings before: the previous rebalance's weights drifted by total return to ``date``
    (nothing, i.e. cash, at the first rebalance). Shares are rounded to board lots where the
    securities master has them (``board_lot`` or ``lot_size``), else to whole shares
    (``TradeList.rounding`` says which). Costs per side from :class:`~indexlab.HKCosts`
    (``buy_sell``: stamp duty on both sides in Hong Kong, on sells only for A-shares).

    Parameters
    ----------
    dataset
        The market.
    index
        An :class:`~indexlab.IndexHistory` or any schedule :func:`indexlab.backtest` accepts.
    aum_hkd
        Fund size in HKD, > 0.
    date
        The implementation day: a rebalance date of the schedule inside the data.
    participation
        Fraction of a name's daily traded value the fund may take, in (0, 1].
    costs
        The cost model (default :class:`~indexlab.HKCosts`).

    Raises
    ------
    DataError
        A non-positive or non-finite ``aum_hkd``, ``participation`` outside (0, 1], a ``date``
        outside the data or not a rebalance day.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.analytics import trade_list
    >>> ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=3)
    >>> s = indexlab.Schedule([ds.dates[70], ds.dates[130]], ds.ids[:2], [[0.5, 0.5], [0.8, 0.2]])
    >>> tl = trade_list(ds, s, aum_hkd=1e8, date=ds.dates[130])
    >>> tl.trades["side"].tolist(), tl.rounding
    (['buy', 'sell'], 'whole shares (the data have no board lots)')
    """
    ds = check_dataset(dataset)
    aum = positive_number(aum_hkd, "aum_hkd")
    p = participation_rate(participation)
    costs = HKCosts() if costs is None else costs
    sched = aligned(ds, index)
    t = day_index(ds, date, "date")
    hits = np.flatnonzero(sched.days == t)
    if hits.size == 0:
        days = ", ".join(str(ds.dates[d]) for d in sched.days[-4:])
        raise DataError(
            f"date {ds.dates[t]} is not a rebalance day of the index; its latest are {days}"
        )
    j = int(hits[0])
    market = Market.of(ds)
    tr = market.total_return_hkd(carry_last_price=True)
    before = (
        np.zeros(len(ds.ids))
        if j == 0
        else drift(sched.weights[j - 1], tr[sched.days[j - 1]], tr[t])
    )
    after = sched.weights[j]
    moved = np.flatnonzero(np.abs(after - before) > 1e-12)
    price = market.price_hkd(carry_last_price=True)[t, moved]
    if not np.isfinite(price).all():
        i = int(moved[~np.isfinite(price)][0])
        raise DataError(f"index: {ds.ids[i]} has no price on or before {ds.dates[t]}")
    lots, rounding = _lots(ds)
    target = aum * (after[moved] - before[moved])
    lot = lots[moved]
    shares = np.round(target / price / lot) * lot
    value = shares * price
    adv = _adv_at(market, t)[moved]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.abs(value) / adv
    sec = ds.securities.iloc[moved]
    rates = np.array([costs.buy_sell(str(m)) for m in sec["market"]]).reshape(-1, 2)
    rate = np.where(value >= 0, rates[:, 0], rates[:, 1])
    trades = pd.DataFrame(
        {
            "id": ds.ids[moved],
            "name": sec["name"].to_numpy(),
            "market": sec["market"].to_numpy(),
            "side": np.where(target >= 0, "buy", "sell"),
            "weight_before": before[moved],
            "weight_after": after[moved],
            "price_hkd": price,
            "lot": lot,
            "shares": shares,
            "hkd": value,
            "adv_hkd": adv,
            "pct_of_adv": pct,
            "days_to_trade": pct / p,
            "cost_hkd": np.abs(value) * rate,
        }
    )
    trades = trades.sort_values("hkd", ascending=False, kind="stable").reset_index(drop=True)
    return TradeList(
        date=pd.Timestamp(ds.dates[t]),
        aum_hkd=aum,
        participation=p,
        trades=trades,
        rounding=rounding,
        one_way_turnover=float(np.abs(after - before).sum() / 2.0),
    )


# ------------------------------------------------------------------------------ capacity


@dataclass(frozen=True)
class Capacity:
    """What :func:`capacity` returns.

    * ``aum_hkd``: the largest AUM at which no rebalance needs more than ``max_days`` days for
      any name (NaN when no trade has liquidity data).
    * ``by_review``: one row per rebalance: ``date``, ``capacity_hkd`` (that rebalance's
      limit), the binding ``id`` and ``name``, its ``trade_weight`` and ``adv_hkd``.
    * ``binding``: the rebalances whose limit is the overall capacity (the names that bind).
    * ``no_liquidity_data``: ids traded at some rebalance with no ADV in the window (left out).
    """

    aum_hkd: float
    participation: float
    max_days: float
    basis: str
    by_review: pd.DataFrame
    binding: pd.DataFrame
    no_liquidity_data: list[str]


def capacity(
    dataset: Dataset,
    index: Any,
    participation: float = 0.2,
    max_days: float = 1.0,
    basis: str = "trades",
) -> Capacity:
    """The AUM (HKD) at which some rebalance of ``index`` needs more than ``max_days`` days at
    ``participation`` of a name's :func:`adv_hkd`, and the names that bind.

    With ``basis="trades"`` a rebalance trades ``|w_new - w_drifted|`` of the fund per name
    (the whole weight at the first rebalance, built from cash); with ``basis="holdings"`` it
    trades the whole new weight at every rebalance (building the index from cash each time:
    the more conservative figure, which the search reports). The limit of a rebalance is
    ``min_i max_days x participation x ADV_i / trade_i``; the capacity is the smallest over the
    rebalances.

    Parameters
    ----------
    dataset
        The market.
    index
        An :class:`~indexlab.IndexHistory` or any schedule :func:`indexlab.backtest` accepts.
    participation
        Fraction of daily traded value, in (0, 1].
    max_days
        Days each rebalance may take, > 0.
    basis
        ``"trades"`` or ``"holdings"``.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.analytics import capacity
    >>> ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=3)
    >>> s = indexlab.Schedule([ds.dates[70], ds.dates[130]], ds.ids[:2], [[0.5, 0.5], [0.8, 0.2]])
    >>> cap = capacity(ds, s, participation=0.1, max_days=2)
    >>> len(cap.by_review), bool(cap.aum_hkd == cap.by_review["capacity_hkd"].min())
    (2, True)
    """
    ds = check_dataset(dataset)
    p = participation_rate(participation)
    n_days = positive_number(max_days, "max_days")
    if basis not in ("trades", "holdings"):
        raise DataError(f"basis must be 'trades' or 'holdings', got {basis!r}")
    sched = aligned(ds, index)
    market = Market.of(ds)
    tr = market.total_return_hkd(carry_last_price=True)
    rows: list[tuple[Any, ...]] = []
    missing: set[str] = set()
    for j, t in enumerate(sched.days):
        w = sched.weights[j]
        if basis == "holdings" or j == 0:
            trade = np.abs(w)
        else:
            prev = int(sched.days[j - 1])
            trade = np.abs(w - drift(sched.weights[j - 1], tr[prev], tr[t]))
        adv = _adv_at(market, int(t))
        traded = np.flatnonzero(trade > 1e-12)
        missing |= {str(ds.ids[i]) for i in traded[np.isnan(adv[traded])]}
        ok = traded[np.isfinite(adv[traded])]
        if ok.size == 0:
            rows.append((ds.dates[t], np.nan, None, None, np.nan, np.nan))
            continue
        limits = n_days * p * adv[ok] / trade[ok]
        k = int(ok[np.argmin(limits)])
        rows.append(
            (
                ds.dates[t],
                float(limits.min()),
                str(ds.ids[k]),
                ds.securities["name"].iloc[k],
                float(trade[k]),
                float(adv[k]),
            )
        )
    by_review = pd.DataFrame(
        rows, columns=["date", "capacity_hkd", "id", "name", "trade_weight", "adv_hkd"]
    )
    by_review["date"] = pd.to_datetime(by_review["date"])
    limits = by_review["capacity_hkd"].to_numpy(dtype=np.float64)
    total = float(np.nanmin(limits)) if np.isfinite(limits).any() else float("nan")
    binding = by_review[np.isclose(limits, total, rtol=1e-12, atol=0.0)].reset_index(drop=True)
    return Capacity(
        aum_hkd=total,
        participation=p,
        max_days=n_days,
        basis=basis,
        by_review=by_review,
        binding=binding,
        no_liquidity_data=sorted(missing),
    )
