"""Index levels computed the way an index provider computes them: index shares and a divisor.

The weight-based backtest (:func:`indexlab.backtest`) compounds weighted returns. An index
provider instead holds a number of *index shares* per constituent and divides their market value
by a *divisor* (hang-seng-rules.md 1.5)::

    level[t] = sum_i P[t, i] * IS_i / D[t],        IS_i = shares_i * FAF_i * CF_i

with ``P`` the price in HKD (A-shares through the dataset's FX). :func:`index_levels` keeps that
bookkeeping day by day:

* **Rebalance** (weights set at the close of the implementation day, docs/conventions.md,
  backtest levels): the index shares are fixed so that the weights equal the schedule's target
  weights at that close, ``IS_i = w_i * M / P_i``. ``M`` is the capped free-float market value,
  the largest value for which every implied capping factor ``CF_i = IS_i / (shares_i * FAF_i)``
  is at most 1 (so the most constrained name has ``CF = 1``). The divisor becomes ``M / level``,
  so the level is continuous.
* **Split** (or consolidation) of ratio ``s``: the price falls to ``P / s`` and the share count
  rises to ``shares * s`` on the same day. Standard practice, done here: the index shares are
  restated (``IS_i *= s``), so the constituent's index market value and the divisor do not move.
  The bundled and synthetic datasets store split-adjusted closes with share counts restated on
  the same basis, so no split appears in them; a dataset with raw closes shows one as ``close``
  and ``shares_outstanding`` moving by reciprocal ratios on a day on which ``total_return`` does
  not, which is how it is recognised (``|close return / total return * share ratio - 1| <=``
  :data:`SPLIT_TOLERANCE`).
* **Cash dividend** ``d``, derived from the data: ``total_return`` reinvests dividends on the
  ex-date at the close, so ``total_return[t] / total_return[t - 1] = (close[t] + d[t]) /
  close[t - 1]`` and::

      d[t] = close[t - 1] * tr[t] / tr[t - 1] / s[t] - close[t]

  (per post-split share; ``s = 1`` on days without a split). ``d`` is zero (within ``1e-12`` of
  the price) on days where the price and total returns agree. The price index ignores ordinary
  dividends (the level drops with the price); the gross total-return index reinvests ``d`` and
  the net index ``d * (1 - withholding)`` through the divisor::

      D[t] = D[t - 1] * sum_i IS_i P[t, i] / sum_i IS_i (P[t, i] + d[t, i])

  i.e. across the whole index, as HSIL's total-return formula does.
* **Special dividend / capital repayment** (only when listed in ``special_dividends``, since the
  data do not tell them apart from ordinary dividends): the price index adjusts its divisor by the
  same formula, so its level does not drop by the distribution.

Agreement with the weight-based backtest at zero cost: the price level equals
``backtest(..., returns="price")`` exactly (up to rounding). The backtest's total return
reinvests each dividend in the paying name, not across the index; ``reinvest="security"`` does
the same (the payer's index shares grow by ``(P + d) / P``, the divisor stays) and then equals
``backtest(..., returns="total_return")``. The two differ only between an ex-date and the next
rebalance, by the payer's return relative to the index on the reinvested cash.

Examples
--------
>>> import indexlab
>>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
>>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH)
>>> out = indexlab.index_levels(ds, hist, "price")
>>> float(out.levels.iloc[0]), out.kind
(1000.0, 'price')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab.backtest import _align, _as_schedule, _rebalance_days, window_bounds
from indexlab.data import Dataset
from indexlab.errors import DataError
from indexlab.market import Market

__all__ = ["DEFAULT_WITHHOLDING", "SPLIT_TOLERANCE", "IndexLevels", "index_levels"]

FloatArray = npt.NDArray[np.float64]

KINDS = ("price", "gross", "net")
#: Default dividend withholding tax per market for ``kind="net"``: none on Hong Kong dividends,
#: 10% on mainland A-share dividends (PRC withholding for Northbound investors).
DEFAULT_WITHHOLDING: Mapping[str, float] = {"HK": 0.0, "SH": 0.10, "SZ": 0.10}
#: Relative tolerance within which a close move that is the reciprocal of the share-count move
#: (relative to the total return) counts as a split.
SPLIT_TOLERANCE = 1e-6
_DIVIDEND_FLOOR = 1e-12


@dataclass(frozen=True)
class IndexLevels:
    """What :func:`index_levels` returns.

    * ``levels``: the index level per date (base on the first day).
    * ``divisor``: the divisor in force at each close (after that day's adjustments).
    * ``shares``: index shares ``shares x FAF x CF`` fixed at each rebalance (rebalance dates x
      ids held at any rebalance, 0 when not held); splits between rebalances restate them in the
      calculation, not in this table.
    * ``kind``: ``"price"``, ``"gross"`` or ``"net"``.
    * ``capping_factors``: the capping factor each rebalance implies (same shape as ``shares``;
      NaN where the name has no share count or free-float factor, 0 when not held).
    * ``observed``: per date, the share of the index's value (at the previous close) in names
      with a recorded close that day. Below 1 the level rests partly on carried prices: a
      suspension, or a day missing from the data (docs/conventions.md); such a day's move is
      late, and the next observed day catches it up.
    """

    levels: pd.Series
    divisor: pd.Series
    shares: pd.DataFrame
    kind: str
    capping_factors: pd.DataFrame = field(repr=False)
    observed: pd.Series = field(repr=False, default_factory=lambda: pd.Series(dtype=float))

    def tracking_error(
        self, benchmark: pd.Series, min_observed: float = 0.95, periods_per_year: int = 252
    ) -> float:
        """Annualised tracking error against ``benchmark`` levels, on observed days only.

        The log returns of both series are taken between consecutive dates on which the
        benchmark has a level and at least ``min_observed`` of the index's value had a recorded
        close (``observed``); a move spread over a data gap then counts once, on both sides,
        instead of as a miss and a catch-up. ``min_observed=0`` uses every common date.

        Parameters
        ----------
        benchmark
            Levels indexed by date (e.g. ``dataset.benchmarks["HSTECH"]``).
        min_observed
            In ``[0, 1]``.
        periods_per_year
            Annualisation factor for the standard deviation of the daily differences.

        Returns
        -------
        float
            ``std(ln(r_index) - ln(r_benchmark)) * sqrt(periods_per_year)`` (``ddof=1``); NaN
            when fewer than three dates qualify.

        Examples
        --------
        >>> import indexlab
        >>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
        >>> lv = indexlab.index_levels(ds, indexlab.build_index(ds, indexlab.rules.HSTECH))
        >>> lv.tracking_error(lv.levels * 2.0)          # a scaled copy tracks perfectly
        0.0
        """
        if not isinstance(benchmark, pd.Series):
            raise DataError(f"benchmark must be a pandas Series, got {type(benchmark).__name__}")
        if not (isinstance(min_observed, int | float) and 0.0 <= float(min_observed) <= 1.0):
            raise DataError(f"min_observed must be in [0, 1], got {min_observed!r}")
        if not isinstance(periods_per_year, int) or periods_per_year <= 0:
            raise DataError(
                f"periods_per_year must be a positive integer, got {periods_per_year!r}"
            )
        bench = pd.Series(
            pd.to_numeric(benchmark, errors="coerce").to_numpy(dtype=np.float64),
            index=pd.DatetimeIndex(pd.to_datetime(benchmark.index)),
        )
        both = pd.concat([self.levels, bench, self.observed], axis=1, join="inner")
        both.columns = ["index", "benchmark", "observed"]
        ok = both["benchmark"].gt(0) & both["index"].gt(0)
        if len(self.observed):
            ok &= both["observed"].ge(float(min_observed) - 1e-12)
        kept = both.loc[ok, ["index", "benchmark"]]
        if len(kept) < 3:
            return float("nan")
        diff = np.log(kept).diff().dropna()
        te = (diff["index"] - diff["benchmark"]).std(ddof=1) * np.sqrt(periods_per_year)
        # Differences at rounding level are no tracking error.
        return float(round(te, 12))


def _rates(dataset: Dataset, kind: str, withholding: Mapping[str, float] | None) -> FloatArray:
    n = len(dataset.ids)
    if kind != "net":
        if withholding is not None:
            raise DataError(f"withholding applies only to kind='net', got kind={kind!r}")
        return np.zeros(n)
    table = dict(DEFAULT_WITHHOLDING)
    ids = set(dataset.ids.tolist())
    markets = set(dataset.securities["market"].astype(str))
    for key, rate in (withholding or {}).items():
        if str(key) not in ids and str(key) not in markets and str(key) not in table:
            raise DataError(f"withholding key {key!r} is neither a market nor an id in the dataset")
        if not 0.0 <= float(rate) <= 1.0:
            raise DataError(f"withholding rate for {key!r} must be in [0, 1], got {rate!r}")
        table[str(key)] = float(rate)
    by_market = [table.get(str(m), 0.0) for m in dataset.securities["market"]]
    return np.array(
        [table.get(str(i), by_market[k]) for k, i in enumerate(dataset.ids)], dtype=np.float64
    )


def _specials(
    dataset: Dataset, special_dividends: Any, t0: int, t1: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """``(T, N)`` masks over the window: special dividends, and which of them are capital
    repayments (never withheld)."""
    shape = (t1 - t0 + 1, len(dataset.ids))
    special = np.zeros(shape, dtype=bool)
    repayment = np.zeros(shape, dtype=bool)
    if special_dividends is None:
        return special, repayment
    rows: Iterable[Any]
    if isinstance(special_dividends, pd.DataFrame):
        cols = list(special_dividends.columns)
        if "id" not in cols or "date" not in cols:
            raise DataError("special_dividends needs columns 'id' and 'date' (and optional 'kind')")
        keep = ["id", "date", *(["kind"] if "kind" in cols else [])]
        rows = list(special_dividends[keep].itertuples(index=False, name=None))
    else:
        rows = special_dividends
    universe = pd.Index(dataset.ids)
    for row in rows:
        sid, day, *rest = tuple(row)
        kind = str(rest[0]) if rest else "special_dividend"
        if kind not in ("special_dividend", "capital_repayment"):
            raise DataError(
                f"special_dividends kind must be 'special_dividend' or 'capital_repayment', "
                f"got {kind!r}"
            )
        col = universe.get_indexer([str(sid)])[0]
        if col < 0:
            raise DataError(f"special_dividends: {sid!r} is not in the dataset")
        ex = np.datetime64(pd.Timestamp(day).date(), "D")
        t = int(np.searchsorted(dataset.dates, ex, side="left"))
        if t >= len(dataset.dates) or dataset.dates[t] != ex:
            raise DataError(f"special_dividends: {sid} ex-date {ex} is not a trading day")
        if t0 <= t <= t1:
            special[t - t0, col] = True
            repayment[t - t0, col] = kind == "capital_repayment"
    return special, repayment


def index_levels(
    dataset: Dataset,
    history: Any,
    kind: str = "price",
    withholding: Mapping[str, float] | None = None,
    start: Any = None,
    end: Any = None,
    base: float = 1000.0,
    carry_last_price: bool = False,
    special_dividends: Any = None,
    reinvest: str = "index",
) -> IndexLevels:
    """Index levels from index shares and a divisor, as the provider computes them.

    Parameters
    ----------
    dataset
        The market: prices and total returns in HKD (A-shares through ``dataset.fx``), carried
        over suspensions by :class:`indexlab.market.Market`.
    history
        An :class:`indexlab.IndexHistory` (or anything :func:`indexlab.backtest` accepts as a
        schedule): target weights set at the close of each rebalance day.
    kind
        ``"price"``, ``"gross"`` (gross total return: dividends reinvested) or ``"net"``
        (dividends net of withholding tax reinvested).
    withholding
        For ``kind="net"``: withholding tax rate by market (``"HK"``, ``"SH"``, ``"SZ"``) or by
        id (an id wins over its market), merged over :data:`DEFAULT_WITHHOLDING` (0 for HK,
        0.10 for mainland A-shares). Only allowed with ``kind="net"``.
    start, end
        The window, as in :func:`indexlab.backtest`: ``start`` defaults to the first rebalance,
        ``end`` to ``dataset.universe_complete_until`` (else the last date).
    base
        The level on the first day.
    carry_last_price
        Hold names past their last observation at their last price instead of raising
        :class:`DataError` (as :func:`indexlab.backtest`).
    special_dividends
        ``(id, ex-date)`` or ``(id, ex-date, kind)`` entries (or a DataFrame with ``id``,
        ``date`` and optional ``kind``), ``kind`` ``"special_dividend"`` (default) or
        ``"capital_repayment"``: the derived distribution on that day is a special one. The
        price index adjusts its divisor for it (no drop in level); total-return indices
        reinvest it like any dividend, a capital repayment without withholding.
    reinvest
        Where total-return indices reinvest dividends: ``"index"`` (across the index through
        the divisor, the provider's practice) or ``"security"`` (in the paying name, by
        restating its index shares; what the weight-based backtest does).

    Returns
    -------
    IndexLevels
        ``levels``, ``divisor``, ``shares`` (index shares per rebalance), ``kind``.

    Raises
    ------
    DataError
        Unknown ``kind`` or ``reinvest``, a bad withholding rate, a weight on a name before its
        first observation, or one held past its last observation without a recorded delisting
        (naming the id and the dates) unless ``carry_last_price``.

    Examples
    --------
    >>> import indexlab
    >>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    >>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH)
    >>> gross = indexlab.index_levels(ds, hist, "gross")
    >>> net = indexlab.index_levels(ds, hist, "net", withholding={"HK": 0.1})
    >>> bool(net.levels.iloc[-1] <= gross.levels.iloc[-1])
    True
    """
    if kind not in KINDS:
        raise DataError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if reinvest not in ("index", "security"):
        raise DataError(f"reinvest must be 'index' or 'security', got {reinvest!r}")
    if not isinstance(dataset, Dataset):
        raise DataError(f"expected an indexlab.Dataset, got {type(dataset).__name__}")
    rates = _rates(dataset, kind, withholding)
    sched_dates, sched_ids, sched_w = _as_schedule(history, "index")
    days = dataset.dates
    if start is None and not len(sched_dates):
        raise DataError("the history has no rebalance dates")
    first = sched_dates[0] if len(sched_dates) else None
    t0, t1 = window_bounds(dataset, first, start, end, "index_levels end")
    universe = pd.Index(dataset.ids)
    reb, rows = _rebalance_days("index", sched_dates, days, t0, t1)
    cols, w_al = _align("index", sched_ids, sched_w, universe)
    dense = np.zeros((len(reb), len(universe)))
    dense[:, cols] = w_al[rows]
    bad = np.flatnonzero((np.abs(dense.sum(axis=1) - 1.0) > 1e-9) | (dense < 0).any(axis=1))
    if bad.size:
        raise DataError(
            f"weights set on {days[t0 + reb[bad[0]]]} must be >= 0 and sum to 1, "
            f"got sum {dense[bad[0]].sum():.12g}"
        )
    market = Market.of(dataset)
    market.check_held("index_levels", dense, reb + t0, t1, carry_last_price)

    # A name with a recorded delisting keeps its last price (the delisting proceeds).
    gone = market.delisted[None, :]
    price = np.where(gone, market.price_hkd(True), market.price_hkd(carry_last_price))[t0 : t1 + 1]
    tr = np.where(gone, market.total_return_hkd(True), market.total_return_hkd(carry_last_price))[
        t0 : t1 + 1
    ]
    ff_cap = market.market_cap_hkd(free_float=True)[t0 : t1 + 1]
    ratio, div = _actions(price, market.market_cap_hkd(free_float=False)[t0 : t1 + 1], tr)
    special, repayment = _specials(dataset, special_dividends, t0, t1)

    # The distribution that moves the divisor (index reinvestment / price-index specials) and
    # the one reinvested in the paying name.
    if kind == "price":
        div_divisor, div_name = np.where(special, div, 0.0), np.zeros_like(div)
    else:
        net = np.where(repayment, div, div * (1.0 - rates[None, :]))
        div_divisor, div_name = (net, np.zeros_like(div)) if reinvest == "index" else (0 * net, net)

    recorded = np.isfinite(np.asarray(dataset.field("close"), dtype=np.float64))[t0 : t1 + 1]
    n_days = t1 - t0 + 1
    observed = np.ones(n_days)
    levels = np.empty(n_days)
    divisor = np.empty(n_days)
    shares = np.zeros((len(reb), len(universe)))
    cfs = np.zeros((len(reb), len(universe)))
    held = np.zeros(0, dtype=np.int64)
    index_shares = np.zeros(0)
    level, d_now = float(base), 1.0
    for j, r0 in enumerate(reb):
        stop = int(reb[j + 1]) if j + 1 < len(reb) else n_days - 1
        if j == 0:
            levels[0] = level
        else:
            level = float(levels[r0])
        held = np.flatnonzero(dense[j])
        w = dense[j, held]
        p0 = price[r0, held]
        cap = ff_cap[r0, held]
        if np.isfinite(cap).all() and (cap > 0).all():
            total = float(np.min(cap / w))
            cfs[j, held] = w * total / cap
        else:
            total = level * d_now
            cfs[j, held] = np.nan
        index_shares = w * total / p0
        shares[j, held] = index_shares
        d_now = total / level
        divisor[r0] = d_now
        if stop == r0:
            continue
        span = slice(r0 + 1, stop + 1)
        p = price[span][:, held]
        # Splits restate the index shares; a dividend reinvested in its payer grows them.
        grow = ratio[span][:, held] * (1.0 + div_name[span][:, held] / p)
        is_t = index_shares * np.cumprod(grow, axis=0)
        value_by_name = is_t * p
        value = value_by_name.sum(axis=1)
        before = np.vstack([index_shares * p0, value_by_name[:-1]])
        observed[span] = (before * recorded[span][:, held]).sum(axis=1) / before.sum(axis=1)
        cum = (is_t * (p + div_divisor[span][:, held])).sum(axis=1)
        d_path = d_now * np.cumprod(value / cum)
        levels[span] = value / d_path
        divisor[span] = d_path
        d_now = float(d_path[-1])
        index_shares = is_t[-1]
    index = pd.DatetimeIndex(days[t0 : t1 + 1].astype("datetime64[ns]"), name="date")
    ever = np.flatnonzero((dense != 0).any(axis=0))
    reb_index = index[reb]
    ids = pd.Index(universe[ever], name="id")
    return IndexLevels(
        levels=pd.Series(levels, index=index, name=kind),
        divisor=pd.Series(divisor, index=index, name="divisor"),
        shares=pd.DataFrame(shares[:, ever], index=reb_index, columns=ids),
        kind=kind,
        capping_factors=pd.DataFrame(cfs[:, ever], index=reb_index, columns=ids),
        observed=pd.Series(observed, index=index, name="observed"),
    )


def _actions(price: FloatArray, mcap: FloatArray, tr: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(split ratio, dividend per post-split share)``, both ``(T, N)`` in HKD, row 0 neutral.

    A split of ratio ``s = shares[t] / shares[t - 1]`` when the close moved by ``1 / s`` relative
    to the total return; the dividend is ``close[t - 1] * tr[t] / tr[t - 1] / s - close[t]``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = mcap / price
        growth = tr[1:] / tr[:-1]
        rel = price[1:] / price[:-1] / growth
        moved = shares[1:] / shares[:-1]
        split = (np.abs(moved - 1.0) > 1e-9) & (np.abs(rel * moved - 1.0) <= SPLIT_TOLERANCE)
        s = np.where(split, moved, 1.0)
        d = price[:-1] * growth / s - price[1:]
        d = np.where(np.abs(d) > _DIVIDEND_FLOOR * price[:-1], d, 0.0)
    ratio = np.ones_like(price)
    div = np.zeros_like(price)
    ratio[1:] = s
    div[1:] = np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
    return ratio, div
