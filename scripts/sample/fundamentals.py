"""Point-in-time revenue growth for the sample (``fundamentals.parquet``).

Input: ``revenue_from_pages/revenue.csv`` (revenue figures typed by hand from cited pages: annual,
interim and nine-month periods for seven companies). Output rows ``id``, ``known_from``,
``revenue_growth``: the trailing-12-month revenue growth a user could have known from
``known_from``.

Only annual results give a trailing-12-month figure from this table (an interim one needs the
two previous halves, which no page gave), so only annual periods are kept: growth is the ratio
of two consecutive annual revenues, else the page's stated (rounded) year-on-year figure.
``known_from`` is the HKEX Main Board deadline for annual results, three months after the year
end: no figure is used before it could have been public (some companies publish earlier; none
later).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Months after the period end by which HKEX Main Board issuers publish annual results.
ANNUAL_RESULTS_MONTHS = 3


def revenue_growth(raw: Path) -> pd.DataFrame:
    """``id``, ``known_from``, ``revenue_growth`` from the annual rows of the revenue table."""
    table = pd.read_csv(raw / "revenue_from_pages" / "revenue.csv", dtype={"id": str})
    annual = table[table["period_type"] == "annual"].copy()
    annual["period_end"] = pd.to_datetime(annual["period_end"])
    annual = annual.sort_values(["id", "period_end"])
    previous = annual.groupby("id")["revenue"].shift(1)
    consecutive = annual.groupby("id")["period_end"].diff().dt.days.between(360, 370)
    computed = (annual["revenue"] / previous - 1.0).where(consecutive)
    annual["revenue_growth"] = computed.combine_first(annual["yoy_growth"])
    out = annual.dropna(subset=["revenue_growth"])
    return pd.DataFrame(
        {
            "id": out["id"].str.zfill(4) + ".HK",
            "known_from": out["period_end"] + pd.DateOffset(months=ANNUAL_RESULTS_MONTHS),
            "revenue_growth": out["revenue_growth"].astype("float64"),
        }
    ).reset_index(drop=True)
