"""Tiny hand-made markets for tests that work numbers out by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import indexlab
import numpy as np
import pandas as pd

#: Every cost of the cost model set to zero: weights-based and level-based results then agree
#: exactly, so hand-worked numbers need no cost terms.
ZERO_COSTS = indexlab.HKCosts(
    commission=0.0,
    hk_stamp_duty=0.0,
    hk_trading_fee=0.0,
    hk_sfc_levy=0.0,
    hk_afrc_levy=0.0,
    a_stamp_duty_sell=0.0,
    a_handling_fee=0.0,
)


def security_row(id: str, **overrides: Any) -> dict[str, Any]:
    """One securities-master row: an HK IT name listed in 2020 with no AI line; ``overrides``
    change any column."""
    row: dict[str, Any] = {
        "id": id,
        "name": id,
        "market": "HK",
        "currency": "HKD",
        "listing_date": "2020-01-02",
        "delisting_date": None,
        "industry": "Information Technology",
        "listing_type": "primary",
        "wvr": False,
        "connect_eligible": True,
        "ai_layer": "none",
        "ai_score": 0.0,
    }
    return row | overrides


def hand_dataset(
    close: Any,
    total_return: Any = None,
    shares: Any = None,
    ids: Sequence[str] = ("A.HK", "B.HK", "C.HK"),
) -> indexlab.Dataset:
    """HK names listed in 2020, business days from 2024-01-01; ``total_return`` defaults to
    ``close`` and ``shares`` to 1e9 (NaN where the close is NaN)."""
    arr = np.array(close, dtype=float)
    n = arr.shape[1]
    names = list(ids[:n])
    sec = pd.DataFrame([security_row(i) for i in names])
    ones = np.where(np.isnan(arr), np.nan, 1.0)
    fields = {
        "close": arr,
        "total_return": arr if total_return is None else np.array(total_return, dtype=float),
        "shares_outstanding": ones * 1e9 if shares is None else np.array(shares, dtype=float),
        "free_float_factor": ones,
        "turnover_value": ones * 1e6,
        "turnover_shares": ones * 1e4,
    }
    dates = pd.bdate_range("2024-01-01", periods=len(arr))
    return indexlab.Dataset.from_arrays(sec, dates.to_numpy(), fields)
