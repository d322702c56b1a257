"""The 2026 story on the bundled sample: when the 2026 AI listings (Zhipu 2513.HK, MiniMax
0100.HK) enter HSTECH rebuilt by its rules and two AI-chain designs, and what holding them did
to returns.

The whole universe has data only to ``Dataset.universe_complete_until`` (2025-10-30 for the
sample); later reviews run on the covered subset (``partial_universe=True``) and every figure
here says so. Returns are price returns, like the published HSI and HSTECH levels.

Examples
--------
>>> import indexlab
>>> from indexlab.story import story_2026
>>> s = story_2026(indexlab.datasets.hk_tech())
>>> sorted(s.entries["id"].unique().tolist())
['0100.HK', '2513.HK']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from indexlab.backtest import backtest
from indexlab.data import Dataset
from indexlab.errors import DataError
from indexlab.rules import AI_CHAIN, HSTECH, IndexRules, build_index

__all__ = ["LISTINGS_2026", "Story2026", "render_story", "story_2026"]

#: The 2026 AI listings the story follows.
LISTINGS_2026 = ("2513.HK", "0100.HK")
#: AI_CHAIN with fast entry for any listing whose first-day market cap would rank among its 30
#: constituents (the preset asks for the top 10), added after the listing's 10th trading day.
AI_CHAIN_FAST = AI_CHAIN.replace(name="AI_CHAIN_FAST", selection={"fast_entry_top": 30})


@dataclass(frozen=True)
class Story2026:
    """What :func:`story_2026` found.

    * ``published``: calendar-year price returns of the published HSI and HSTECH levels.
    * ``entries``: per design and listing, the effective date it entered and how.
    * ``returns``: price return of each design and of the published indices over ``window``
      (the designs on the covered subset), plus each design's weight in the 2026 listings at
      the window's end.
    * ``window``: first and last date of the return comparison.
    * ``blind``: universe names without data at the partial reviews, per design.
    """

    published: pd.DataFrame
    entries: pd.DataFrame
    returns: pd.DataFrame
    window: tuple[pd.Timestamp, pd.Timestamp]
    blind: pd.Series


def _published(ds: Dataset) -> pd.DataFrame:
    """Calendar-year price returns from 2021, the last year to date (``to`` says when)."""
    rows = {}
    for name in ("HSI", "HSTECH"):
        s = ds.benchmarks[name].dropna()
        year_end = s.groupby(s.index.year).last()
        ret = year_end.pct_change().dropna()
        last_year = int(s.index[-1].year)
        row: dict[str, object] = {str(y): float(r) for y, r in ret.items() if 2021 <= y < last_year}
        row[f"{last_year} YTD"] = float(ret.get(last_year, np.nan))
        row["to"] = str(s.index[-1].date())
        rows[name] = row
    return pd.DataFrame(rows).T


def story_2026(dataset: Dataset, designs: tuple[IndexRules, ...] | None = None) -> Story2026:
    """Follow the 2026 AI listings through HSTECH and AI-chain designs (see the module doc)."""
    ds = dataset
    missing = [i for i in LISTINGS_2026 if i not in set(ds.ids)]
    if missing:
        raise DataError(f"the dataset has no data for the 2026 listings {missing}")
    designs = designs or (HSTECH, AI_CHAIN, AI_CHAIN_FAST)
    complete = ds.universe_complete_until
    hists = {}
    for rules in designs:  # the partial reviews are reported below, not warned about
        hists[rules.name] = build_index(
            ds, rules, start="2024-01-01", end=ds.dates[-1], partial_universe=True, warn=False
        )
    first_trade = ds.coverage().set_index("id")["first_observation"]
    rows = []
    for name, hist in hists.items():
        ch = hist.changes()
        for sec in LISTINGS_2026:
            add = ch[(ch["id"] == sec) & (ch["change"] == "add")]
            entered = add["effective_date"].iloc[0] if len(add) else pd.NaT
            how = str(add["event"].iloc[0]) if len(add) else "not added"
            if len(add) and entered > pd.Timestamp(ds.dates[-1]):
                how += " (effective after the data's end)"
            rows.append((name, sec, first_trade[sec], entered, how))
    entries = pd.DataFrame(rows, columns=["design", "id", "first_trade", "entered", "how"])
    # The first partial review is implemented when most names' data have ended: from its
    # implementation day every holding is a name with data (the covered subset).
    partial = next(iter(hists.values())).calendar
    after = partial[partial["cutoff"] > pd.Timestamp(str(complete))]
    start = pd.Timestamp(ds.dates[int(after["impl_idx"].iloc[0])])
    end = min(ds.benchmarks["HSTECH"].last_valid_index(), pd.Timestamp(ds.dates[-1]))
    res = backtest(ds, hists, benchmark=None, start=start, end=end, returns="price")
    lv = res.levels
    out = pd.DataFrame({"price_return": lv.iloc[-1] / lv.iloc[0] - 1.0})
    held = res.weights[res.weights["kind"] == "target"]
    last = held[held["date"] == held.groupby("schedule")["date"].transform("max")]
    new = last[last["id"].isin(LISTINGS_2026)].groupby("schedule")["weight"].sum()
    out["weight_in_2026_listings"] = new.reindex(out.index).fillna(0.0)
    for name in ("HSTECH", "HSI"):
        b = ds.benchmarks[name].loc[start:end].dropna()
        out.loc[f"published {name}", "price_return"] = b.iloc[-1] / b.iloc[0] - 1.0
    blind = pd.Series(
        {k: int(h.partial_reviews["names_without_data"].max()) for k, h in hists.items()}
    )
    return Story2026(_published(ds), entries, out, (start, end), blind)


def render_story(story: Story2026) -> str:
    """The 2026 story as text."""
    pub = story.published.copy()
    for col in pub.columns.drop("to"):
        pub[col] = [f"{float(x) * 100:+.2f}%" for x in pub[col]]
    entries = story.entries.copy()
    for col in ("first_trade", "entered"):
        entries[col] = entries[col].dt.date.astype(str).replace("NaT", "-")
    ret = story.returns.copy()
    ret["price_return"] = (ret["price_return"] * 100).map("{:+.1f}%".format)
    w = ret["weight_in_2026_listings"]
    ret["weight_in_2026_listings"] = ["" if pd.isna(x) else f"{x * 100:.1f}%" for x in w]
    start, end = story.window
    blind = ", ".join(f"{k}: {v}" for k, v in story.blind.items())
    return (
        "The 2026 story: HSTECH lagged the 2025 AI rally; the 2026 AI listings (Zhipu 2513.HK, "
        "MiniMax 0100.HK)\n\nPublished price returns:\n"
        f"{pub.to_string()}\n\nWhen each design adds them (HSTECH's published addition: "
        "effective 2026-06-08, no fast entry):\n"
        f"{entries.to_string(index=False)}\n\n"
        f"Price returns {start.date()} .. {end.date()} (designs on the covered subset: the data "
        f"after the complete-universe date leave out universe names ({blind})):\n"
        f"{ret.to_string()}\n"
    )
