"""The securities master: official industry, classification history, listing dates, and dated
share counts with their source.

Inputs: the HSCI constituent list (official HS industry, 2025-11-21), the hand-judged
classification files in ``scripts/master/classification_*.csv`` (one row per id and date from
which the judgement holds; rationale per row), cited share counts (``scripts/master/
shares_cited.csv`` and the AASTOCKS exports), and ``scripts/hk_tech_master.csv`` (earlier
hand-curated rows: listing dates and cited counts of the first sample).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent.parent
OLD_MASTER = HERE / "hk_tech_master.csv"
CLASSIFICATION_GLOB = os.environ.get(
    "INDEXLAB_CLASSIFICATION_GLOB", str(HERE / "master" / "classification_*.csv")
)
SHARES_CITED = HERE / "master" / "shares_cited.csv"
HSCI_DATE = pd.Timestamp("2025-11-21")
AASTOCKS = {
    "AASTOCKS_Export_2025-9-1.xlsx": "2025-09-01",
    "AASTOCKS_Export_2025-10-11.xlsx": "2025-10-10",
    "AASTOCKS_Export_2025-11-10.xlsx": "2025-11-07",
}
FLOAT_FILES = {  # yfinance floatShares, dated by the run that wrote them (SOURCES.md)
    "per_ticker_details_HSI_2025-08-22_vs_2025-08-29.csv": "2025-09-02",
    "per_ticker_details_HSI_2025-09-28_vs_2025-10-11.csv": "2025-10-12",
    "per_ticker_details_HSI_2025-12-21_vs_2026-01-03.csv": "2026-01-06",
    "per_ticker_details_HSI_2026-03-30_vs_2026-04-12.csv": "2026-04-12",
}
CLASS_FIELDS = ("tech_theme", "ai_layer", "ai_score", "listing_type", "wvr", "hk_company")
# Southbound Connect proxy: HSCI members whose trailing 12-month average market cap is at least
# HK$5bn (the small-cap threshold; large and mid caps clear it); WVR names wait 6 months + 20 days.
CONNECT_MIN_MCAP_HKD = 5e9
CONNECT_WVR_WAIT_DAYS = 203
A_SHARE_INDUSTRY = {
    "688256.SH": "Information Technology",
    "688041.SH": "Information Technology",
    "601138.SH": "Information Technology",
    "300308.SZ": "Information Technology",
    "300502.SZ": "Information Technology",
    "600519.SH": "Consumer Staples",
}


def hsci_list(raw: Path) -> pd.DataFrame:
    """The 503 HSCI members with their official HS industry (xlsx hyphenation undone)."""
    x = pd.read_excel(raw / "lucius_hsci_yf" / "HSI Composite List.xlsx")
    x = x[x["Stock Code"] != "Stock Code"].copy()
    x["id"] = x["Stock Code"].astype(int).map(lambda c: f"{c:04d}.HK")
    x["industry"] = x["Industry"].str.replace("-", "", regex=False)
    x["industry"] = x["industry"].str.replace("Dis cretionary", "Discretionary")
    return x.rename(columns={"Stock Name": "hsci_name", "ISIN Code": "isin"})[
        ["id", "hsci_name", "isin", "industry"]
    ].reset_index(drop=True)


def old_master() -> pd.DataFrame:
    m = pd.read_csv(OLD_MASTER, dtype=str, keep_default_na=False, na_values=[""])
    for col in ("shares_outstanding", "free_float_factor", "ai_score"):
        m[col] = m[col].astype(float)
    return m.set_index("id")


def classification() -> pd.DataFrame:
    """All judged rows: id, valid_from (NaT = from listing), the fields and rationales."""
    parts = [
        pd.read_csv(p, dtype=str, keep_default_na=False)
        for p in sorted(glob.glob(CLASSIFICATION_GLOB))
    ]
    assert parts, f"no classification files at {CLASSIFICATION_GLOB}"
    c = pd.concat(parts, ignore_index=True)
    c["valid_from"] = pd.to_datetime(c["valid_from"].replace("", None))
    for col in ("tech_theme", "wvr", "hk_company"):
        assert c[col].isin(["True", "False"]).all(), f"classification column {col}"
        c[col] = c[col] == "True"
    c["ai_score"] = c["ai_score"].astype(float)
    assert c["ai_score"].between(0, 1).all()
    assert not c.duplicated(["id", "valid_from"]).any(), "duplicate classification rows"
    first = c.sort_values(["id", "valid_from"], na_position="first").groupby("id").head(1)
    assert first["valid_from"].isna().all(), "each id's first row must hold from listing"
    return c.sort_values(["id", "valid_from"], na_position="first").reset_index(drop=True)


def parse_cap(text: str) -> float:
    """AASTOCKS market-cap text such as '59,631.82億' in HKD."""
    text = str(text).replace(",", "").strip()
    if text.endswith("萬億"):
        return float(text[:-2]) * 1e12
    return float(text.rstrip("億")) * 1e8


def share_points(raw: Path) -> pd.DataFrame:
    """Dated share counts: id, as_of, shares (HK-listed), free_float (or NaN), source, kind."""
    rows = []
    for name, day in AASTOCKS.items():
        caps = pd.read_excel(raw / "lucius0000_caps" / name)
        for code, cap, price in zip(caps["代號"], caps["市值"], caps["現價"], strict=True):
            rows.append(
                (
                    str(code)[1:],
                    pd.Timestamp(day),
                    parse_cap(cap) / float(price),
                    np.nan,
                    f"{name}: market cap / price",
                    "cited",
                )
            )
    if SHARES_CITED.exists():
        c = pd.read_csv(SHARES_CITED)
        for r in c.itertuples():
            shares = r.shares_hk if pd.notna(r.shares_hk) else r.shares_total
            if pd.isna(shares) or float(shares) <= 0:
                continue
            rows.append(
                (
                    r.id,
                    pd.Timestamp(r.as_of),
                    float(shares),
                    r.free_float_fraction,
                    f"{r.source_url} ({r.note})" if pd.notna(r.note) else r.source_url,
                    "cited",
                )
            )
    old = old_master()
    for sec, r in old.iterrows():
        if pd.notna(r["shares_outstanding"]):
            found = re.search(r"(20\d\d-\d\d(?:-\d\d)?)", str(r["shares_source"]))
            day = pd.Timestamp(found.group(1)) if found else pd.Timestamp("2025-06-30")
            rows.append(
                (
                    sec,
                    day,
                    r["shares_outstanding"],
                    r["free_float_factor"],
                    str(r["shares_source"]),
                    "cited",
                )
            )
    out = pd.DataFrame(rows, columns=["id", "as_of", "shares", "free_float", "source", "kind"])
    out = out.drop_duplicates(["id", "as_of"], keep="first").sort_values(["id", "as_of"])
    return out.groupby("id", group_keys=False).apply(to_latest_basis)


SPLIT_TOLERANCE = 0.06


def to_latest_basis(points: pd.DataFrame) -> pd.DataFrame:
    """Restate earlier counts on the basis of the latest one across splits and consolidations.

    The prices are split-adjusted to the pull date, so every count must be on today's basis. A
    jump between consecutive dated counts by a near-integer factor k >= 2 (or 1/k) is a split or
    consolidation, not issuance: earlier counts are divided by it. The source text says so.
    """
    points = points.sort_values("as_of").copy()
    raw_shares = points["shares"].to_numpy(dtype=np.float64)
    shares = raw_shares.copy()
    notes = points["source"].astype(str).to_numpy().copy()
    factor = 1.0  # earlier basis / latest basis, accumulated over later splits
    for j in range(len(raw_shares) - 1, 0, -1):
        ratio = raw_shares[j - 1] / raw_shares[j]
        k = ratio if ratio >= 1.0 else 1.0 / ratio
        whole = round(k)
        if whole >= 2 and abs(k - whole) <= SPLIT_TOLERANCE * whole:
            factor *= whole if ratio >= 1.0 else 1.0 / whole
        if factor != 1.0:
            shares[j - 1] = raw_shares[j - 1] / factor
            notes[j - 1] += f" [restated / {factor:.4g} for a later split or consolidation]"
    points["shares"] = shares
    points["source"] = notes
    return points


def float_points(raw: Path) -> pd.DataFrame:
    """yfinance floatShares (HSI members) as dated points: id, as_of, float_shares."""
    rows = []
    for name, day in FLOAT_FILES.items():
        f = pd.read_csv(raw / "lucius0000_caps" / name, encoding="utf-8-sig")
        rows += [
            (t, pd.Timestamp(day), float(s)) for t, s in zip(f["ticker"], f["shares"], strict=True)
        ]
    return pd.DataFrame(rows, columns=["id", "as_of", "float_shares"])


def step(points: pd.Series, dates: pd.DatetimeIndex) -> np.ndarray:
    """Each dated value from its date on; the first value also before it (back-filled)."""
    s = points.sort_index()
    s = s[~s.index.duplicated(keep="last")]
    aligned = s.reindex(s.index.union(dates)).ffill().bfill().reindex(dates)
    return aligned.to_numpy(dtype=np.float64)
