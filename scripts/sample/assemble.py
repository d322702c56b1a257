"""Assemble the panel, the securities master and the classification history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sample import master as M
from sample.hk_prices import SAMPLE_START, Series, remove_dividends

PANEL_COLUMNS = [
    "close",
    "total_return",
    "shares_outstanding",
    "free_float_factor",
    "turnover_value",
    "turnover_shares",
]
UNIVERSE_COMPLETE_UNTIL = pd.Timestamp("2025-10-30")
APPROX_WINDOW = 250


def hk_rows(series: dict[str, Series]) -> pd.DataFrame:
    """Long HK rows on the HK trading calendar, from each name's first to last row.

    ``close`` is the price (dividends removed where the source gives them), ``total_return``
    the back-adjusted close, turnover value ``close x volume``.
    """
    frames = []
    for sec, s in series.items():
        f = s.frame.copy()
        f["price"] = remove_dividends(f, s.dividends_known)
        frames.append(f.assign(id=sec))
    long = pd.concat(frames, ignore_index=True)
    calendar = pd.DatetimeIndex(np.sort(long.loc[long["close"].notna(), "date"].unique()))
    rows = []
    for sec, f in zip(series, frames, strict=True):
        span = calendar[(calendar >= f["date"].min()) & (calendar <= f["date"].max())]
        g = f.set_index("date").reindex(span).rename_axis("date").reset_index()
        out = pd.DataFrame({"date": g["date"], "id": sec})
        out["close"] = g["price"]
        out["total_return"] = g["close"]
        out["turnover_shares"] = g["volume"].where(g["price"].notna())
        out["turnover_value"] = g["price"] * out["turnover_shares"]
        rows.append(out)
    panel = pd.concat(rows, ignore_index=True)
    return panel[panel["date"] >= SAMPLE_START].reset_index(drop=True)


def shares_and_float(
    panel: pd.DataFrame, raw: Path, ids: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-row shares and free-float factor, and per-id provenance (source, kind, as_of)."""
    points = M.share_points(raw)
    floats = M.float_points(raw)
    cited = points[points["id"].isin(ids)]
    by_id = {k: g for k, g in cited.groupby("id")}
    # Turnover-implied approximation for names with no cited count: the median daily turnover
    # (in shares) over their last APPROX_WINDOW days divided by the median daily turnover ratio
    # of the cited names over the same window. Ranking-grade only; flagged per name.
    traded = panel[panel["turnover_shares"] > 0]
    med_vol = traded.groupby("id").tail(APPROX_WINDOW).groupby("id")["turnover_shares"].median()
    ratios = [
        med_vol[k] / g["shares"].iloc[-1]
        for k, g in by_id.items()
        if k in med_vol and med_vol[k] > 0
    ]
    typical_ratio = float(np.median(ratios))
    known_ff = [x for x in cited["free_float"].dropna() if 0 < x <= 1]
    ff_default = float(np.median(known_ff)) if known_ff else 0.7
    prov, parts = [], []
    for sec, g in panel.groupby("id", sort=False):
        dates = pd.DatetimeIndex(g["date"])
        if sec in by_id:
            p = by_id[sec].set_index("as_of")
            shares = M.step(p["shares"], dates)
            src = "; ".join(f"{d.date()}: {s}" for d, s in zip(p.index, p["source"], strict=True))
            kind, as_of = "cited", ", ".join(str(d.date()) for d in p.index)
        else:
            shares = np.full(len(g), med_vol.get(sec, np.nan) / typical_ratio)
            src = (
                f"approximation: median daily turnover over the last {APPROX_WINDOW} days / "
                f"typical turnover ratio {typical_ratio:.5f} of names with cited counts"
            )
            kind, as_of = "approximation", ""
        ff_pts = (
            by_id[sec].set_index("as_of")["free_float"].dropna()
            if sec in by_id
            else pd.Series(dtype=float)
        )
        fl = floats[floats["id"] == sec].set_index("as_of")["float_shares"]
        if len(ff_pts):
            ff, ff_src = M.step(ff_pts.clip(0.05, 1.0), dates), "cited free-float fraction"
        elif len(fl):
            ratio = (
                fl / pd.Series(M.step(pd.Series(shares, index=dates), fl.index), index=fl.index)
            ).clip(0.05, 1.0)
            ff, ff_src = M.step(ratio, dates), "yfinance floatShares / shares (noisy; HSI members)"
        else:
            ff, ff_src = np.full(len(g), ff_default), f"default {ff_default:.3f} (median of cited)"
        parts.append(
            pd.DataFrame({"shares_outstanding": shares, "free_float_factor": ff}, index=g.index)
        )
        prov.append((sec, kind, src, as_of, ff_src))
    cols = pd.concat(parts).sort_index()
    provenance = pd.DataFrame(
        prov, columns=["id", "shares_kind", "shares_source", "shares_as_of", "ff_source"]
    )
    return cols, provenance


def listing_dates(panel: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Listing date per id: the earlier master's where it has one, else the first traded day
    (names already trading when the raw file starts are listed on or before that day)."""
    first = panel.groupby("id")["date"].min()
    rows = []
    for sec, day in first.items():
        if sec in old.index and pd.notna(old.loc[sec, "listing_date"]):
            rows.append(
                (
                    sec,
                    pd.Timestamp(old.loc[sec, "listing_date"]),
                    str(old.loc[sec, "listing_date_source"]),
                )
            )
        elif day <= SAMPLE_START:
            rows.append((sec, day, "trading when the sample starts: listed on or before this day"))
        else:
            rows.append((sec, day, "first traded day in the raw data"))
    return pd.DataFrame(rows, columns=["id", "listing_date", "listing_date_source"]).set_index("id")


def connect_history(panel: pd.DataFrame, wvr: pd.Series, listing: pd.Series) -> pd.DataFrame:
    """Southbound eligibility proxy, re-judged at each month end: (id, valid_from, eligible)."""
    hk = panel[panel["id"].str.endswith(".HK")]
    mcap = (hk["close"] * hk["shares_outstanding"]).to_numpy()
    wide = pd.DataFrame({"date": hk["date"], "id": hk["id"], "mcap": mcap}).pivot(
        index="date", columns="id", values="mcap"
    )
    avg = wide.rolling(252, min_periods=20).mean()
    month_end = avg.groupby(avg.index.to_period("M")).tail(1)
    rows = []
    for sec in wide.columns:
        ok = month_end[sec] >= M.CONNECT_MIN_MCAP_HKD
        if bool(wvr.get(sec, False)):
            ok &= (month_end.index - listing[sec]).days >= M.CONNECT_WVR_WAIT_DAYS
        prev = None
        for day, v in ok.items():
            if prev is None or bool(v) != prev:
                rows.append((sec, day, bool(v)))
                prev = bool(v)
    return pd.DataFrame(rows, columns=["id", "valid_from", "connect_eligible"])
