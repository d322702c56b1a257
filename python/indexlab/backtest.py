"""Backtests: index levels, turnover, costs and metrics for many weight schedules at once.

Two levels of API:

* :func:`backtest_batch` — plain arrays in, ``K x T`` levels out. The Rust core runs thousands
  of candidates in parallel with the GIL released.
* :func:`backtest` — a :class:`~indexlab.Dataset` and a few named schedules in, a
  :class:`BacktestResult` of DataFrames out (HKD levels, costs per market, metrics against a
  benchmark, turnover, weights, AI exposure).

Conventions (fixed; docs/conventions.md, backtest levels). ``level[0] = base``; weights ``w_j``
are set at the close of day ``r_j``; for ``r_j < t <= r_{j+1}``::

    level[t] = level[r_j] * sum_i w_ij * tr[t, i] / tr[r_j, i]

with ``tr`` carried forward over suspensions. At ``r_{j+1}`` the drifted weights are
``d_i = w_ij tr[r_{j+1}, i] / tr[r_j, i] / sum(...)``, the traded fraction is
``sum_i |w_{i,j+1} - d_i|`` and ``level[r_{j+1}] *= 1 - sum_i rate_i |w_{i,j+1} - d_i|``.
There is no cost at day 0 and turnover is 0 at the first rebalance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab import _backtest_io as _persist
from indexlab import _core
from indexlab._checks import numeric_array
from indexlab.data import Dataset
from indexlab.errors import DataError
from indexlab.market import Market

__all__ = [
    "BacktestResult",
    "BatchBacktest",
    "HKCosts",
    "Schedule",
    "backtest",
    "backtest_batch",
    "metrics",
]

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int32] | npt.NDArray[np.int64]


# ------------------------------------------------------------------------------ low level


@dataclass(frozen=True)
class BatchBacktest:
    """Result of :func:`backtest_batch`: ``levels`` (``K x T``) and ``turnover`` (``K x R``).

    ``turnover[k, j]`` is the traded fraction ``sum_i |w_ij - d_i|`` at rebalance ``j`` (0 at the
    first rebalance: the initial build is free, docs/conventions.md, backtest levels).
    """

    levels: FloatArray
    turnover: FloatArray


def _is_sparse(x: Any) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _numeric(values: Any, name: str) -> FloatArray:
    return numeric_array(values, name)


def _day_indices(values: Any, name: str) -> npt.NDArray[np.int64]:
    """Whole day indices as int64: ``2.5`` is refused, not truncated to day 2."""
    arr = _numeric(values, name)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (np.floor(arr) == arr) & (np.abs(arr) < 2.0**62))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}[{j}] is {arr[j]!r}: day indices must be whole numbers")
    return np.ascontiguousarray(np.asarray(values).astype(np.int64))


def backtest_batch(
    tr: Any,
    rebalance: Any,
    weights: Any,
    cost_rate: Any = 0.0,
    base: float = 1000.0,
    allow_short: bool = False,
    threads: int | None = None,
) -> BatchBacktest:
    """Index levels of K candidate weight schedules over one market (docs/conventions.md).

    Parameters
    ----------
    tr
        ``(T, N)`` total-return index values, > 0. NaN = no value that day: carried forward
        from the last value; NaN before a name's first value = not listed yet.
    rebalance
        ``R`` strictly increasing day indices (rows of ``tr``), the first 0; whole numbers
        (``2.5`` is refused, not truncated).
    weights
        Dense ``(K, R, N)`` array, or a ``scipy.sparse`` matrix of shape ``(K * R, N)`` whose row
        ``k * R + j`` holds candidate ``k`` at rebalance ``j`` (passed to Rust as CSR, never
        densified). Each row sums to 1 within 1e-9.
    cost_rate
        Cost as a fraction of traded value, in [0, 1]: a scalar, or one rate per name (shape
        ``(N,)``).
    base
        ``level[0]``.
    allow_short
        Accept negative weights.
    threads
        Worker threads (default: all cores). Results do not depend on it.

    Returns
    -------
    BatchBacktest
        ``levels`` ``(K, T)`` and ``turnover`` ``(K, R)``.

    Raises
    ------
    DataError
        Shape mismatches, text or booleans where numbers belong, ``tr <= 0``, rebalance days not
        whole, not strictly increasing or not starting at 0, a cost rate outside [0, 1], NaN,
        infinite or (without ``allow_short``) negative weights, weights not summing to 1, or a
        weight on a name with no
        value on or before its rebalance day. Messages name the candidate, the rebalance and the
        name's position.

    Examples
    --------
    >>> import numpy as np, indexlab
    >>> tr = np.array([[100.0, 50.0], [110.0, 50.0], [121.0, 55.0]])
    >>> w = np.array([[[0.5, 0.5], [0.5, 0.5]]])  # 1 candidate, rebalances on days 0 and 1
    >>> out = indexlab.backtest_batch(tr, [0, 1], w)
    >>> out.levels.round(6).tolist()
    [[1000.0, 1050.0, 1155.0]]
    >>> out.turnover.round(6).tolist()
    [[0.0, 0.047619]]
    """
    tr_a = np.ascontiguousarray(_numeric(tr, "tr"))
    if tr_a.ndim != 2:
        raise DataError(f"tr must be a (T, N) array, got shape {tr_a.shape}")
    n = tr_a.shape[1]
    reb = _day_indices(rebalance, "rebalance")
    r = len(reb)
    dense = data = None
    indptr: IndexArray | None = None
    indices: IndexArray | None = None
    if _is_sparse(weights):
        csr = weights.tocsr()
        if csr.shape[1] != n or r == 0 or csr.shape[0] % r != 0:
            raise DataError(
                f"sparse weights have shape {csr.shape}, expected (K * R, N) with R = {r} "
                f"rebalances and N = {n} names"
            )
        if not csr.has_canonical_format:
            csr = csr.copy()
            csr.sum_duplicates()
        # int32 (scipy's usual choice) or int64: Rust reads either without a widening copy.
        if csr.indices.dtype == np.int32 and csr.indptr.dtype == np.int32:
            indptr = np.ascontiguousarray(csr.indptr, dtype=np.int32)
            indices = np.ascontiguousarray(csr.indices, dtype=np.int32)
        else:
            indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
            indices = np.ascontiguousarray(csr.indices, dtype=np.int64)
        data = np.ascontiguousarray(_numeric(csr.data, "weights"))
    else:
        w = _numeric(weights, "weights")
        if w.ndim != 3 or w.shape[1:] != (r, n):
            raise DataError(
                f"dense weights have shape {w.shape}, expected (K, R, N) = (K, {r}, {n}) "
                "(for one candidate use W[None])"
            )
        dense = np.ascontiguousarray(w).reshape(-1)
    rate = _numeric(cost_rate, "cost_rate")
    if rate.ndim == 0:
        scalar, rates = float(rate), None
    elif rate.shape == (n,):
        scalar, rates = 0.0, np.ascontiguousarray(rate)
    else:
        raise DataError(f"cost_rate must be a scalar or have shape ({n},), got {rate.shape}")
    bad_rate = ~((rate >= 0.0) & (rate <= 1.0))
    if bad_rate.any():
        at = "" if rate.ndim == 0 else f"[{int(np.flatnonzero(bad_rate)[0])}]"
        found = rate if rate.ndim == 0 else rate[bad_rate][0]
        raise DataError(
            f"cost_rate{at} is {float(found)}: a cost is a fraction of traded value in [0, 1]"
        )
    base_a = _numeric(base, "base")
    if base_a.ndim != 0 or not (np.isfinite(base_a) and base_a > 0.0):
        raise DataError(f"base must be one finite number > 0, got {base!r}")
    if not isinstance(allow_short, (bool, np.bool_)):
        raise DataError(f"allow_short must be True or False, got {allow_short!r}")
    levels, turnover = _core._backtest_batch(
        tr_a,
        reb,
        dense,
        indptr,
        indices,
        data,
        scalar,
        rates,
        float(base_a),
        bool(allow_short),
        threads,
    )
    return BatchBacktest(levels=levels, turnover=turnover)


METRIC_COLUMNS: tuple[str, ...] = tuple(_core.METRIC_NAMES)


def metrics(
    levels: Any,
    benchmark: Any = None,
    rf: float = 0.0,
    periods_per_year: float = 252,
    turnover: Any = None,
    dates: Any = None,
) -> pd.DataFrame:
    """Return and risk statistics of each level series (computed in Rust, one row each).

    With levels ``L_0 .. L_{T-1}``, simple daily returns ``r_t = L_t / L_{t-1} - 1``,
    ``ppy = periods_per_year`` and the daily risk-free rate ``rf_d = rf / ppy``:

    * ``total_return = L_{T-1} / L_0 - 1``
    * ``annual_return = (L_{T-1} / L_0) ** (ppy / (T - 1)) - 1``
    * ``volatility = std(r, ddof=1) * sqrt(ppy)``
    * ``sharpe = mean(r - rf_d) / std(r, ddof=1) * sqrt(ppy)``
    * ``sortino = mean(r - rf_d) / sqrt(mean(min(r - rf_d, 0) ** 2)) * sqrt(ppy)``
    * ``max_drawdown = max_t (1 - L_t / max_{s <= t} L_s)`` (a positive fraction), with
      ``drawdown_peak`` and ``drawdown_trough`` (dates if ``dates`` is given, else day indices)
    * ``calmar = annual_return / max_drawdown`` (NaN without a drawdown)
    * against a benchmark level series with returns ``b``: ``tracking_error =
      std(r - b, ddof=1) * sqrt(ppy)``, ``information_ratio = mean(r - b) * ppy /
      tracking_error``, ``beta = cov(r, b) / var(b)`` and ``correlation`` (ddof=1); NaN without
      a benchmark
    * ``average_turnover`` (if ``turnover`` is given): the mean traded fraction over rebalances
      ``1 .. R-1`` (the first, the initial build, is 0 by convention and left out).

    Parameters
    ----------
    levels
        ``(K, T)`` array (one series per row), a 1-D series, or a DataFrame of dates x series
        (its index then gives ``dates`` and its columns the row labels).
    benchmark
        Optional level series of length ``T``.
    turnover
        Optional ``(K, R)`` array (or DataFrame of rebalance dates x series).

    Examples
    --------
    >>> import indexlab
    >>> m = indexlab.metrics([100.0, 110.0, 88.0, 99.0])
    >>> float(round(m.loc[0, "total_return"], 6)), float(round(m.loc[0, "max_drawdown"], 6))
    (-0.01, 0.2)
    """
    labels: Any = None
    if isinstance(levels, pd.DataFrame):
        labels = levels.columns
        if dates is None:
            dates = levels.index
        arr = np.ascontiguousarray(levels.to_numpy(dtype=np.float64).T)
    else:
        arr = np.asarray(levels, dtype=np.float64)
        if isinstance(levels, pd.Series):
            labels = [levels.name]
            if dates is None:
                dates = levels.index
        if arr.ndim == 1:
            arr = arr[None, :]
        arr = np.ascontiguousarray(arr)
    if arr.ndim != 2:
        raise DataError(f"levels must be (K, T), got shape {arr.shape}")
    k, t = arr.shape
    bench = None
    if benchmark is not None:
        bench = np.ascontiguousarray(benchmark, dtype=np.float64)
        if bench.shape != (t,):
            raise DataError(f"benchmark must have shape ({t},), got {bench.shape}")
    out = _core._metrics(arr, bench, float(rf), float(periods_per_year))
    frame = pd.DataFrame(out, columns=list(METRIC_COLUMNS))
    for col in ("drawdown_peak", "drawdown_trough"):
        pos = frame[col].to_numpy().astype(np.int64)
        if dates is not None:
            d = np.asarray(dates)
            if len(d) != t:
                raise DataError(f"dates has {len(d)} entries but levels have {t} days")
            frame[col] = pd.to_datetime(d[pos])
        else:
            frame[col] = pos
    if turnover is not None:
        to = turnover.to_numpy().T if isinstance(turnover, pd.DataFrame) else turnover
        to = np.asarray(to, dtype=np.float64)
        if to.ndim == 1:
            to = to[None, :]
        if to.shape[0] != k:
            raise DataError(f"turnover has {to.shape[0]} rows but levels have {k}")
        frame["average_turnover"] = to[:, 1:].mean(axis=1) if to.shape[1] > 1 else np.nan
    if labels is not None:
        frame.index = pd.Index(labels)
    return frame


# ------------------------------------------------------------------------------ high level


@runtime_checkable
class HasWeightsMatrix(Protocol):
    def weights_matrix(self) -> tuple[Any, Any, Any]: ...


@dataclass(frozen=True)
class Schedule:
    """A weight schedule: ``R`` rebalance dates, ``N`` ids and the ``R x N`` target weights.

    Examples
    --------
    >>> import indexlab
    >>> s = indexlab.Schedule(["2025-01-02"], ["0700.HK", "9988.HK"], [[0.6, 0.4]])
    >>> s.weights_matrix()[2].shape
    (1, 2)
    """

    dates: Any
    ids: Any
    weights: Any

    def weights_matrix(self) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.str_], FloatArray]:
        dates = pd.to_datetime(pd.Index(self.dates)).to_numpy().astype("datetime64[D]")
        ids = np.asarray(self.ids, dtype=str)
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (len(dates), len(ids)):
            raise DataError(
                f"schedule weights have shape {w.shape}, expected (dates, ids) = "
                f"({len(dates)}, {len(ids)})"
            )
        return dates, ids, w


@dataclass(frozen=True)
class HKCosts:
    """Explicit trading costs per market, as one rate per name on traded value.

    Per side (hang-seng-rules.md 5.3/5.4): Hong Kong stamp duty 0.10% (buyer and seller),
    SEHK trading fee 0.00565%, SFC levy 0.0027%, AFRC levy 0.00015%; A-shares (Northbound):
    stamp duty 0.05% on sells only, handling fee 0.00341% per side; plus ``commission`` per side
    in every market.

    The fixed backtest convention charges ``rate * |trade|`` on buys and sells together. At a
    fully invested rebalance the buys equal the sells in value (both weight vectors sum to 1,
    so ``sum(buys) - sum(sells) = 0``), hence charging every trade the average
    ``(buy rate + sell rate) / 2`` gives exactly the true total when all names share a market.
    With mixed markets it is exact for each market's trades taken alone only when that market's
    buys equal its sells; otherwise it is an approximation within half the buy/sell rate gap
    (0.025% of the A-share trade imbalance).

    Examples
    --------
    >>> import indexlab
    >>> round(indexlab.HKCosts().rate("HK"), 8), round(indexlab.HKCosts().rate("SH"), 8)
    (0.001085, 0.0002841)
    """

    commission: float = 0.0
    hk_stamp_duty: float = 0.001
    hk_trading_fee: float = 0.0000565
    hk_sfc_levy: float = 0.000027
    hk_afrc_levy: float = 0.0000015
    a_stamp_duty_sell: float = 0.0005
    a_handling_fee: float = 0.0000341

    def buy_sell(self, market: str) -> tuple[float, float]:
        """(buy-side, sell-side) rate for a market (``HK``, ``SH`` or ``SZ``)."""
        if market == "HK":
            side = self.hk_stamp_duty + self.hk_trading_fee + self.hk_sfc_levy + self.hk_afrc_levy
            return side + self.commission, side + self.commission
        if market in ("SH", "SZ"):
            buy = self.a_handling_fee + self.commission
            return buy, buy + self.a_stamp_duty_sell
        raise DataError(f"no cost model for market {market!r}; expected HK, SH or SZ")

    def rate(self, market: str) -> float:
        """The per-trade rate ``(buy + sell) / 2`` used by the backtest."""
        buy, sell = self.buy_sell(market)
        return (buy + sell) / 2.0

    def rates(self, securities: pd.DataFrame) -> FloatArray:
        """One rate per row of a securities master (its ``market`` column)."""
        return np.array([self.rate(str(m)) for m in securities["market"]], dtype=np.float64)


@dataclass(frozen=True)
class BacktestResult:
    """What :func:`backtest` returns; every field is a DataFrame.

    * ``levels``: dates x schedules (HKD, base 1000), plus a ``benchmark`` column if any (NaN
      after the benchmark's data end).
    * ``metrics``: one row per schedule (see :func:`metrics`), plus ``ai_exposure`` (mean daily).
    * ``turnover``: rebalance dates x schedules (traded fraction; 0 at the first rebalance).
    * ``weights``: long (``schedule``, ``date``, ``id``, ``kind``, ``weight``) where ``kind`` is
      ``"target"`` (weights set at the close) or ``"drifted"`` (the weights just before
      rebalancing, from the previous target and price moves; absent at the first rebalance).
    * ``ai_exposure``: dates x schedules, ``sum_i w_i(t) * ai_score_i`` with the weights drifted
      daily (the new target from each rebalance day's close).
    """

    levels: pd.DataFrame
    metrics: pd.DataFrame
    turnover: pd.DataFrame
    weights: pd.DataFrame
    ai_exposure: pd.DataFrame = field(repr=False)
    #: Names held past their last observation and priced flat at it (only with
    #: ``carry_last_price=True``): ``schedule``, ``id``, ``held_from``, ``held_until``,
    #: ``last_observation``. Empty when nothing was carried.
    carried: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(), repr=False)
    #: ``"total_return"`` or ``"price"``: what the levels compound (HSI and HSTECH are price
    #: indices; compare like with like).
    returns: str = "total_return"

    def to_parquet(self, path: Any, overwrite: bool = False) -> None:
        """Write every frame to ONE Parquet file (read it back with :meth:`from_parquet`).

        The file is a long table ``(table, date, schedule, id, kind, value)`` with one row per
        cell (``levels``, ``turnover``, ``ai_exposure``: one per date and column; ``weights``:
        one per row; ``metrics``: one per schedule and metric, date-valued metrics in ``date``).
        Column orders and dtypes sit in the schema metadata (``indexlab:kind`` = ``backtest``).
        An existing file is a :class:`DataError` unless ``overwrite``.

        Examples
        --------
        >>> import indexlab, tempfile, os
        >>> ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=3)
        >>> s = indexlab.Schedule([ds.dates[5]], list(ds.ids[:2]), [[0.5, 0.5]])
        >>> res = indexlab.backtest(ds, {"two": s}, benchmark=None)
        >>> path = os.path.join(tempfile.mkdtemp(), "bt.parquet")
        >>> res.to_parquet(path)
        >>> indexlab.BacktestResult.from_parquet(path).levels.equals(res.levels)
        True
        """
        _persist.write(self, path, overwrite=overwrite)

    @classmethod
    def from_parquet(cls, path: Any) -> BacktestResult:
        """Read a file written by :meth:`to_parquet`; raises ``DataError`` for any other file."""
        return cls(**_persist.read(path))


def _as_schedule(s: Any, name: str) -> tuple[Any, Any, Any]:
    if isinstance(s, HasWeightsMatrix):
        dates, ids, w = s.weights_matrix()
    elif isinstance(s, tuple) and len(s) == 3:
        dates, ids, w = Schedule(*s).weights_matrix()
    else:
        raise DataError(
            f"schedule {name!r} is a {type(s).__name__}: expected an object with "
            ".weights_matrix(), a Schedule or a (dates, ids, weights) tuple"
        )
    dates, ids, w = Schedule(dates, ids, w).weights_matrix()
    seen, dup = np.unique(ids, return_counts=True)
    if (dup > 1).any():
        raise DataError(
            f"schedule {name!r} lists id {str(seen[dup > 1][0])!r} {int(dup[dup > 1][0])} times; "
            "each id needs exactly one weight column"
        )
    return dates, ids, w


def _schedules(schedules: Any) -> dict[str, tuple[Any, Any, Any]]:
    if isinstance(schedules, Mapping):
        items = [(str(k), v) for k, v in schedules.items()]
        names: dict[str, Any] = {}
        for key in schedules:
            if str(key) in names:
                raise DataError(
                    f"schedules keyed {names[str(key)]!r} and {key!r} share the name "
                    f"{str(key)!r}; give each schedule a distinct name"
                )
            names[str(key)] = key
    elif isinstance(schedules, list):
        items = [(f"schedule_{i}", v) for i, v in enumerate(schedules)]
    else:
        items = [("schedule", schedules)]
    if not items:
        raise DataError("no schedules given")
    return {name: _as_schedule(s, name) for name, s in items}


def _rebalance_days(
    name: str, dates: npt.NDArray[np.datetime64], days: npt.NDArray[np.datetime64], t0: int, t1: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(window-relative rebalance days, schedule rows used), see :func:`backtest`."""
    if len(dates) and (np.diff(dates) <= np.timedelta64(0, "D")).any():
        raise DataError(f"schedule {name!r}: rebalance dates must be strictly increasing")
    pos = np.searchsorted(days, dates, side="left")
    rows = np.flatnonzero(pos <= t1)
    before = rows[pos[rows] <= t0]
    if before.size == 0:
        raise DataError(
            f"schedule {name!r} has no rebalance on or before the start "
            f"{np.datetime_as_string(days[t0])}; its first rebalance is "
            f"{np.datetime_as_string(dates[0]) if len(dates) else 'missing'}"
        )
    rows = rows[rows >= before[-1]]
    mapped = np.maximum(pos[rows], t0) - t0
    # Two rebalance dates on the same trading day: the later one wins.
    keep = np.append(mapped[1:] != mapped[:-1], True)
    return mapped[keep].astype(np.int64), rows[keep].astype(np.int64)


def _align(
    name: str, ids: Any, w: FloatArray, universe: pd.Index
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    col = universe.get_indexer(pd.Index(ids))
    unknown = (col < 0) & (w != 0).any(axis=0)
    if unknown.any():
        bad = [str(i) for i in np.asarray(ids)[unknown][:5]]
        raise DataError(f"schedule {name!r} holds ids not in the dataset: {bad}")
    keep = col >= 0
    return col[keep].astype(np.int64), w[:, keep]


def _benchmark_series(dataset: Dataset, name: str, t0: int, t1: int) -> tuple[FloatArray, int]:
    """Benchmark levels over the window rebased to 1000, and the number of days it covers.

    The dataset leaves index levels NaN after a series' last observation, so the covered span
    ends at the first NaN after the start.
    """
    if name not in dataset.benchmarks.columns:
        raise DataError(
            f"benchmark {name!r} is not in the dataset; it has {list(dataset.benchmarks.columns)}"
        )
    b = dataset.benchmarks[name].to_numpy(dtype=np.float64)[t0 : t1 + 1]
    if np.isnan(b[0]):
        raise DataError(f"benchmark {name!r} has no level on the start date")
    gaps = np.flatnonzero(np.isnan(b))
    covered = int(gaps[0]) if gaps.size else len(b)
    out = b / b[0] * 1000.0
    out[covered:] = np.nan
    return out, covered


def name_positions(
    message: str,
    ids: Any,
    dates: Any,
    labels: Any = None,
    reb: Any = None,
) -> str:
    """Rewrite the engine's positions as names: ``name 18`` -> the id, ``day 40`` -> the date,
    ``rebalance 3`` -> its date, ``candidate 2`` -> its label (errors name securities and
    dates, never column positions)."""

    def sub(pattern: str, f: Any, text: str) -> str:
        return re.sub(pattern, lambda m: f(int(m.group(1))), text)

    def safe(seq: Any, k: int, fmt: str) -> str:
        return fmt.format(seq[k]) if seq is not None and 0 <= k < len(seq) else str(k)

    out = sub(r"\bname (\d+)", lambda i: safe(ids, i, "{}"), message)
    out = sub(r"\(day (\d+)\)", lambda t: f"({safe(dates, t, '{}')})", out)
    if reb is not None:
        out = sub(
            r"\brebalance (\d+)",
            lambda j: f"rebalance on {safe(dates, int(reb[j]), '{}')}"
            if 0 <= j < len(reb)
            else f"rebalance {j}",
            out,
        )
    if labels is not None:
        out = sub(r"\bcandidate (\d+)", lambda k: f"candidate {safe(labels, k, '{!r}')}", out)
    return out


def window_bounds(
    dataset: Dataset, first_rebalance: Any, start: Any, end: Any, what: str
) -> tuple[int, int]:
    """Day indices ``(t0, t1)`` of a backtest window (docs/conventions.md, universe coverage).

    ``end`` defaults to the dataset's complete-universe date (else its last date) and warns
    when it lies past the data; ``start`` defaults to ``first_rebalance``.
    """
    days = dataset.dates
    if end is not None:
        dataset.warn_past_end(end, what)
    elif dataset.universe_complete_until is not None:
        end = dataset.universe_complete_until
    t1 = len(days) - 1 if end is None else dataset.date_index(end)
    if start is None:
        start_day = np.datetime64(pd.Timestamp(first_rebalance).date(), "D")
    else:
        start_day = np.datetime64(pd.Timestamp(start).date(), "D")
    t0 = int(np.searchsorted(days, start_day, side="left"))
    if t0 > t1:
        raise DataError(
            f"empty window: start {start_day} is after the end {np.datetime_as_string(days[t1])}"
        )
    return t0, t1


def backtest(
    dataset: Dataset,
    schedules: Any,
    costs: HKCosts | None = None,
    benchmark: Any = "HSTECH",
    start: Any = None,
    end: Any = None,
    returns: str | None = None,
    carry_last_price: bool = False,
) -> BacktestResult:
    """Backtest named weight schedules on a dataset, in HKD, net of per-market trading costs.

    Parameters
    ----------
    dataset
        The market; A-share (CNY) total-return series are converted with ``dataset.fx_to_hkd()``.
    schedules
        One schedule, a list (named ``schedule_0``, ...) or a dict name -> schedule. A schedule is
        any object with ``.weights_matrix() -> (dates, ids, W)`` (``R`` dates, ``N`` ids,
        ``R x N`` target weights; the rules engine's ``IndexHistory`` has it), a
        :class:`Schedule`, or a plain ``(dates, ids, W)`` tuple.
    costs
        The cost model (default :class:`HKCosts` with no commission); one rate per name from its
        market. ``None`` is the default model.
    benchmark
        A dataset benchmark name (``"HSI"``, ``"HSTECH"``), rebased to 1000 at the start, another
        schedule (backtested like the others), or ``None``.
    start, end
        The window. ``start`` defaults to the latest first rebalance date over the schedules, so
        every schedule is invested from day 0; ``end`` to the last date through which the
        dataset's universe is complete (``Dataset.universe_complete_until``), else its last
        date. An ``end`` after the data warns and stops at the last date.
    returns
        ``"total_return"`` (dividends reinvested) or ``"price"``. The default compares like with
        like: ``"price"`` against a dataset benchmark (the HSI and HSTECH levels are price
        indices), else ``"total_return"``.
    carry_last_price
        Hold names past their last observation at their last price (a coverage gap priced
        flat) instead of raising :class:`DataError`; ``BacktestResult.carried`` lists them.

    Notes
    -----
    Each rebalance date maps to the first trading day on or after it (weights decided on a
    holiday are traded at the next close). Inside the window, the last rebalance on or before
    ``start`` is applied at the start's close; later dates on the same trading day replace
    earlier ones; dates after ``end`` are dropped.

    Examples
    --------
    >>> import indexlab
    >>> ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=3)
    >>> ids = list(ds.ids[:2])
    >>> s = indexlab.Schedule([ds.dates[5]], ids, [[0.5, 0.5]])
    >>> res = indexlab.backtest(ds, {"two": s}, benchmark=None)
    >>> float(res.levels["two"].iloc[0])
    1000.0
    """
    costs = HKCosts() if costs is None else costs
    named = _schedules(schedules)
    if benchmark is not None and "benchmark" in named:
        raise DataError(
            "a schedule is named 'benchmark', the name of the benchmark column in the result; "
            "rename the schedule or pass benchmark=None"
        )
    bench_sched = None
    if benchmark is not None and not isinstance(benchmark, str):
        bench_sched = _as_schedule(benchmark, "benchmark")
    days = dataset.dates
    firsts = [d[0] for d, _, _ in named.values() if len(d)]
    if start is None and not firsts:
        raise DataError("the schedules have no rebalance dates")
    t0, t1 = window_bounds(dataset, max(firsts) if firsts else None, start, end, "backtest end")
    window = days[t0 : t1 + 1]
    index = pd.DatetimeIndex(window.astype("datetime64[ns]"), name="date")
    if returns is None:
        returns = "price" if isinstance(benchmark, str) else "total_return"
    market = Market.of(dataset)
    # Values carried over suspensions by the market layer, so a window that starts inside a
    # suspension still has each name's last value on day 0.
    tr = market.level_input(returns, carry_last_price)[t0 : t1 + 1]
    rates = costs.rates(dataset.securities)
    universe = pd.Index(dataset.ids)
    carried = tr
    carried_rows: list[dict[str, Any]] = []
    known: dict[int, FloatArray] = {}

    def scores_on(r0: int) -> FloatArray:
        """The AI scores known on window day ``r0`` (point in time), once per day per call."""
        if r0 not in known:
            sec = dataset.securities_at(index[r0])
            known[r0] = sec["ai_score"].to_numpy(dtype=np.float64)
        return known[r0]

    all_named = dict(named)
    if bench_sched is not None:
        all_named["benchmark"] = bench_sched
    levels: dict[str, FloatArray] = {}
    turnover: dict[str, pd.Series] = {}
    exposure: dict[str, FloatArray] = {}
    weight_rows: list[pd.DataFrame] = []
    for name, (dates, ids, w) in all_named.items():
        reb, rows = _rebalance_days(name, dates, days, t0, t1)
        cols, w_al = _align(name, ids, w, universe)
        dense = np.zeros((len(reb), len(universe)))
        dense[:, cols] = w_al[rows]
        market.check_held(f"schedule {name!r}", dense, reb + t0, t1, carry_last_price)
        if carry_last_price:
            carried_rows += [
                {"schedule": name, **row} for row in market.carried_after_end(dense, reb + t0, t1)
            ]
        try:
            out = backtest_batch(tr, reb, dense[None], cost_rate=rates)
        except DataError as err:
            msg = name_positions(str(err), universe, window, reb=reb)
            raise DataError(f"schedule {name!r}: {msg}") from None
        levels[name] = out.levels[0]
        turnover[name] = pd.Series(out.turnover[0], index=index[reb])
        scores = np.stack([scores_on(int(r0)) for r0 in reb])
        exposure[name], frame = _drift(name, carried, reb, dense, scores, universe, index)
        weight_rows.append(frame)

    lv = pd.DataFrame({k: levels[k] for k in named}, index=index)
    bench_levels: FloatArray | None = None
    covered = len(window)
    if isinstance(benchmark, str):
        bench_levels, covered = _benchmark_series(dataset, benchmark, t0, t1)
    elif bench_sched is not None:
        bench_levels = levels["benchmark"]
    if bench_levels is not None:
        lv["benchmark"] = bench_levels
    to = pd.DataFrame(turnover)[list(named)]
    to.index.name = "date"
    stats = metrics(lv[list(named)])
    # Each schedule's own rebalances, after its first (0 by convention): the union table `to`
    # is NaN where a schedule does not rebalance.
    stats["average_turnover"] = [
        float(turnover[k].iloc[1:].mean()) if len(turnover[k]) > 1 else np.nan for k in named
    ]
    if bench_levels is not None and covered >= 2:
        rel = metrics(lv[list(named)].iloc[:covered], benchmark=bench_levels[:covered])
        for col in ("tracking_error", "information_ratio", "beta", "correlation"):
            stats[col] = rel[col]
    ai = pd.DataFrame({k: exposure[k] for k in named}, index=index)
    stats["ai_exposure"] = ai.mean()
    return BacktestResult(
        levels=lv,
        metrics=stats,
        turnover=to,
        weights=pd.concat(weight_rows, ignore_index=True),
        ai_exposure=ai,
        carried=pd.DataFrame(
            carried_rows,
            columns=["schedule", "id", "held_from", "held_until", "last_observation"],
        ),
        returns=returns,
    )


def _drift(
    name: str,
    carried: FloatArray,
    reb: npt.NDArray[np.int64],
    dense: FloatArray,
    scores: FloatArray,
    universe: pd.Index,
    index: pd.DatetimeIndex,
) -> tuple[FloatArray, pd.DataFrame]:
    """Daily AI exposure under drifting weights (``scores[j]``: the scores known at rebalance
    ``j``), and the long weights frame of one schedule."""
    t = carried.shape[0]
    expo = np.empty(t)
    frames = []
    for j, r0 in enumerate(reb):
        w = dense[j]
        held = np.flatnonzero(w)
        expo[r0] = w[held] @ scores[j, held]
        frames.append(_long(name, index[r0], universe[held], w[held], "target"))
        end = reb[j + 1] if j + 1 < len(reb) else t - 1
        if end == r0:
            continue
        grown = w[held] * carried[r0 + 1 : end + 1, held] / carried[r0, held]
        total = grown.sum(axis=1)
        expo[r0 + 1 : end + 1] = grown @ scores[j, held] / total
        if j + 1 < len(reb):
            drifted = grown[-1] / total[-1]
            frames.append(_long(name, index[end], universe[held], drifted, "drifted"))
    return expo, pd.concat(frames, ignore_index=True)


def _long(name: str, date: Any, ids: Any, w: Any, kind: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"schedule": name, "date": date, "id": np.asarray(ids), "kind": kind, "weight": w}
    )
