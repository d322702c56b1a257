"""HSI and HSTECH price-index levels, spliced from several vendors where they agree.

HSTECH: Investing.com (coolcooler, back-calculated before the 2020-07-27 launch) until Sina
(amine, via akshare) starts on 2020-08-17, then bianchunhui (same Sina series) for its last days.
HSI: yfinance ^HSI (tapi262) to 2025-04-29, laimanto's yfinance excerpt to 2026-08-26, with
bianchunhui (Sina) filling laimanto's missing days. Each splice asserts agreement on the overlap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HSI_BAD_DATES = {"2026-08-27", "2026-08-04"}  # intraday capture; stale flat zero-volume row
HSTECH_INTRADAY_DATE = "2024-11-13"
# Known single-day disagreements between vendors (SOURCES.md lists them).
HSTECH_KNOWN_DIFFS = {"2021-03-26", "2021-04-27"}
HSI_KNOWN_DIFFS = {"2024-07-25"}


def read_yf_index(path: Path) -> pd.Series:
    """A yfinance 3-line-header index file (Close first) as a level series."""
    df = pd.read_csv(path, skiprows=3, header=None, usecols=[0, 1], names=["date", "level"])
    return df.assign(date=pd.to_datetime(df["date"])).dropna().set_index("date")["level"]


def agree(a: pd.Series, b: pd.Series, what: str, atol: float, known: set[str]) -> None:
    """Assert two level series agree on every shared day except the documented ones."""
    common = a.index.intersection(b.index)
    common = common[~common.strftime("%Y-%m-%d").isin(known)]
    assert len(common) > 0, f"{what}: no overlap"
    gap = (a[common] - b[common]).abs()
    assert (gap <= atol).all(), f"{what}: differ by {gap.max():.4f} on {gap.idxmax().date()}"


def splice(old: pd.Series, new: pd.Series) -> pd.Series:
    """``old`` up to where ``new`` starts, then ``new``; plus ``old``'s days that ``new`` lacks."""
    head = old[old.index < new.index.min()]
    body = pd.concat([new, old[(old.index >= new.index.min()) & ~old.index.isin(new.index)]])
    return pd.concat([head, body]).sort_index()


def bianchunhui(raw: Path, name: str) -> pd.Series:
    """One series (恒生指数 / 恒生科技) of the long-format Sina file."""
    df = pd.read_csv(raw / "bianchunhui_hsi_hstech" / "index_hsi_hstech.csv", encoding="utf-8-sig")
    df = df[df["指数"] == name]
    return df.assign(date=pd.to_datetime(df["日期"])).set_index("date")["收盘"].astype(float)


def hsi_levels(raw: Path) -> pd.Series:
    """HSI price index, 2010 .. 2026-08-26."""
    old = read_yf_index(raw / "tapi262_yf" / "^HSI.csv")
    new = pd.read_csv(raw / "laimanto_yf" / "hsi_excerpt_2025-01-02_2026-08-27.csv")
    new = new.assign(date=pd.to_datetime(new["Date"])).set_index("date")["Close"]
    new = new[~new.index.strftime("%Y-%m-%d").isin(HSI_BAD_DATES)]
    agree(old, new, "HSI tapi262 vs laimanto", 1e-6, set())
    sina = bianchunhui(raw, "恒生指数")
    agree(new, sina, "HSI laimanto vs Sina", 0.02, HSI_KNOWN_DIFFS)
    out = splice(old, new)
    fill = sina[~sina.index.isin(out.index) & (sina.index > old.index.max())]
    return pd.concat([out, fill]).sort_index()


def hstech_levels(raw: Path) -> pd.Series:
    """HSTECH price index, 2015 (back-calculated) .. 2026-07-15."""
    inv = pd.read_csv(
        raw / "coolcooler_investing" / "恒生科技指数历史数据.csv", encoding="utf-8-sig", dtype=str
    )
    inv["date"] = pd.to_datetime(inv["日期"], format="%Y-%m-%d")
    inv["level"] = inv["收盘"].str.replace(",", "").astype(float)
    inv = inv[inv["date"] != pd.Timestamp(HSTECH_INTRADAY_DATE)]
    old = inv.set_index("date")["level"].sort_index()
    sina = pd.read_csv(raw / "amine_hstech_sina" / "hstech.csv")
    sina = sina.assign(date=pd.to_datetime(sina["date"])).set_index("date")["close"]
    sina = sina.astype(float).round(2)  # float32 noise in the vendor's closes
    agree(old, sina, "HSTECH Investing.com vs Sina", 0.02, HSTECH_KNOWN_DIFFS)
    late = bianchunhui(raw, "恒生科技")
    agree(sina, late, "HSTECH Sina (amine) vs Sina (bianchunhui)", 0.02, set())
    out = splice(old, sina)
    return pd.concat([out, late[late.index > out.index.max()]]).sort_index()


def benchmarks_table(raw: Path, start: pd.Timestamp) -> pd.DataFrame:
    """Long (date, index, level) table of both price indices from ``start``."""
    parts = [
        s[s.index >= start].rename("level").reset_index().assign(index=name)
        for name, s in (("HSI", hsi_levels(raw)), ("HSTECH", hstech_levels(raw)))
    ]
    out = pd.concat(parts, ignore_index=True)[["date", "index", "level"]]
    assert np.isfinite(out["level"]).all() and (out["level"] > 0).all()
    return out.sort_values(["date", "index"]).reset_index(drop=True)
