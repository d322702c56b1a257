"""Build the bundled ``hk_tech`` real-price sample dataset from the raw public files.

Usage::

    python scripts/build_hk_tech.py --raw ../shared/data/raw \
        --out python/indexlab/datasets/hk_tech

Inputs are the byte-exact third-party files documented in ``<raw>/SOURCES.md`` plus the
hand-curated ``scripts/hk_tech_master.csv``.  Outputs (zstd Parquet, deterministic):
``securities.parquet``, ``panel.parquet``, ``fx.parquet``, ``benchmarks.parquet``.
``PROVENANCE.md`` in the output folder is written by hand and is not touched here.
Only numpy, pandas, pyarrow and openpyxl are used.
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE_START = pd.Timestamp("2019-01-02")
MASTER_CSV = Path(__file__).with_name("hk_tech_master.csv")

# yfinance flat zero-volume rows on these half-day sessions carry a real close (SOURCES.md).
LUNAR_NEW_YEAR_EVES = {
    "2019-02-04",
    "2020-01-24",
    "2021-02-11",
    "2022-01-31",
    "2023-01-20",
    "2024-02-09",
    "2025-01-28",
}

# HSI rows that SOURCES.md flags: intraday capture and a stale flat zero-volume placeholder.
HSI_BAD_DATES = {"2026-08-27", "2026-08-04"}
HSTECH_INTRADAY_DATE = "2024-11-13"

# Bonus issues that fall inside the 2023-04..2024-07 coverage gap of the two ChiNext names.
# They cannot be detected from prices (no rows), so the link across the gap uses these.
GAP_BONUS = {
    "300502.SZ": 1.4,  # 2022 annual plan: 10-for-4 capitalisation, ex-date June 2023 (cited)
    "300308.SZ": 1.4,  # 2023 annual plan: 10-for-4 capitalisation, June 2024 (UNVERIFIED)
}

# PBOC/CFETS central parity, CNY per 100 HKD, as published by Xinhua "Market exchange
# rates in China" releases (sources listed in PROVENANCE.md).  Step-forward-filled.
CNY_PER_100_HKD = {
    "2019-02-21": 85.648,
    "2019-04-08": 85.613,
    "2020-01-23": 88.593,
    "2020-04-22": 91.486,
    "2020-07-31": 90.125,
    "2020-08-03": 90.294,
    "2021-02-23": 83.206,
    "2021-05-11": 82.736,
    "2021-08-02": 83.185,
    "2021-10-19": 82.679,
    "2022-01-24": 81.422,
    "2022-05-23": 85.063,
    "2022-07-04": 85.469,
    "2022-09-22": 88.917,
    "2022-11-30": 91.869,
    "2023-01-16": 85.958,
    "2023-03-17": 87.969,
    "2023-04-25": 87.715,
    "2023-07-19": 91.490,
    "2023-09-18": 91.663,
    "2024-04-22": 90.696,
    "2024-07-16": 91.368,
    "2024-08-16": 91.654,
    "2024-09-24": 90.545,
    "2024-12-19": 92.526,
    "2025-01-06": 92.406,
    "2025-01-14": 92.346,
    "2025-01-21": 92.129,
    "2025-02-25": 92.245,
    "2025-07-16": 91.121,
}

FLOAT_FILE = "per_ticker_details_HSI_2025-09-28_vs_2025-10-11.csv"  # run 2025-10-12
BONUS_GRID = np.round(np.arange(1.1, 3.05, 0.1), 1)
PANEL_COLUMNS = [
    "close",
    "total_return",
    "shares_outstanding",
    "free_float_factor",
    "turnover_value",
    "turnover_shares",
]


# --------------------------------------------------------------------------- HK prices
def read_george(path: str) -> pd.DataFrame:
    """Read a george_hsi_yf file (OHLCV, tz-aware dates) into the common OHLCV shape."""
    df = pd.read_csv(path)
    df["date"] = pd.to_datetime(df["Date"].str[:10])
    df = df.rename(
        columns={"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
    )
    return df[["date", "open", "high", "low", "close", "volume"]]


def read_lucius(path: str) -> pd.DataFrame:
    """Read a lucius_hsci_yf file; its 3-line header hides the Close,High,Low,Open order."""
    df = pd.read_csv(
        path, skiprows=3, header=None, names=["date", "close", "high", "low", "open", "volume"]
    )
    df["date"] = pd.to_datetime(df["date"])
    return df[["date", "open", "high", "low", "close", "volume"]]


def is_half_day(dates: pd.Series) -> pd.Series:
    """Flag Dec 24, Dec 31 and Lunar New Year's Eve: half-day sessions with a real close."""
    md = dates.dt.strftime("%m-%d")
    return md.isin(["12-24", "12-31"]) | dates.dt.strftime("%Y-%m-%d").isin(LUNAR_NEW_YEAR_EVES)


def clean_hk(df: pd.DataFrame) -> pd.DataFrame:
    """Drop placeholder rows and blank stale yfinance rows, per SOURCES.md caveats."""
    df = df.dropna(subset=["close"])
    df = df[(df["date"].dt.dayofweek < 5) & (df["date"] >= SAMPLE_START)].copy()
    flat = (
        (df["volume"] == 0)
        & (df["open"] == df["close"])
        & (df["high"] == df["close"])
        & (df["low"] == df["close"])
    )
    half = is_half_day(df["date"])
    df.loc[flat & ~half, "close"] = np.nan  # stale placeholder (e.g. 2022-03-14, 2024-01-15)
    df.loc[flat, "volume"] = np.nan  # zero volume is a yfinance artefact, not a real count
    assert df["date"].is_unique, "duplicate dates in an HK file"
    return df.reset_index(drop=True)


def load_hk_prices(raw: Path) -> dict[str, pd.DataFrame]:
    """Load every HK name, preferring lucius (longer, later) over george for shared tickers."""
    out: dict[str, pd.DataFrame] = {}
    for path in sorted(glob.glob(str(raw / "george_hsi_yf" / "*.HK.csv"))):
        out[os.path.basename(path)[:-4]] = clean_hk(read_george(path))
    for path in sorted(glob.glob(str(raw / "lucius_hsci_yf" / "*.HK.csv"))):
        out[os.path.basename(path)[:-4]] = clean_hk(read_lucius(path))
    return out


def hk_panel(prices: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Reindex each HK name on the HK trading calendar between its first and last row."""
    frames = [df.assign(id=sec) for sec, df in prices.items()]
    long = pd.concat(frames, ignore_index=True)
    traded = long.dropna(subset=["close"]).groupby("date").size()
    calendar = traded.index.sort_values()  # dates on which at least one HK name traded
    rows = []
    for sec, df in prices.items():
        span = calendar[(calendar >= df["date"].min()) & (calendar <= df["date"].max())]
        g = df.set_index("date").reindex(span)
        g.index.name = "date"
        g = g.reset_index().assign(id=sec)
        g["total_return"] = g["close"]  # yfinance adjusted close = dividend/split back-adjusted
        g["turnover_shares"] = g["volume"]
        g["turnover_value"] = g["close"] * g["volume"]  # approximate: adjusted close x volume
        g.loc[g["close"].isna(), ["turnover_shares", "turnover_value"]] = np.nan
        rows.append(g)
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------- A-shares
def read_samleon(path: str) -> pd.DataFrame:
    """Read samleon_ashare (newest first; its 'volume' column is really CNY amount)."""
    df = pd.read_csv(path)
    df["date"] = pd.to_datetime(df["date"])
    df = df.rename(columns={"volume": "amount"}).drop_duplicates().sort_values("date")
    assert df["date"].is_unique, f"{path}: conflicting duplicate dates"  # 10 exact repeats
    vwap_proxy = df[["open", "high", "low", "close"]].mean(axis=1)
    df["shares"] = df["amount"] / vwap_proxy  # no share volume in this source: estimate
    return df[["date", "open", "high", "low", "close", "amount", "shares"]]


def read_suiwenfeng(path: str) -> pd.DataFrame:
    """Read suiwenfeng_ashare; 成交量 is in shares (amount/close/volume ~ 1.00)."""
    df = pd.read_csv(path)
    df = df.rename(
        columns={
            "日期": "date",
            "开盘价": "open",
            "最高价": "high",
            "最低价": "low",
            "收盘价": "close",
            "成交量": "shares",
            "成交额": "amount",
        }
    )
    df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    return df[["date", "open", "high", "low", "close", "amount", "shares"]]


def merge_ashare(raw: Path, code: str) -> pd.DataFrame:
    """Merge the two unadjusted A-share sources, preferring suiwenfeng on overlapping dates."""
    old = read_samleon(str(raw / "samleon_ashare" / f"{code}.csv"))
    new = read_suiwenfeng(str(raw / "suiwenfeng_ashare" / f"{code}.csv"))
    both = old.merge(new, on="date", suffixes=("_o", "_n"))
    assert (both["close_o"] - both["close_n"]).abs().max() < 1e-9 if len(both) else True, code
    df = pd.concat([old[~old["date"].isin(new["date"])], new], ignore_index=True)
    df = df.sort_values("date").reset_index(drop=True)
    df.loc[df["shares"] <= 0, "close"] = np.nan  # a zero-volume row would be a suspension
    return df


def price_limit(code: str, date: pd.Timestamp) -> float:
    """Return the daily price limit: 20% STAR/ChiNext (ChiNext 10% before 2020-08-24)."""
    if code.startswith("688"):
        return 0.20
    if code.startswith("300"):
        return 0.20 if date >= pd.Timestamp("2020-08-24") else 0.10
    return 0.10


def detect_bonus(code: str, df: pd.DataFrame) -> pd.Series:
    """Estimate bonus/split factors on days whose drop breaches the price limit."""
    valid = df.dropna(subset=["close"])
    prev = valid["close"].shift(1)
    factor = pd.Series(1.0, index=df.index)
    for pos, (idx, row) in enumerate(valid.iterrows()):
        if pos < 5 or np.isnan(prev[idx]):  # STAR/ChiNext IPOs have no limit for 5 days
            continue
        ret = row["close"] / prev[idx] - 1.0
        if ret < -(price_limit(code, row["date"]) + 0.01):
            factor[idx] = float(
                BONUS_GRID[np.argmin(np.abs(row["open"] * BONUS_GRID / prev[idx] - 1.0))]
            )
    return factor


def link_gap(sec: str, df: pd.DataFrame, factor: pd.Series) -> pd.Series:
    """Apply the known in-gap bonus factor to the first row after a >60-day coverage gap."""
    if sec not in GAP_BONUS:
        return factor
    dates = df.loc[df["close"].notna(), "date"]
    gaps = dates.diff() > pd.Timedelta(days=60)
    assert gaps.sum() == 1, f"{sec}: expected exactly one coverage gap"
    factor = factor.copy()
    factor[gaps[gaps].index[0]] = GAP_BONUS[sec]
    return factor


def total_return_index(df: pd.DataFrame, factor: pd.Series) -> pd.Series:
    """Chain close-to-close returns with bonus jumps neutralised (cash dividends excluded)."""
    valid = df["close"].notna()
    close = df.loc[valid, "close"]
    gross = close * factor[valid] / close.shift(1)
    gross.iloc[0] = 1.0
    tr = pd.Series(np.nan, index=df.index)
    tr[valid] = close.iloc[0] * gross.cumprod()
    return tr


def ashare_panel(raw: Path, master: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build A-share panel rows plus a log of every corporate-action adjustment."""
    ids = [s for s in master["id"] if not s.endswith(".HK")]
    merged = {s: merge_ashare(raw, s.split(".")[0]) for s in ids}
    calendar = pd.DatetimeIndex(sorted(set().union(*[set(d["date"]) for d in merged.values()])))
    rows, log = [], []
    for sec, df in merged.items():
        span = calendar[(calendar >= df["date"].min()) & (calendar <= df["date"].max())]
        df = df.set_index("date").reindex(span).rename_axis("date").reset_index()
        factor = link_gap(sec, df, detect_bonus(sec.split(".")[0], df))
        df["total_return"] = total_return_index(df, factor)
        anchor = float(master.set_index("id").loc[sec, "shares_outstanding"])
        later = factor[::-1].cumprod()[::-1].shift(-1, fill_value=1.0)  # factors after date t
        df["shares_outstanding"] = anchor / later
        df["turnover_value"], df["turnover_shares"] = df["amount"], df["shares"]
        df.loc[df["close"].isna(), ["turnover_value", "turnover_shares"]] = np.nan
        for idx in factor[factor != 1.0].index:
            log.append({"id": sec, "date": df.loc[idx, "date"].date(), "factor": factor[idx]})
        rows.append(df.assign(id=sec))
    return pd.concat(rows, ignore_index=True), pd.DataFrame(log)


# --------------------------------------------------------------------------- share counts
def parse_cap(text: str) -> float:
    """Turn AASTOCKS market-cap text such as '59,631.82億' into HKD."""
    text = str(text).replace(",", "").strip()
    if text.endswith("萬億"):
        return float(text[:-2]) * 1e12
    return float(text.rstrip("億")) * 1e8


def hsi_share_counts(raw: Path) -> pd.DataFrame:
    """Derive total shares (AASTOCKS cap / price) and yfinance float shares for HSI names."""
    caps = pd.read_excel(raw / "lucius0000_caps" / "AASTOCKS_Export_2025-10-11.xlsx")
    caps["id"] = caps["代號"].str[1:]
    caps["total"] = caps["市值"].map(parse_cap) / caps["現價"]
    flt = pd.read_csv(raw / "lucius0000_caps" / FLOAT_FILE)
    out = caps[["id", "total"]].merge(
        flt[["ticker", "shares"]].rename(columns={"ticker": "id"}), on="id", how="left"
    )
    out["ff"] = (out["shares"] / out["total"]).clip(0.05, 1.0)
    return out.set_index("id")


def fill_share_counts(master: pd.DataFrame, raw: Path) -> pd.DataFrame:
    """Fill blank master share counts / free-float factors from the HSI-member files."""
    hsi = hsi_share_counts(raw)
    master = master.copy()
    blank = master["shares_outstanding"].isna()
    master.loc[blank, "shares_outstanding"] = master.loc[blank, "id"].map(hsi["total"])
    master.loc[blank, "free_float_factor"] = master.loc[blank, "id"].map(hsi["ff"])
    assert master["shares_outstanding"].notna().all(), "a name has no share count"
    master["free_float_factor"] = master["free_float_factor"].clip(0.05, 1.0)
    return master


# --------------------------------------------------------------------------- FX, benchmarks
def fx_table(dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Step-forward-fill the cited CNY central-parity points onto every panel date."""
    obs = pd.Series({pd.Timestamp(k): 100.0 / v for k, v in CNY_PER_100_HKD.items()})
    rate = obs.reindex(obs.index.union(dates)).sort_index().ffill().bfill().reindex(dates)
    return pd.DataFrame({"date": dates, "currency": "CNY", "to_hkd": rate.to_numpy()})


def read_yf_index(path: Path) -> pd.Series:
    """Read a yfinance 3-line-header index file (Close first) into a level series."""
    df = pd.read_csv(path, skiprows=3, header=None, usecols=[0, 1], names=["date", "level"])
    return df.assign(date=pd.to_datetime(df["date"])).dropna().set_index("date")["level"]


def hsi_levels(raw: Path) -> pd.Series:
    """Splice tapi262 ^HSI with the later laimanto excerpt (equal on their overlap)."""
    old = read_yf_index(raw / "tapi262_yf" / "^HSI.csv")
    new = pd.read_csv(raw / "laimanto_yf" / "hsi_excerpt_2025-01-02_2026-08-27.csv")
    new = new.assign(date=pd.to_datetime(new["Date"])).set_index("date")["Close"]
    new = new[~new.index.strftime("%Y-%m-%d").isin(HSI_BAD_DATES)]
    common = old.index.intersection(new.index)
    assert np.allclose(old[common], new[common], rtol=1e-9), "HSI sources disagree on overlap"
    return pd.concat([old, new[new.index > old.index.max()]]).sort_index()


def hstech_levels(raw: Path) -> pd.Series:
    """Parse the Investing.com Chinese CSV (BOM, quoted thousands, newest first)."""
    df = pd.read_csv(
        raw / "coolcooler_investing" / "恒生科技指数历史数据.csv", encoding="utf-8-sig", dtype=str
    )
    df["date"] = pd.to_datetime(df["日期"], format="%Y-%m-%d")
    df["level"] = df["收盘"].str.replace(",", "").astype(float)
    df = df[df["date"] != pd.Timestamp(HSTECH_INTRADAY_DATE)]
    return df.set_index("date")["level"].sort_index()


def benchmarks_table(raw: Path) -> pd.DataFrame:
    """Stack HSI and HSTECH price-index levels into the long benchmarks table."""
    parts = [
        s.rename("level").reset_index().assign(index=name)
        for name, s in (("HSI", hsi_levels(raw)), ("HSTECH", hstech_levels(raw)))
    ]
    out = pd.concat(parts, ignore_index=True)[["date", "index", "level"]]
    return out.sort_values(["date", "index"]).reset_index(drop=True)


# --------------------------------------------------------------------------- assembly
def read_master() -> pd.DataFrame:
    """Read the hand-curated securities master (one row per security)."""
    m = pd.read_csv(MASTER_CSV, dtype=str, keep_default_na=False, na_values=[""])
    for col in ("shares_outstanding", "free_float_factor", "ai_score"):
        m[col] = m[col].astype(float)
    for col in ("wvr", "connect_eligible", "hk_company"):
        m[col] = m[col].map({"True": True, "False": False})
    return m


def assemble_panel(hk: pd.DataFrame, ash: pd.DataFrame, master: pd.DataFrame) -> pd.DataFrame:
    """Combine HK and A-share rows, attach share data and trim to listing dates."""
    m = master.set_index("id")
    hk = hk.assign(shares_outstanding=hk["id"].map(m["shares_outstanding"]))
    panel = pd.concat([hk, ash], ignore_index=True)
    panel["free_float_factor"] = panel["id"].map(m["free_float_factor"])
    listing = pd.to_datetime(panel["id"].map(m["listing_date"]))
    panel = panel[panel["date"] >= listing]
    panel = panel[["date", "id", *PANEL_COLUMNS]].astype({c: "float64" for c in PANEL_COLUMNS})
    return panel.sort_values(["date", "id"]).reset_index(drop=True)


def securities_table(master: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """Select the published master columns and add each name's data_end."""
    data_end = panel.groupby("id")["date"].max()
    out = master.assign(data_end=master["id"].map(data_end))
    for col in ("listing_date", "delisting_date", "data_end"):
        out[col] = pd.to_datetime(out[col]).dt.date
    cols = [
        "id",
        "name",
        "market",
        "currency",
        "listing_date",
        "delisting_date",
        "industry",
        "listing_type",
        "wvr",
        "connect_eligible",
        "hk_company",
        "ai_layer",
        "ai_score",
        "ai_rationale",
        "data_end",
    ]
    return out[cols].sort_values("id").reset_index(drop=True)


def check(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    """Assert the invariants the loader and the rules engine rely on."""
    assert not panel.duplicated(["date", "id"]).any(), "duplicate (date, id)"
    assert panel["date"].is_monotonic_increasing, "dates not sorted"
    for col in ("close", "total_return"):
        assert (panel[col].dropna() > 0).all(), f"non-positive {col}"
    assert (panel["shares_outstanding"] > 0).all(), "non-positive shares"
    ff = panel["free_float_factor"]
    assert ((ff > 0) & (ff <= 1)).all(), "free_float_factor outside (0, 1]"
    assert securities["ai_score"].between(0, 1).all(), "ai_score outside [0, 1]"
    assert set(panel["id"]) <= set(securities["id"]), "panel id missing from securities"
    listing = pd.to_datetime(panel["id"].map(securities.set_index("id")["listing_date"]))
    assert (panel["date"] >= listing).all(), "panel row before listing_date"
    assert set(panel["date"]) <= set(fx["date"]), "panel date without CNY rate"
    assert securities["id"].is_unique and set(securities["id"]) == set(panel["id"])


def to_date32(df: pd.DataFrame, cols: list[str]) -> pa.Table:
    """Convert a frame to an Arrow table with date32 columns and no pandas index."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for col in cols:
        i = table.schema.get_field_index(col)
        table = table.set_column(
            i, col, pa.array(pd.to_datetime(df[col]).dt.date, type=pa.date32())
        )
    return table.replace_schema_metadata(None)  # no pandas metadata: byte-stable output


def write(table: pa.Table, path: Path) -> None:
    """Write zstd-compressed Parquet deterministically."""
    pq.write_table(table, path, compression="zstd", compression_level=9)


def summarise(securities: pd.DataFrame, panel: pd.DataFrame, out: Path, log: pd.DataFrame) -> None:
    """Print counts by market and AI layer, the date range, adjustments and file sizes."""
    print(securities.groupby(["market", "ai_layer"]).size().unstack(fill_value=0))
    print(
        f"panel rows {len(panel):,}; dates {panel['date'].min().date()}"
        f" .. {panel['date'].max().date()}; names {panel['id'].nunique()}"
    )
    print("A-share corporate-action adjustments:\n" + log.to_string(index=False))
    for f in sorted(out.glob("*.parquet")):
        print(f"{f.name:22s} {f.stat().st_size / 1024:8.1f} KiB")


def main() -> None:
    """Parse arguments, build every table, check it and write the Parquet files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    master = fill_share_counts(read_master(), args.raw)
    hk = hk_panel(load_hk_prices(args.raw))
    ash, log = ashare_panel(args.raw, master)
    panel = assemble_panel(hk, ash, master)
    securities = securities_table(master, panel)
    fx = fx_table(pd.DatetimeIndex(sorted(panel["date"].unique())))
    bench = benchmarks_table(args.raw)
    check(securities, panel, fx)
    write(
        to_date32(securities, ["listing_date", "delisting_date", "data_end"]),
        args.out / "securities.parquet",
    )
    write(to_date32(panel, ["date"]), args.out / "panel.parquet")
    write(to_date32(fx, ["date"]), args.out / "fx.parquet")
    write(to_date32(bench, ["date"]), args.out / "benchmarks.parquet")
    summarise(securities, panel, args.out, log)


if __name__ == "__main__":
    main()
