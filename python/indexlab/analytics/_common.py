"""Shared input checks and schedule alignment for the index-product analytics.

Every public function of :mod:`indexlab.analytics` validates here, once, and raises
:class:`~indexlab.DataError` naming the argument, what was expected and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab.backtest import _as_schedule
from indexlab.data import Dataset
from indexlab.errors import DataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_dataset(dataset: Any) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise DataError(f"dataset must be an indexlab.Dataset, got {type(dataset).__name__}")
    return dataset


def positive_number(value: Any, name: str) -> float:
    """A finite number > 0 (``aum_hkd``, ``max_days``)."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not np.isfinite(float(value)) or float(value) <= 0:
        raise DataError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def participation_rate(value: Any, name: str = "participation") -> float:
    """A fraction of daily traded value in (0, 1]."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not np.isfinite(float(value)) or not 0.0 < float(value) <= 1.0:
        raise DataError(f"{name} must be a fraction of daily traded value in (0, 1], got {value!r}")
    return float(value)


def benchmark_name(dataset: Dataset, value: Any, name: str = "benchmark") -> str:
    """A benchmark level series of the dataset (``"HSTECH"``, ``"HSI"``)."""
    known = [str(c) for c in dataset.benchmarks.columns]
    if not isinstance(value, str) or value not in known:
        raise DataError(f"{name} must be one of the dataset's benchmarks {known}, got {value!r}")
    return value


def day_index(dataset: Dataset, value: Any, name: str, lo: int = 0, hi: int | None = None) -> int:
    """The trading day (index into ``dataset.dates``) on or before ``value``, inside
    ``[lo, hi]``; a date outside raises naming the argument and the bounds."""
    dates = dataset.dates
    hi = len(dates) - 1 if hi is None else hi
    try:
        day = np.datetime64(pd.Timestamp(value).date(), "D")
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{name} must be a date, got {value!r}") from None
    first, last = dates[lo], dates[hi]
    if day < first or day > last:
        raise DataError(
            f"{name} {day} is outside the history: expected a date from {first} to {last}"
        )
    return int(np.searchsorted(dates, day, side="right")) - 1


@dataclass(frozen=True)
class Aligned:
    """A weight schedule on the dataset's calendar and ids: ``days`` (trading-day index of
    each rebalance, where the weights are set at the close) and dense ``weights`` (R x N)."""

    days: IntArray
    weights: FloatArray


def aligned(dataset: Dataset, index: Any, name: str = "index") -> Aligned:
    """Any schedule :func:`indexlab.backtest` accepts, on the dataset's calendar and ids.

    Rebalance dates map to the first trading day on or after them (as in the backtest); dates
    past the data are dropped; two on one day keep the later.
    """
    dates, ids, w = _as_schedule(index, name)
    universe = pd.Index(dataset.ids)
    cols = universe.get_indexer(pd.Index(ids))
    unknown = (cols < 0) & (w != 0).any(axis=0)
    if unknown.any():
        raise DataError(
            f"{name} holds ids not in the dataset: {list(np.asarray(ids)[unknown][:5])}"
        )
    pos = np.searchsorted(dataset.dates, dates, side="left")
    keep = pos < len(dataset.dates)
    keep &= np.append(pos[1:] != pos[:-1], True)
    if not keep.any():
        raise DataError(
            f"{name} has no rebalance inside the data ({dataset.dates[-1]} is the last day)"
        )
    dense = np.zeros((int(keep.sum()), len(universe)))
    dense[:, cols[cols >= 0]] = w[keep][:, cols >= 0]
    return Aligned(pos[keep].astype(np.int64), dense)


def drift(weights: FloatArray, start: FloatArray, end: FloatArray) -> FloatArray:
    """Weights ``weights`` set when values were ``start``, drifted to values ``end``
    (renormalised); a name without a value keeps its weight flat."""
    with np.errstate(invalid="ignore", divide="ignore"):
        growth = np.where(weights != 0, end / start, 1.0)
    growth = np.where(np.isfinite(growth), growth, 1.0)
    grown = weights * growth
    total = grown.sum()
    return np.asarray(grown / total if total > 0 else grown, dtype=np.float64)


def index_name(index: Any, default: str = "index") -> str:
    rules = getattr(index, "rules", None)
    return str(getattr(rules, "name", default)) if rules is not None else default
