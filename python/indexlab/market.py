"""The one point-in-time market layer: what every stage needs to know about the market on a day.

:class:`Market` computes, once per :class:`~indexlab.data.Dataset`, the HKD prices and
total-return values, market caps, each name's first and last observation, and the masks that
tell apart the three reasons a value can be missing (docs/conventions.md):

* **not listed**: before the listing date (or after a recorded delisting);
* **suspended**: a gap inside a listed name's series; the last value carries forward;
* **coverage gap**: after the name's last observation with no recorded delisting; the data end
  there, so no value is assumed, unless a caller opts into carrying the last price.

The rules engine, the backtest, search, the API and the demo read these arrays instead of
forward-filling on their own.

Examples
--------
>>> import indexlab
>>> ds = indexlab.datasets.synthetic(n_securities=12, years=1, seed=2)
>>> m = indexlab.market.Market.of(ds)
>>> m.total_return_hkd().shape == (len(ds.dates), len(ds.ids))
True
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from indexlab.data import Dataset
from indexlab.errors import DataError

__all__ = ["LIQUIDITY_WINDOW", "Market"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Trading days of the liquidity measure :meth:`Market.adv_hkd` (about three months).
LIQUIDITY_WINDOW = 63


def carry_inside(values: FloatArray, first: IntArray, last: IntArray) -> FloatArray:
    """Forward-fill each column from its first to its last observation; NaN outside."""
    t = np.arange(values.shape[0])[:, None]
    idx = np.where(np.isnan(values), -1, t)
    np.maximum.accumulate(idx, axis=0, out=idx)
    cols = np.arange(values.shape[1])
    out = np.where(idx >= 0, values[np.maximum(idx, 0), cols], np.nan)
    out[(t < first[None, :]) | (t > last[None, :])] = np.nan
    return np.ascontiguousarray(out)


class Market:
    """Point-in-time arrays of one dataset, computed once (use :meth:`of`)."""

    _cache: ClassVar[dict[int, tuple[weakref.ref[Dataset], Market]]] = {}

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        ds = dataset
        self.fx = ds.fx_to_hkd()
        seen = ~np.isnan(ds.field("close"))
        has = seen.any(axis=0)
        n_days = len(ds.dates)
        #: First and last day index with a close (-1 when none).
        self.first_obs: IntArray = np.where(has, np.argmax(seen, axis=0), -1).astype(np.int64)
        self.last_obs: IntArray = np.where(
            has, n_days - 1 - np.argmax(seen[::-1], axis=0), -1
        ).astype(np.int64)
        self.delisted = ds.securities["delisting_date"].notna().to_numpy()
        self._filled: dict[str, FloatArray] = {}
        self._traded: FloatArray | None = None
        self._adv: dict[tuple[int, int], FloatArray] = {}

    @classmethod
    def of(cls, dataset: Dataset) -> Market:
        """The (cached) market layer of ``dataset``."""
        if not isinstance(dataset, Dataset):
            raise DataError(f"expected an indexlab.Dataset, got {type(dataset).__name__}")
        hit = cls._cache.get(id(dataset))
        if hit is not None and hit[0]() is dataset:
            return hit[1]
        market = cls(dataset)
        key, cache = id(dataset), cls._cache

        def forget(_: object, k: int = key) -> None:
            cache.pop(k, None)

        cls._cache[key] = (weakref.ref(dataset, forget), market)
        return market

    # ------------------------------------------------------------------ liquidity

    def adv_hkd(self, day: int, window: int = LIQUIDITY_WINDOW) -> FloatArray:
        """Median daily traded value in HKD of every name over the ``window`` trading days up
        to and including day index ``day``; NaN where no day counts.

        Only days inside a name's observed span count: a suspended day (no close) counts as
        zero traded, a day with a close but no turnover value is left out, and days after the
        last observation are not counted (a coverage gap in the data says nothing about
        liquidity). Search, the optimiser's screens and the capacity and trade-list analytics
        all read this one measure.
        """
        key = (int(day), int(window))
        if key not in self._adv:
            values = self._traded_values()
            block = values[max(key[0] + 1 - key[1], 0) : key[0] + 1]
            out = np.full(block.shape[1], np.nan)
            # All-NaN columns stay NaN without calling the median on them: silencing its
            # warning would take the process-wide warning filters, not thread-safe.
            some = ~np.isnan(block).all(axis=0)
            if some.any():
                out[some] = np.nanmedian(block[:, some], axis=0)
            self._adv[key] = out
        return self._adv[key]

    def _traded_values(self) -> FloatArray:
        if self._traded is None:
            ds = self.dataset
            tv = np.asarray(ds.field("turnover_value") * self.fx, dtype=np.float64)
            t = np.arange(tv.shape[0])[:, None]
            inside = (t >= self.first_obs[None, :]) & (t <= self.last_obs[None, :])
            suspended = inside & np.isnan(ds.field("close"))
            self._traded = np.where(suspended, 0.0, np.where(inside, tv, np.nan))
        return self._traded

    # ------------------------------------------------------------------ series

    def _carried(self, field: str) -> FloatArray:
        if field not in self._filled:
            hkd = self.dataset.field(field) * self.fx
            self._filled[field] = carry_inside(hkd, self.first_obs, self.last_obs)
        return self._filled[field]

    def total_return_hkd(self, carry_last_price: bool = False) -> FloatArray:
        """``(T, N)`` total-return values in HKD, carried over suspensions; NaN before the first
        and after the last observation (or the last value carried, if asked)."""
        return self._extend(self._carried("total_return"), carry_last_price)

    def price_hkd(self, carry_last_price: bool = False) -> FloatArray:
        """``(T, N)`` prices in HKD (dividends not reinvested), carried like
        :meth:`total_return_hkd`."""
        return self._extend(self._carried("close"), carry_last_price)

    def level_input(self, kind: str, carry_last_price: bool = False) -> FloatArray:
        """The series a backtest compounds: ``"total_return"`` or ``"price"``."""
        if kind == "total_return":
            return self.total_return_hkd(carry_last_price)
        if kind == "price":
            return self.price_hkd(carry_last_price)
        raise DataError(f"return kind must be 'total_return' or 'price', got {kind!r}")

    def _extend(self, values: FloatArray, carry_last_price: bool) -> FloatArray:
        if not carry_last_price:
            return values
        out = values.copy()
        t = np.arange(out.shape[0])[:, None]
        after = (t > self.last_obs[None, :]) & (self.last_obs >= 0)[None, :]
        cols = np.arange(out.shape[1])
        last_vals = out[np.maximum(self.last_obs, 0), cols]
        return np.where(after, last_vals[None, :], out)

    def market_cap_hkd(self, free_float: bool = True) -> FloatArray:
        """``(T, N)`` market cap in HKD, carried over suspensions, NaN outside coverage."""
        ds = self.dataset
        key = "ff_mcap" if free_float else "mcap"
        if key not in self._filled:
            cap = ds.field("close") * ds.field("shares_outstanding") * self.fx
            if free_float:
                cap = cap * ds.field("free_float_factor")
            self._filled[key] = carry_inside(cap, self.first_obs, self.last_obs)
        return self._filled[key]

    # ------------------------------------------------------------------ checks

    def last_observation(self, i: int) -> str:
        """The date of name ``i``'s last observation (``"never"`` when it has none)."""
        t = int(self.last_obs[i])
        return "never" if t < 0 else str(self.dataset.dates[t])

    def check_held(
        self, what: str, weights: FloatArray, days: IntArray, end: int, carry_last_price: bool
    ) -> None:
        """Raise :class:`DataError` for weight held where the data cannot price it.

        ``weights`` is ``(R, N)`` set at the close of day indices ``days`` and held until the
        next one (the last until ``end``). A weight on a name with no value yet at its
        rebalance day, or held past the name's last observation, names the security, the date
        and the last observation; ``carry_last_price`` allows the second (a coverage gap priced
        at its last value), never the first. A name with a recorded delisting keeps its last
        price (the delisting proceeds), as the batch engine carries it.
        """
        dates = self.dataset.dates
        ids = self.dataset.ids
        for j, day in enumerate(days):
            held = np.flatnonzero(weights[j] != 0.0)
            if held.size == 0:
                continue
            until = int(days[j + 1]) if j + 1 < len(days) else end
            early = held[(self.first_obs[held] < 0) | (self.first_obs[held] > day)]
            if early.size:
                i = int(early[0])
                raise DataError(
                    f"{what}: weight {weights[j, i]:.6g} on {ids[i]} set on {dates[day]}, before "
                    f"its first observation ({self._first(i)})"
                )
            if carry_last_price:
                continue
            stale = held[(self.last_obs[held] < until) & ~self.delisted[held]]
            if stale.size:
                i = int(stale[np.argmin(self.last_obs[stale])])
                raise DataError(
                    f"{what}: {ids[i]} is held from {dates[day]} to {dates[until]}, but its data "
                    f"end on {self.last_observation(i)} (no recorded delisting: a coverage gap "
                    "in the data). Drop it before then, or pass carry_last_price=True to hold "
                    "it at its last price."
                )

    def check_held_rows(
        self,
        labels: list[str],
        weights: Any,
        days: IntArray,
        end: int,
    ) -> None:
        """:meth:`check_held` for ``K`` schedules stacked as ``(K * R, N)`` sparse CSR rows
        (candidate-major) sharing the rebalance day indices ``days``; names the candidate."""
        r = len(days)
        until = np.append(days[1:], end).astype(np.int64)
        counts = np.diff(weights.indptr)
        rows = np.repeat(np.arange(weights.shape[0]), counts).astype(np.int64)
        held = weights.data != 0.0
        cols = weights.indices[held].astype(np.int64)
        rows = rows[held]
        stale = (self.last_obs[cols] < until[rows % r]) & ~self.delisted[cols]
        if not stale.any():
            return
        k = int(np.flatnonzero(stale)[0])
        row, i = int(rows[k]), int(cols[k])
        dates, ids = self.dataset.dates, self.dataset.ids
        raise DataError(
            f"candidate {labels[row // r]!r}: {ids[i]} is held from {dates[days[row % r]]} to "
            f"{dates[until[row % r]]}, but its data end on {self.last_observation(i)} (no "
            "recorded delisting: a coverage gap in the data). End the window earlier, or pass "
            "carry_last_price=True to hold it at its last price."
        )

    def daily_returns(self, carry_last_price: bool = False) -> FloatArray:
        """``ret[t - 1]`` = HKD total return of day ``t`` (suspensions carried; NaN while not
        listed and after the last observation unless carried)."""
        tr = self.total_return_hkd(carry_last_price)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(tr[1:] / tr[:-1] - 1.0, dtype=np.float64)

    def _first(self, i: int) -> str:
        t = int(self.first_obs[i])
        return "none in the data" if t < 0 else f"{self.dataset.dates[t]}"

    def carried_after_end(
        self, weights: FloatArray, days: IntArray, end: int
    ) -> list[dict[str, Any]]:
        """Names held past their last observation (what ``carry_last_price`` priced flat)."""
        out = []
        dates, ids = self.dataset.dates, self.dataset.ids
        for j, day in enumerate(days):
            until = int(days[j + 1]) if j + 1 < len(days) else end
            for i in np.flatnonzero(weights[j] != 0.0):
                if self.last_obs[i] < until:
                    out.append(
                        {
                            "id": str(ids[i]),
                            "held_from": str(dates[day]),
                            "held_until": str(dates[until]),
                            "last_observation": self.last_observation(int(i)),
                        }
                    )
        return out
