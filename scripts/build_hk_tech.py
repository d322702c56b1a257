"""Build the bundled ``hk_tech`` real-price sample dataset from the raw public files.

Usage::

    python scripts/build_hk_tech.py --raw ../shared/data/raw \
        --out python/indexlab/datasets/hk_tech

Inputs are the third-party files documented in ``<raw>/SOURCES.md`` plus the hand-judged files
in ``scripts/master/`` and ``scripts/hk_tech_master.csv``. Outputs (zstd Parquet,
deterministic): ``securities``, ``panel``, ``fx``, ``benchmarks``, ``classification`` (the
point-in-time history of each judged field) and ``meta.json`` (the date through which the
universe is complete). ``PROVENANCE.md`` beside them is written by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sample import assemble as A
from sample import master as M
from sample.ashare import ashare_panel
from sample.fundamentals import revenue_growth
from sample.hk_prices import load_hk
from sample.levels import benchmarks_table

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


def fx_table(dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Step-forward-fill the cited CNY central-parity points onto every panel date."""
    obs = pd.Series({pd.Timestamp(k): 100.0 / v for k, v in CNY_PER_100_HKD.items()})
    rate = obs.reindex(obs.index.union(dates)).sort_index().ffill().bfill().reindex(dates)
    return pd.DataFrame({"date": dates, "currency": "CNY", "to_hkd": rate.to_numpy()})


def classification_table(
    judged: pd.DataFrame, connect: pd.DataFrame, listing: pd.Series, ids: list[str]
) -> pd.DataFrame:
    """One full row per id and date from which any judged field changes (forward-filled)."""
    judged = judged[judged["id"].isin(ids)].copy()
    missing = sorted(set(ids) - set(judged["id"]))
    assert not missing, f"no classification for {missing[:10]}"
    judged["valid_from"] = judged["valid_from"].fillna(judged["id"].map(listing))
    a_shares = [i for i in ids if not i.endswith(".HK")]
    connect = pd.concat(
        [
            connect,
            pd.DataFrame(
                {
                    "id": a_shares,
                    "valid_from": [listing[i] for i in a_shares],
                    "connect_eligible": True,
                }
            ),
        ],
        ignore_index=True,
    )
    connect["valid_from"] = np.maximum(connect["valid_from"], connect["id"].map(listing))
    connect = connect.drop_duplicates(["id", "valid_from"], keep="last")
    both = judged.merge(connect, on=["id", "valid_from"], how="outer")
    both = both.sort_values(["id", "valid_from"]).reset_index(drop=True)
    both = both.groupby("id", group_keys=False).apply(lambda g: g.ffill().bfill())
    both["connect_eligible"] = both["connect_eligible"].astype(bool)
    cols = [
        "id",
        "valid_from",
        "tech_theme",
        "tech_theme_rationale",
        "ai_layer",
        "ai_score",
        "ai_rationale",
        "listing_type",
        "wvr",
        "hk_company",
        "connect_eligible",
    ]
    out = both[cols].drop_duplicates(
        subset=[c for c in cols if c != "valid_from"] + ["id"], keep="first"
    )
    return out.reset_index(drop=True)


def securities_table(
    hsci: pd.DataFrame,
    names: pd.Series,
    listing: pd.DataFrame,
    prov: pd.DataFrame,
    cls: pd.DataFrame,
    panel: pd.DataFrame,
    sources: dict[str, str],
) -> pd.DataFrame:
    """The master as of the data's end: latest classification, provenance and data_end."""
    latest = cls.groupby("id").tail(1).set_index("id")
    ids = sorted(panel["id"].unique())
    sec = pd.DataFrame({"id": ids})
    sec["name"] = sec["id"].map(names)
    sec["market"] = sec["id"].map(lambda i: i.split(".")[1])
    sec["currency"] = np.where(sec["market"] == "HK", "HKD", "CNY")
    sec["listing_date"] = sec["id"].map(listing["listing_date"])
    sec["listing_date_source"] = sec["id"].map(listing["listing_date_source"])
    sec["delisting_date"] = pd.NaT
    ind = hsci.set_index("id")["industry"]
    sec["industry"] = sec["id"].map(
        lambda i: ind.get(i, M.A_SHARE_INDUSTRY.get(i, "Information Technology"))
    )
    sec["hsci_member"] = sec["id"].isin(hsci["id"])
    for col in (
        "listing_type",
        "wvr",
        "connect_eligible",
        "hk_company",
        "tech_theme",
        "tech_theme_rationale",
        "ai_layer",
        "ai_score",
        "ai_rationale",
    ):
        sec[col] = sec["id"].map(latest[col])
    for col in ("wvr", "connect_eligible", "hk_company", "tech_theme"):
        sec[col] = sec[col].astype(bool)
    p = prov.set_index("id")
    for col in ("shares_kind", "shares_source", "shares_as_of", "ff_source"):
        sec[col] = sec["id"].map(p[col])
    sec["price_source"] = sec["id"].map(sources)
    sec["data_start"] = sec["id"].map(panel.groupby("id")["date"].min())
    sec["data_end"] = sec["id"].map(panel.groupby("id")["date"].max())
    return sec


def check(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    """Assert the invariants the loader and the rules engine rely on."""
    assert not panel.duplicated(["date", "id"]).any(), "duplicate (date, id)"
    assert panel["date"].is_monotonic_increasing, "dates not sorted"
    for col in ("close", "total_return"):
        v = panel[col].dropna()
        assert (v > 0).all() and np.isfinite(v).all(), f"non-positive or infinite {col}"
    assert (panel["shares_outstanding"] > 0).all(), "non-positive shares"
    ff = panel["free_float_factor"]
    assert ((ff > 0) & (ff <= 1)).all(), "free_float_factor outside (0, 1]"
    assert securities["ai_score"].between(0, 1).all(), "ai_score outside [0, 1]"
    assert securities["id"].is_unique and set(securities["id"]) == set(panel["id"])
    listing = pd.to_datetime(panel["id"].map(securities.set_index("id")["listing_date"]))
    assert (panel["date"] >= listing).all(), "panel row before listing_date"
    assert set(panel["date"]) <= set(fx["date"]), "panel date without CNY rate"


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


def display_names(hsci: pd.DataFrame, judged: pd.DataFrame) -> pd.Series:
    names = judged.groupby("id")["name"].last()
    fallback = hsci.set_index("id")["hsci_name"].str.title()
    return names.combine_first(fallback)


def main() -> None:
    """Parse arguments, build every table, check it and write the files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.raw
    hsci = M.hsci_list(raw)
    judged = M.classification()
    old = M.old_master()
    series = load_hk(raw)
    hk = A.hk_rows(series)
    a_ids = list(M.A_SHARE_INDUSTRY)
    ash, log = ashare_panel(raw, a_ids, {i: float(old.loc[i, "shares_outstanding"]) for i in a_ids})
    ash["free_float_factor"] = ash["id"].map(old["free_float_factor"])
    hk_ids = sorted(hk["id"].unique())
    cols, prov = A.shares_and_float(hk, raw, hk_ids)
    hk = hk.join(cols)
    a_prov = pd.DataFrame(
        {
            "id": a_ids,
            "shares_kind": "cited",
            "shares_source": [str(old.loc[i, "shares_source"]) for i in a_ids],
            "shares_as_of": "",
            "ff_source": [str(old.loc[i, "ff_source"]) for i in a_ids],
        }
    )
    prov = pd.concat([prov, a_prov], ignore_index=True)
    panel = pd.concat([hk, ash], ignore_index=True)
    panel = panel[["date", "id", *A.PANEL_COLUMNS]].astype({c: "float64" for c in A.PANEL_COLUMNS})
    panel = panel.sort_values(["date", "id"]).reset_index(drop=True)
    listing = A.listing_dates(panel, old)
    wvr = judged.groupby("id")["wvr"].last()
    connect = A.connect_history(panel, wvr, listing["listing_date"])
    ids = sorted(panel["id"].unique())
    cls = classification_table(judged, connect, listing["listing_date"], ids)
    sources = {k: s.source for k, s in series.items()}
    sources.update(
        {
            i: "suiwenfeng_ashare + samleon_ashare (unadjusted; bonus issues divided out)"
            for i in a_ids
        }
    )
    sources["688256.SH"] += " + chenyihui_ashare (to 2026-08-27)"
    securities = securities_table(
        hsci, display_names(hsci, judged), listing, prov, cls, panel, sources
    )
    fx = fx_table(pd.DatetimeIndex(sorted(panel["date"].unique())))
    bench = benchmarks_table(raw, pd.Timestamp("2019-01-02"))
    check(securities, panel, fx)
    write(
        to_date32(securities, ["listing_date", "delisting_date", "data_start", "data_end"]),
        args.out / "securities.parquet",
    )
    write(to_date32(panel, ["date"]), args.out / "panel.parquet")
    write(to_date32(fx, ["date"]), args.out / "fx.parquet")
    write(to_date32(bench, ["date"]), args.out / "benchmarks.parquet")
    write(to_date32(cls, ["valid_from"]), args.out / "classification.parquet")
    write(to_date32(revenue_growth(raw), ["known_from"]), args.out / "fundamentals.parquet")
    meta = {
        "universe_complete_until": str(A.UNIVERSE_COMPLETE_UNTIL.date()),
        "universe": "Hang Seng Composite Index members as of 2025-11-21, the 2026 AI "
        "listings with data, and six A-share names",
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(securities.groupby(["market", "ai_layer"]).size().unstack(fill_value=0))
    print(
        f"panel rows {len(panel):,}; dates {panel['date'].min().date()} .. "
        f"{panel['date'].max().date()}; names {panel['id'].nunique()}"
    )
    print("shares:", prov["shares_kind"].value_counts().to_dict())
    print("A-share corporate-action adjustments:\n" + log.to_string(index=False))
    for f in sorted(args.out.glob("*.parquet")):
        print(f"{f.name:24s} {f.stat().st_size / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
