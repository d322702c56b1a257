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
from indexlab.rules import (
    AI_CHAIN,
    HSTECH,
    HSTECH_2026,
    IndexRules,
    SelectionPhase,
    Sleeve,
    build_index,
)

__all__ = [
    "LISTINGS_2026",
    "ProForma50",
    "Story2026",
    "pro_forma_50",
    "render_pro_forma",
    "render_story",
    "story_2026",
]

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


@dataclass(frozen=True)
class ProForma50:
    """What :func:`pro_forma_50` found.

    * ``effective`` / ``cutoff``: the review the pro-forma is taken at.
    * ``weights``: per id, ``name``, the 30-name and 50-name weights, and ``sleeve``
      (``market cap``, ``revenue growth`` or empty when not in the 50-name index).
    * ``joiners`` / ``leavers``: ids the 50-name index holds that the 30-name one does not,
      and the reverse.
    * ``turnover``: one-way turnover from the 30-name to the 50-name weights.
    * ``ai_exposure``: weighted ``ai_score`` (as known at the cut-off) of both.
    * ``lacking_revenue_growth``: universe names with no revenue growth at the cut-off (the
      strict preset stops there with a :class:`DataError` naming them).
    """

    effective: pd.Timestamp
    cutoff: pd.Timestamp
    weights: pd.DataFrame
    joiners: list[str]
    leavers: list[str]
    turnover: float
    ai_exposure: dict[str, float]
    lacking_revenue_growth: list[str]


def pro_forma_50(dataset: Dataset, effective: str | None = None) -> ProForma50:
    """The 50-name HSTECH (40 by market cap + 10 by revenue growth) against the 30-name one at
    one review, both rebuilt from 2024 with the 50-name sizes applied from that review.

    ``effective`` defaults to the last review whose cut-off the dataset's universe covers
    completely (for the sample: cut-off 2025-09-30, effective 2025-12-08). The revenue-growth
    block ranks only the names with a figure (``missing="skip"``); ``lacking_revenue_growth``
    lists the others. The December 2026 review itself (cut-off 2026-09-30) lies after the
    sample's data.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.story import pro_forma_50
    >>> p = pro_forma_50(indexlab.datasets.hk_tech())
    >>> str(p.effective.date()), str(p.cutoff.date())
    ('2025-12-08', '2025-09-30')
    """
    ds = dataset
    thirty = build_index(ds, HSTECH, start="2024-01-01", warn=False)
    cal = thirty.calendar
    if effective is None:
        eff = pd.Timestamp(cal["effective"].iloc[-1])
    else:
        eff = pd.Timestamp(effective)
        if eff not in set(pd.to_datetime(cal["effective"])):
            raise DataError(
                f"effective={eff.date()} is not a review of the rebuilt HSTECH; reviews: "
                f"{[str(d.date()) for d in pd.to_datetime(cal['effective'])]}"
            )
    growth = Sleeve("column:revenue_growth", n=HSTECH_2026.selection.extra[0].n, missing="skip")
    sizes = tuple(s.n for s in HSTECH_2026.selection.sleeves)
    rules50 = HSTECH_2026.replace(
        name="HSTECH_50_PRO_FORMA",
        selection={
            "extra": (growth,),
            "earlier": (SelectionPhase(str(eff.date()), (HSTECH.selection.n, 0)),),
        },
    )
    fifty = build_index(ds, rules50, start="2024-01-01", end=cal["cutoff"].max(), warn=False)
    cutoff = pd.Timestamp(cal.loc[pd.to_datetime(cal["effective"]) == eff, "cutoff"].iloc[0])

    def at(hist: object) -> pd.DataFrame:
        r = hist.reviews  # type: ignore[attr-defined]
        return r[(r["effective_date"] == eff) & (r["event"] == "review")].set_index("id")

    a, b = at(thirty), at(fifty)
    known = ds.securities_at(cutoff).set_index("id")
    ids = sorted(set(a.index) | set(b.index))
    w30 = a["weight"].reindex(ids).fillna(0.0)
    w50 = b["weight"].reindex(ids).fillna(0.0)
    growth_now = pd.Series(ds.fundamental("revenue_growth", [ds.date_index(cutoff)])[0], ds.ids)
    # The market-cap block's ranking at that review (the rows' ranks are within the block
    # that chose each name): a chosen name with a revenue figure that ranks below the block's
    # size by market cap came in through the revenue-growth block.
    screen = fifty.screening(eff)
    cap_rank = screen["rank"]
    by_growth = {
        i
        for i in b.index
        if not np.isnan(growth_now.get(i, np.nan)) and not 0 < cap_rank[i] <= sizes[0]
    }
    sleeve = [
        "" if w50[i] == 0 else ("revenue growth" if i in by_growth else "market cap") for i in ids
    ]
    weights = pd.DataFrame(
        {
            "name": known["name"].reindex(ids).to_numpy(),
            "w30": w30.to_numpy(),
            "w50": w50.to_numpy(),
            "sleeve": sleeve,
            "revenue_growth": growth_now.reindex(ids).to_numpy(),
        },
        index=pd.Index(ids, name="id"),
    ).sort_values("w50", ascending=False)
    score = known["ai_score"].astype(float)
    universe = screen.index[screen["in_universe"]]
    lacking = sorted(set(universe) - set(growth_now.dropna().index))
    return ProForma50(
        effective=eff,
        cutoff=cutoff,
        weights=weights,
        joiners=sorted(set(b.index) - set(a.index)),
        leavers=sorted(set(a.index) - set(b.index)),
        turnover=float((w50 - w30).clip(lower=0).sum()),
        ai_exposure={
            "HSTECH (30)": float((w30 * score.reindex(ids)).sum()),
            "HSTECH (50)": float((w50 * score.reindex(ids)).sum()),
        },
        lacking_revenue_growth=lacking,
    )


def render_pro_forma(p: ProForma50) -> str:
    """The pro-forma 50-name HSTECH as text."""
    joined = p.weights.loc[p.joiners].sort_values("w50", ascending=False)
    rows = [
        f"  {i}  {str(r['name'])[:32]:32s} {r['w50'] * 100:5.2f}%  by {r['sleeve']}"
        for i, r in joined.iterrows()
    ]
    left = ", ".join(p.leavers) or "none"
    ai = ", ".join(f"{k} {v:.3f}" for k, v in p.ai_exposure.items())
    held = p.weights[p.weights["w50"] > 0]
    with_growth = int(held["revenue_growth"].notna().sum())
    return (
        "Pro-forma 50-name HSTECH (40 by market cap + 10 by revenue growth) at the review "
        f"effective {p.effective.date()} (cut-off {p.cutoff.date()}, the last one the sample's "
        "universe covers):\n"
        f"{len(p.joiners)} names would join, {len(p.leavers)} leave ({left}); one-way turnover "
        f"{p.turnover:.1%}; AI exposure (weighted ai_score): {ai}.\n"
        + "\n".join(rows)
        + f"\n{len(held)} constituents ({with_growth} with a revenue-growth figure in the "
        "sample: the revenue block can fill only from those); "
        f"{len(p.lacking_revenue_growth)} universe names lack one, so the strict preset "
        "(rules.HSTECH_2026) stops with a DataError naming them.\n"
    )
