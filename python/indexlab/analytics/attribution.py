"""Brinson–Fachler attribution of an index's return against a benchmark index.

Periods run between consecutive rebalance days of either schedule. Within a period each
schedule holds its weights (set at the close of the period's first day, drifted there by total
return from its last rebalance) and each name returns ``r_i = tr[end] / tr[start] - 1``, so the
period returns ``R = sum_i wp_i r_i`` and ``B = sum_i wb_i r_i`` are exact (buy and hold, gross
of trading costs). For groups ``g`` (names, industries, AI layers or markets, as known at the
period's start) with weights ``wp_g``, ``wb_g`` and returns ``R_g = sum_{i in g} wp_i r_i / wp_g``
(likewise ``B_g``)::

    allocation_g  = (wp_g - wb_g) (B_g - B)
    selection_g   = wb_g (R_g - B_g)
    interaction_g = (wp_g - wb_g) (R_g - B_g)

(Brinson and Fachler, 1985). A group the index does not hold takes ``R_g = B_g``; one the
benchmark does not hold takes ``B_g = R_g`` (the bet is all allocation). The three effects sum
over groups to ``R - B`` in every period.

Periods are linked with Carino's logarithmic coefficients (Carino, 1999): each period's effects
are scaled by ``k_t / K`` with ``k_t = (ln(1 + R_t) - ln(1 + B_t)) / (R_t - B_t)`` and ``K`` the
same for the cumulative returns (``1 / (1 + R)`` when equal), so the linked effects sum to the
cumulative active return ``prod(1 + R_t) - prod(1 + B_t)``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    index_name,
)
from indexlab.data import Dataset
from indexlab.errors import DataError, IndexlabError
from indexlab.market import Market

__all__ = ["GROUPINGS", "Attribution", "attribution", "brinson_fachler", "carino"]

#: What attribution can group by: ``"name"`` (each id) or a securities-master column.
GROUPINGS = ("name", "industry", "ai_layer", "market")
EFFECTS = ("allocation", "selection", "interaction")
#: The largest residual tolerated between the summed effects and the active return.
CHECK_TOLERANCE = 1e-10


def brinson_fachler(
    wp: FloatArray, wb: FloatArray, r: FloatArray, groups: IntArray, n_groups: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The kernel: ``(P, N)`` weights, returns and group codes in, ``(P, G, 3)`` effects out.

    Returns ``(effects, wp_g, wb_g, totals)`` with ``effects[..., k]`` allocation, selection,
    interaction, the group weights ``(P, G)`` and ``totals`` ``(P, 2)`` = ``(R, B)``.

    Examples
    --------
    >>> import numpy as np
    >>> from indexlab.analytics import brinson_fachler
    >>> wp, wb = np.array([[0.6, 0.4]]), np.array([[0.5, 0.5]])
    >>> eff, *_ , tot = brinson_fachler(wp, wb, np.array([[0.1, 0.0]]), np.array([[0, 1]]), 2)
    >>> round(float(eff.sum()), 12) == round(float(tot[0, 0] - tot[0, 1]), 12)
    True
    """
    p = wp.shape[0]
    flat = (groups + (np.arange(p) * n_groups)[:, None]).ravel()
    size = p * n_groups
    rr = np.nan_to_num(r)

    def by_group(x: FloatArray) -> FloatArray:
        sums = np.bincount(flat, weights=x.ravel(), minlength=size)
        return np.asarray(sums, dtype=np.float64).reshape(p, n_groups)

    wpg, wbg = by_group(wp), by_group(wb)
    cp, cb = by_group(wp * rr), by_group(wb * rr)
    big_r, big_b = cp.sum(axis=1), cb.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rg = np.where(wpg != 0, cp / wpg, np.nan)
        bg = np.where(wbg != 0, cb / wbg, np.nan)
    rg = np.where(np.isnan(rg), bg, rg)
    bg = np.where(np.isnan(bg), rg, bg)
    rg, bg = np.nan_to_num(rg), np.nan_to_num(bg)
    active_w = wpg - wbg
    effects = np.stack(
        [active_w * (bg - big_b[:, None]), wbg * (rg - bg), active_w * (rg - bg)], axis=-1
    )
    return effects, wpg, wbg, np.stack([big_r, big_b], axis=1)


def carino(period_r: FloatArray, period_b: FloatArray) -> FloatArray:
    """Carino's per-period scaling ``k_t / K`` (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from indexlab.analytics import carino
    >>> r, b = np.array([0.10, -0.05]), np.array([0.02, 0.01])
    >>> s = carino(r, b)
    >>> bool(abs(((r - b) * s).sum() - (1.1 * 0.95 - 1.02 * 1.01)) < 1e-12)
    True
    """

    def coef(a: FloatArray, b: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (np.log1p(a) - np.log1p(b)) / (a - b)
        return np.where(np.isclose(a, b, rtol=0.0, atol=1e-15), 1.0 / (1.0 + a), out)

    big_r = np.prod(1.0 + period_r) - 1.0
    big_b = np.prod(1.0 + period_b) - 1.0
    k = coef(np.asarray(period_r, dtype=np.float64), np.asarray(period_b, dtype=np.float64))
    big_k = coef(np.array([big_r]), np.array([big_b]))[0]
    return np.asarray(k / big_k, dtype=np.float64)


@dataclass(frozen=True)
class Attribution:
    """What :func:`attribution` returns.

    * ``periods``: ``start``, ``end``, ``index_return``, ``benchmark_return``, ``active`` per
      period; ``cumulative``: the same over the whole window (compounded).
    * ``by_period[grouping]``: long table ``start``, ``group``, ``index_weight``,
      ``benchmark_weight``, ``allocation``, ``selection``, ``interaction``, ``total``.
    * ``linked[grouping]``: per group, the effects linked over the periods (``linking``), with
      a ``total`` column; they sum to the cumulative active return.
    * ``residual``: the largest ``|sum of effects - active return|`` over the periods and the
      cumulative table (checked against :data:`CHECK_TOLERANCE`).
    """

    index: str
    benchmark: str
    returns: str
    linking: str
    periods: pd.DataFrame
    cumulative: pd.Series
    by_period: dict[str, pd.DataFrame]
    linked: dict[str, pd.DataFrame]
    residual: float


def _groupings(by: str | Sequence[str]) -> list[str]:
    items = [by] if isinstance(by, str) else list(by)
    bad = [g for g in items if g not in GROUPINGS]
    if not items or bad:
        raise DataError(f"by must name groupings from {list(GROUPINGS)}, got {by!r}")
    return items


def attribution(
    dataset: Dataset,
    index: Any,
    benchmark: Any,
    by: str | Sequence[str] = GROUPINGS,
    start: Any = None,
    end: Any = None,
    returns: str = "total_return",
) -> Attribution:
    """Split the active return of ``index`` against ``benchmark`` into allocation, selection
    and interaction per name, industry, AI layer or market (Brinson–Fachler), per period and
    linked over the window (Carino). Both are weight schedules: the published HSI and HSTECH
    are levels without constituent weights, so compare against an index rebuilt by its rules
    (``build_index(ds, rules.HSTECH)``).

    Parameters
    ----------
    dataset
        The market.
    index, benchmark
        :class:`~indexlab.IndexHistory` objects or any schedules :func:`indexlab.backtest`
        accepts.
    by
        One grouping or several from :data:`GROUPINGS`.
    start, end
        The window: defaults from the later first rebalance of the two to the dataset's
        complete-universe date (else its last date); both must lie inside the data.
    returns
        ``"total_return"`` or ``"price"``.

    Raises
    ------
    DataError
        An unknown grouping or return kind, a ``start``/``end`` outside the data or in the
        wrong order, a schedule that is not a weight schedule.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.analytics import attribution
    >>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    >>> a = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=15))
    >>> b = indexlab.build_index(ds, indexlab.rules.HSTECH)
    >>> att = attribution(ds, a, b, by="industry")
    >>> total = att.linked["industry"]["total"].sum()
    >>> bool(abs(total - att.cumulative["active"]) < 1e-10)
    True
    """
    ds = check_dataset(dataset)
    groupings = _groupings(by)
    if returns not in ("total_return", "price"):
        raise DataError(f"returns must be 'total_return' or 'price', got {returns!r}")
    if benchmark is None or isinstance(benchmark, str):
        raise DataError(
            f"benchmark must be a weight schedule (e.g. build_index(ds, rules.HSTECH)), got "
            f"{benchmark!r}: published index levels carry no constituent weights"
        )
    pi, bi = aligned(ds, index, "index"), aligned(ds, benchmark, "benchmark")
    market = Market.of(ds)
    values = market.level_input(returns, carry_last_price=True)
    first = max(int(pi.days[0]), int(bi.days[0]))
    last = len(ds.dates) - 1
    if ds.universe_complete_until is not None and end is None:
        last = ds.date_index(ds.universe_complete_until)
    t0 = first if start is None else day_index(ds, start, "start")
    t1 = last if end is None else day_index(ds, end, "end")
    if t0 < first:
        raise DataError(
            f"start {ds.dates[t0]} is before both schedules have weights (from {ds.dates[first]})"
        )
    if t1 <= t0:
        raise DataError(f"end {ds.dates[t1]} must be after the start {ds.dates[t0]}")
    cuts = np.unique(np.concatenate([pi.days, bi.days, [t0, t1]]))
    cuts = cuts[(cuts >= t0) & (cuts <= t1)]
    wp = np.stack([_held(pi, int(s), values) for s in cuts[:-1]])
    wb = np.stack([_held(bi, int(s), values) for s in cuts[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = values[cuts[1:]] / values[cuts[:-1]] - 1.0
    r = np.where((wp != 0) | (wb != 0), r, 0.0)
    held_bad = ~np.isfinite(r)
    if held_bad.any():
        j, i = np.argwhere(held_bad)[0]
        raise DataError(f"{ds.ids[i]} is held on {ds.dates[cuts[j]]} but has no value then")
    starts = pd.to_datetime(ds.dates[cuts[:-1]])
    by_period: dict[str, pd.DataFrame] = {}
    linked: dict[str, pd.DataFrame] = {}
    residual = 0.0
    totals = np.zeros((len(starts), 2))
    scale = np.ones(len(starts))
    known: dict[int, pd.DataFrame] = {}
    for g in groupings:
        codes, labels = _codes(ds, g, cuts[:-1], known)
        effects, wpg, wbg, totals = brinson_fachler(wp, wb, r, codes, len(labels))
        scale = carino(totals[:, 0], totals[:, 1])
        active = totals[:, 0] - totals[:, 1]
        residual = max(residual, float(np.abs(effects.sum(axis=(1, 2)) - active).max()))
        by_period[g] = _long(starts, labels, effects, wpg, wbg)
        link = (effects * scale[:, None, None]).sum(axis=0)
        frame = pd.DataFrame(link, index=pd.Index(labels, name=g), columns=list(EFFECTS))
        frame["total"] = frame.sum(axis=1)
        frame = frame[(wpg != 0).any(axis=0) | (wbg != 0).any(axis=0)]
        linked[g] = frame.sort_values("total", ascending=False, kind="stable")
    cum_r = float(np.prod(1.0 + totals[:, 0]) - 1.0)
    cum_b = float(np.prod(1.0 + totals[:, 1]) - 1.0)
    for frame in linked.values():
        residual = max(residual, abs(float(frame["total"].sum()) - (cum_r - cum_b)))
    if residual > CHECK_TOLERANCE:
        raise IndexlabError(
            f"attribution effects miss the active return by {residual:.3g} (a bug: please report)"
        )
    periods = pd.DataFrame(
        {
            "start": starts,
            "end": pd.to_datetime(ds.dates[cuts[1:]]),
            "index_return": totals[:, 0],
            "benchmark_return": totals[:, 1],
            "active": totals[:, 0] - totals[:, 1],
            "carino_scale": scale,
        }
    )
    cumulative = pd.Series(
        {"index_return": cum_r, "benchmark_return": cum_b, "active": cum_r - cum_b}
    )
    return Attribution(
        index=index_name(index),
        benchmark=index_name(benchmark, "benchmark"),
        returns=returns,
        linking="carino",
        periods=periods,
        cumulative=cumulative,
        by_period=by_period,
        linked=linked,
        residual=residual,
    )


def _held(sched: Any, t: int, values: FloatArray) -> FloatArray:
    """The schedule's weights at the close of day ``t``: the last set on or before it, drifted."""
    j = int(np.searchsorted(sched.days, t, side="right")) - 1
    w = sched.weights[j]
    d = int(sched.days[j])
    return w if d == t else drift(w, values[d], values[t])


def _codes(
    ds: Dataset, grouping: str, days: IntArray, known: dict[int, pd.DataFrame]
) -> tuple[IntArray, list[str]]:
    """Group codes ``(P, N)`` as known on each day (``known`` caches the master per day)."""
    if grouping == "name":
        n = len(ds.ids)
        return np.tile(np.arange(n), (len(days), 1)), [str(i) for i in ds.ids]
    for t in days:
        if int(t) not in known:
            known[int(t)] = ds.securities_at(ds.dates[t])
    values = np.stack([known[int(t)][grouping].astype(str).to_numpy() for t in days])
    labels, codes = np.unique(values, return_inverse=True)
    return codes.reshape(values.shape).astype(np.int64), [str(x) for x in labels]


def _long(
    starts: pd.DatetimeIndex,
    labels: list[str],
    effects: FloatArray,
    wpg: FloatArray,
    wbg: FloatArray,
) -> pd.DataFrame:
    p, g = wpg.shape
    frame = pd.DataFrame(
        {
            "start": np.repeat(starts.to_numpy(), g),
            "group": np.tile(np.asarray(labels, dtype=object), p),
            "index_weight": wpg.ravel(),
            "benchmark_weight": wbg.ravel(),
            "allocation": effects[..., 0].ravel(),
            "selection": effects[..., 1].ravel(),
            "interaction": effects[..., 2].ravel(),
        }
    )
    frame["total"] = frame[list(EFFECTS)].sum(axis=1)
    keep = (frame["index_weight"] != 0) | (frame["benchmark_weight"] != 0)
    return frame[keep].reset_index(drop=True)
