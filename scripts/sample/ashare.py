"""A-share AI-chain names: two unadjusted vendor files per name (plus a 2025-26 extension for
Cambricon), merged where they agree, with bonus/capitalisation issues neutralised.

A-share files here are raw prices: a bonus issue shows as a one-day drop past the daily price
limit. :func:`detect_bonus` finds those and estimates the factor; the total-return chain divides
them out and the share count is scaled back by them, so ``close x shares`` stays continuous.
Cash dividends are not in these files, so the chain is a price return.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BONUS_GRID = np.round(np.arange(1.1, 3.05, 0.1), 1)
# Bonus issues that fall inside the 2023-04..2024-07 coverage gap of the two ChiNext names.
# They cannot be detected from prices (no rows), so the link across the gap uses these.
GAP_BONUS = {
    "300502.SZ": 1.4,  # 2022 annual plan: 10-for-4 capitalisation, ex-date June 2023 (cited)
    "300308.SZ": 1.4,  # 2023 annual plan: 10-for-4 capitalisation, June 2024 (UNVERIFIED)
}
# Later extensions (raw daily files that start after the two main sources end).
EXTENSIONS = {"688256.SH": ("chenyihui_ashare", "688256.csv")}


def read_chenyihui(path: Path) -> pd.DataFrame:
    """Read chenyihui_ashare (date, OHLC, volume in shares; no amount: close x volume)."""
    df = pd.read_csv(path)
    df["date"] = pd.to_datetime(df["date"])
    df = df.rename(columns={"volume": "shares"})
    df["amount"] = df["close"] * df["shares"]  # approximate traded value
    return df[["date", "open", "high", "low", "close", "amount", "shares"]]


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
    if f"{code}" in {k.split(".")[0] for k in EXTENSIONS}:
        sec = next(k for k in EXTENSIONS if k.startswith(code))
        folder, name = EXTENSIONS[sec]
        ext = read_chenyihui(raw / folder / name)
        assert ext["date"].min() > df["date"].max(), f"{code}: extension overlaps"
        df = pd.concat([df, ext], ignore_index=True)
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


def ashare_panel(
    raw: Path, ids: list[str], shares: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A-share panel rows (``close`` bonus-adjusted to today's share count) and a log of every
    corporate-action adjustment.

    ``close`` is the price chain with bonus issues divided out, ending at the last raw close, so
    ``close x shares`` (today's count) is the market cap on every day; ``total_return`` is the
    same chain (the files carry no cash dividends). Turnover in shares is scaled the same way.
    """
    merged = {s: merge_ashare(raw, s.split(".")[0]) for s in ids}
    calendar = pd.DatetimeIndex(sorted(set().union(*[set(d["date"]) for d in merged.values()])))
    rows, log = [], []
    for sec, df in merged.items():
        span = calendar[(calendar >= df["date"].min()) & (calendar <= df["date"].max())]
        df = df.set_index("date").reindex(span).rename_axis("date").reset_index()
        factor = link_gap(sec, df, detect_bonus(sec.split(".")[0], df))
        chain = total_return_index(df, factor)
        raw_close = df["close"].copy()
        last = raw_close.last_valid_index()
        df["close"] = chain * (raw_close[last] / chain[last])
        df["total_return"] = df["close"]
        later = factor[::-1].cumprod()[::-1].shift(-1, fill_value=1.0)  # factors after date t
        df["shares_outstanding"] = shares[sec]
        df["turnover_value"] = df["amount"]
        df["turnover_shares"] = df["shares"] * later
        df.loc[raw_close.isna(), ["turnover_value", "turnover_shares"]] = np.nan
        for idx in factor[factor != 1.0].index:
            log.append({"id": sec, "date": df.loc[idx, "date"].date(), "factor": factor[idx]})
        rows.append(df.assign(id=sec))
    return pd.concat(rows, ignore_index=True), pd.DataFrame(log)
