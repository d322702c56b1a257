"""`indexlab demo`: the main job on the bundled sample, end to end, in seconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from indexlab.capping import cap_weights
from indexlab.data import Dataset

__all__ = ["DemoIndex", "latest_capped_index", "render"]

#: Names must have listed this many days before the date and traded within the last 20 days.
MIN_DAYS_LISTED = 90
MAX_DAYS_SINCE_TRADE = 20


@dataclass(frozen=True)
class DemoIndex:
    """A one-date capped index: the constituents table and the weight per AI layer."""

    date: pd.Timestamp
    constituents: pd.DataFrame
    by_layer: pd.Series


def latest_capped_index(
    dataset: Dataset, n: int = 30, cap: float = 0.08, market: str = "HK", date: object = None
) -> DemoIndex:
    """Top ``n`` eligible names by free-float market cap at ``date``, capped-weighted.

    Eligible: listed on ``market`` at least ``MIN_DAYS_LISTED`` days and traded within the last
    ``MAX_DAYS_SINCE_TRADE`` days of the date (point in time).
    """
    snap = dataset.snapshot(date)
    day = pd.Timestamp(dataset.dates[-1] if date is None else dataset.until(date).dates[-1])
    stale = (day - pd.to_datetime(snap["last_trade"])).dt.days
    eligible = snap[
        (snap["market"] == market)
        & (snap["days_listed"] >= MIN_DAYS_LISTED)
        & (stale <= MAX_DAYS_SINCE_TRADE)
        & snap["free_float_mcap_hkd"].notna()
    ]
    top = eligible.nlargest(n, "free_float_mcap_hkd").reset_index(drop=True)
    top["weight"] = cap_weights(top["free_float_mcap_hkd"].to_numpy(), cap=cap)
    columns = ["id", "name", "ai_layer", "ai_score", "free_float_mcap_hkd", "weight"]
    table = top[columns].sort_values("weight", ascending=False, kind="stable")
    by_layer = table.groupby("ai_layer")["weight"].sum().sort_values(ascending=False)
    return DemoIndex(day, table.reset_index(drop=True), by_layer)


def render(index: DemoIndex, cap: float) -> str:
    """A readable text report of a :class:`DemoIndex`."""
    t = index.constituents.copy()
    t.index = np.arange(1, len(t) + 1)
    t["free_float_mcap_hkd"] = (t["free_float_mcap_hkd"] / 1e9).map("{:,.1f}".format)
    t["weight"] = (t["weight"] * 100).map("{:.2f}%".format)
    t["ai_score"] = t["ai_score"].map("{:.2f}".format)
    t = t.rename(columns={"free_float_mcap_hkd": "ff mcap (HK$ bn)", "ai_layer": "AI layer"})
    layers = (index.by_layer * 100).map("{:.2f}%".format).to_string()
    n = len(index.constituents)
    return (
        f"indexlab demo: {n}-name free-float market-cap index capped at {cap:.0%} "
        f"as of {index.date.date()}\n\n{t.to_string()}\n\nWeight per AI layer:\n{layers}\n"
    )
