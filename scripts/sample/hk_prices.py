"""Hong Kong daily prices: read each raw source, clean it, and join sources that cover one name.

Every yfinance file here is split- and dividend-back-adjusted as of its pull date, so two pulls
of one name differ by a constant factor; they are joined only where their daily returns agree on
the overlap (:func:`join_on_returns` asserts it). The dividend columns that some pulls carry let
the price (dividends not reinvested) be recovered from the adjusted close: see
:func:`remove_dividends`.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

SAMPLE_START = pd.Timestamp("2019-01-02")

# yfinance flat zero-volume rows on these half-day sessions carry a real close (SOURCES.md).
LUNAR_NEW_YEAR_EVES = {
    "2019-02-04",
    "2020-01-24",
    "2021-02-11",
    "2022-01-31",
    "2023-01-20",
    "2024-02-09",
    "2025-01-28",
    "2026-02-16",
}
# Rows captured during the trading day, not closes.
INTRADAY_ROWS = {"2026-08-27"}
# Tushare rows whose volume/amount came from another vendor and are not traded value.
TUSHARE_BAD_VOLUME_DATES = {"2026-06-30"}
# Largest daily-return gap tolerated where two pulls of one name overlap (float noise and the
# odd stale row; a real disagreement, such as a missed split, is orders of magnitude larger).
RETURN_TOLERANCE = 2e-3
RETURN_AGREEMENT_SHARE = 0.98

TUSHARE_FILES = {
    "2513.HK": "Zhipu_KnowledgeAtlas_daily.csv",
    "0100.HK": "MiniMax_daily.csv",
    "1956.HK": "WengeAI_daily.csv",
}


@dataclass
class Series:
    """One name's cleaned daily rows plus where they came from."""

    id: str
    frame: pd.DataFrame  # date, close (adjusted or raw), volume, dividend (cash, or NaN if unknown)
    source: str
    dividends_known: tuple[pd.Timestamp, pd.Timestamp] | None  # span whose dividends are in frame


def read_yf_history(path: str) -> pd.DataFrame:
    """A ``Ticker.history`` CSV (george, zjplab): tz-aware dates, OHLCV, Dividends, Stock Splits."""
    df = pd.read_csv(path)
    df["date"] = pd.to_datetime(df["Date"].str[:10])
    df = df.rename(
        columns={
            "Open": "open",
            "High": "high",
            "Low": "low",
            "Close": "close",
            "Volume": "volume",
            "Dividends": "dividend",
        }
    )
    return df[["date", "open", "high", "low", "close", "volume", "dividend"]]


def read_yf_download(path: str) -> pd.DataFrame:
    """A ``yf.download`` CSV (lucius): 3-line header and the column order Close,High,Low,Open."""
    df = pd.read_csv(
        path, skiprows=3, header=None, names=["date", "close", "high", "low", "open", "volume"]
    )
    df["date"] = pd.to_datetime(df["date"])
    df["dividend"] = np.nan
    return df[["date", "open", "high", "low", "close", "volume", "dividend"]]


def read_tushare(path: Path) -> pd.DataFrame:
    """A Tushare ``hk_daily`` CSV: raw prices, ``vol`` in shares, YYYYMMDD dates."""
    df = pd.read_csv(path)
    df["date"] = pd.to_datetime(df["trade_date"].astype(str), format="%Y%m%d")
    df = df.rename(columns={"vol": "volume"}).sort_values("date")
    bad = df["date"].dt.strftime("%Y-%m-%d").isin(TUSHARE_BAD_VOLUME_DATES)
    df.loc[bad, "volume"] = np.nan
    df["dividend"] = 0.0  # new listings: no dividend in their short history
    return df[["date", "open", "high", "low", "close", "volume", "dividend"]].reset_index(drop=True)


def is_half_day(dates: pd.Series) -> pd.Series:
    """Dec 24, Dec 31 and Lunar New Year's Eve: half-day sessions with a real close."""
    md = dates.dt.strftime("%m-%d")
    return md.isin(["12-24", "12-31"]) | dates.dt.strftime("%Y-%m-%d").isin(LUNAR_NEW_YEAR_EVES)


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """Drop placeholder, weekend and intraday rows; blank stale flat zero-volume closes."""
    df = df[df["close"].notna() & (df["date"].dt.dayofweek < 5)]
    df = df[~df["date"].dt.strftime("%Y-%m-%d").isin(INTRADAY_ROWS)].copy()
    traded = df["volume"] > 0
    if traded.any():  # rows before the first real trade are placeholders, not prices
        df = df[df["date"] >= df.loc[traded, "date"].min()].copy()
    flat = (
        (df["volume"].fillna(0) == 0)
        & (df["open"] == df["close"])
        & (df["high"] == df["close"])
        & (df["low"] == df["close"])
    )
    half = is_half_day(df["date"])
    df.loc[flat & ~half, "close"] = np.nan  # stale placeholder (e.g. 2022-03-14, 2024-01-15)
    df.loc[flat, "volume"] = np.nan  # zero volume is a yfinance artefact, not a real count
    assert df["date"].is_unique, "duplicate dates in an HK file"
    return df.reset_index(drop=True)


def returns_agree(a: pd.DataFrame, b: pd.DataFrame, what: str) -> pd.DatetimeIndex:
    """Assert two pulls agree on daily returns over their overlap; return the overlap dates."""
    sa = a.set_index("date")["close"].dropna()
    sb = b.set_index("date")["close"].dropna()
    common = sa.index.intersection(sb.index)
    assert len(common) >= 5, f"{what}: only {len(common)} overlapping days"
    ra = sa[common].pct_change().iloc[1:]
    rb = sb[common].pct_change().iloc[1:]
    close_enough = (ra - rb).abs() <= RETURN_TOLERANCE
    share = float(close_enough.mean())
    assert share >= RETURN_AGREEMENT_SHARE, (
        f"{what}: daily returns agree on only {share:.1%} of {len(common)} overlapping days"
    )
    return common


def join_on_returns(base: pd.DataFrame, later: pd.DataFrame, what: str) -> pd.DataFrame:
    """``later``'s rows wherever it has them, ``base``'s rows (rescaled) on the days it lacks.

    ``later`` is the newer pull: its last close is the unadjusted price and it carries the cash
    dividends, so its scale is kept. The two are joined only after :func:`returns_agree` holds
    on the overlap; ``base`` is rescaled by the ratio of closes on the last common day.
    """
    common = returns_agree(base, later, what)
    last = common.max()
    ratio = float(
        later.set_index("date").loc[last, "close"] / base.set_index("date").loc[last, "close"]
    )
    extra = base[~base["date"].isin(later["date"])].copy()
    for col in ("open", "high", "low", "close"):
        extra[col] = extra[col] * ratio
    extra["dividend"] = 0.0
    out = pd.concat([later, extra], ignore_index=True).sort_values("date")
    return out.reset_index(drop=True)


def remove_dividends(
    df: pd.DataFrame, known: tuple[pd.Timestamp, pd.Timestamp] | None
) -> npt.NDArray[np.float64]:
    """The price (split-adjusted, dividends not reinvested) from the back-adjusted close.

    yfinance multiplies every close before an ex-date ``e`` by ``1 - d / p``, with ``d`` the
    cash dividend and ``p`` the unadjusted close the day before. Walking back from the last date
    with ``C`` the product of the factors seen so far: ``p = adj / C + d``, then
    ``C *= 1 - d / p``. Dividends outside the span whose dividends are known cannot be undone:
    there the price keeps the factor reached at the span's edge (PROVENANCE.md says where).
    """
    adj = df["close"].to_numpy(dtype=np.float64)
    if known is None:
        return adj.copy()
    div = df["dividend"].fillna(0.0).to_numpy(dtype=np.float64)
    inside = (df["date"] >= known[0]).to_numpy() & (df["date"] <= known[1]).to_numpy()
    valid = ~np.isnan(adj)
    price = np.full(len(adj), np.nan)
    factor = 1.0
    for t in range(len(adj) - 1, -1, -1):
        if valid[t]:
            price[t] = adj[t] / factor
        if div[t] > 0 and inside[t]:
            before = np.flatnonzero(valid[:t])
            if before.size:
                p = adj[before[-1]] / factor + div[t]
                factor *= 1.0 - div[t] / p
    return price


def load_hk(raw: Path) -> dict[str, Series]:
    """Every HK name: lucius (whole HSCI to 2025-10-30), extended by zjplab to 2026-08-21 where
    it has the name, with george's dividends for 2020-01..2025-05; plus the 2026 listings."""
    out: dict[str, Series] = {}
    george = {
        os.path.basename(p)[:-4]: clean(read_yf_history(p))
        for p in sorted(glob.glob(str(raw / "george_hsi_yf" / "*.HK.csv")))
    }
    zjplab = {
        os.path.basename(p)[:-4]: clean(read_yf_history(p))
        for p in sorted(glob.glob(str(raw / "zjplab_hstech_yf" / "*.HK.csv")))
    }
    for path in sorted(glob.glob(str(raw / "lucius_hsci_yf" / "*.HK.csv"))):
        sec = os.path.basename(path)[:-4]
        base = clean(read_yf_download(path))
        base = base[base["date"] >= SAMPLE_START - pd.Timedelta(days=40)].reset_index(drop=True)
        if sec in zjplab:
            later = zjplab[sec][zjplab[sec]["date"] >= base["date"].min()]
            frame = join_on_returns(base, later, f"{sec} lucius vs zjplab")
            out[sec] = Series(
                sec,
                frame,
                "zjplab_hstech_yf (to 2026-08-21) + lucius_hsci_yf",
                (later["date"].min(), later["date"].max()),
            )
        elif sec in george:
            g = george[sec]
            returns_agree(base, g, f"{sec} lucius vs george")
            frame = base.copy()  # cash dividends are amounts, not adjusted prices: no rescale
            frame["dividend"] = frame["date"].map(g.set_index("date")["dividend"])
            out[sec] = Series(
                sec,
                frame,
                "lucius_hsci_yf (dividends: george_hsi_yf)",
                (g["date"].min(), g["date"].max()),
            )
        else:
            out[sec] = Series(sec, base, "lucius_hsci_yf", None)
    for sec, name in TUSHARE_FILES.items():
        frame = clean(read_tushare(raw / "ericxu_hk_ai_tushare" / name))
        out[sec] = Series(
            sec,
            frame,
            "ericxu_hk_ai_tushare (Tushare, unadjusted)",
            (frame["date"].min(), frame["date"].max()),
        )
    return out
