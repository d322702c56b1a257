"""`indexlab demo`: the main job on the bundled sample, end to end, in seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from indexlab.capping import cap_weights
from indexlab.data import Dataset

__all__ = [
    "DemoIndex",
    "latest_capped_index",
    "pipeline",
    "products",
    "render",
    "render_pipeline",
]

#: Names must have listed this many days before the date and traded within the last 20 days.
MIN_DAYS_LISTED = 90
MAX_DAYS_SINCE_TRADE = 20


@dataclass(frozen=True)
class DemoIndex:
    """A one-date capped index: the constituents table and the weight per AI layer."""

    date: pd.Timestamp
    constituents: pd.DataFrame
    by_layer: pd.Series


def latest_capped_index(
    dataset: Dataset, n: int = 30, cap: float = 0.08, market: str = "HK", date: object = None
) -> DemoIndex:
    """Top ``n`` eligible names by free-float market cap at ``date``, capped-weighted.

    Eligible: listed on ``market`` at least ``MIN_DAYS_LISTED`` days and traded within the last
    ``MAX_DAYS_SINCE_TRADE`` days of the date (point in time).
    """
    if date is None and dataset.universe_complete_until is not None:
        date = str(dataset.universe_complete_until)  # later dates cover a subset of names
    snap = dataset.snapshot(date)
    day = pd.Timestamp(dataset.dates[-1] if date is None else dataset.until(date).dates[-1])
    stale = (day - pd.to_datetime(snap["last_trade"])).dt.days
    eligible = snap[
        (snap["market"] == market)
        & (snap["days_listed"] >= MIN_DAYS_LISTED)
        & (stale <= MAX_DAYS_SINCE_TRADE)
        & snap["free_float_mcap_hkd"].notna()
    ]
    top = eligible.nlargest(n, "free_float_mcap_hkd").reset_index(drop=True)
    top["weight"] = cap_weights(top["free_float_mcap_hkd"].to_numpy(), cap=cap)
    columns = ["id", "name", "ai_layer", "ai_score", "free_float_mcap_hkd", "weight"]
    table = top[columns].sort_values("weight", ascending=False, kind="stable")
    by_layer = table.groupby("ai_layer")["weight"].sum().sort_values(ascending=False)
    return DemoIndex(day, table.reset_index(drop=True), by_layer)


def render(index: DemoIndex, cap: float) -> str:
    """A readable text report of a :class:`DemoIndex`."""
    t = index.constituents.copy()
    t.index = np.arange(1, len(t) + 1)
    t["free_float_mcap_hkd"] = (t["free_float_mcap_hkd"] / 1e9).map("{:,.1f}".format)
    t["weight"] = (t["weight"] * 100).map("{:.2f}%".format)
    t["ai_score"] = t["ai_score"].map("{:.2f}".format)
    t = t.rename(columns={"free_float_mcap_hkd": "ff mcap (HK$ bn)", "ai_layer": "AI layer"})
    layers = (index.by_layer * 100).map("{:.2f}%".format).to_string()
    n = len(index.constituents)
    return (
        f"indexlab demo: {n}-name free-float market-cap index capped at {cap:.0%} "
        f"as of {index.date.date()}\n\n{t.to_string()}\n\nWeight per AI layer:\n{layers}\n"
    )


#: Review cut-offs start here in the pipeline demo: AI_CHAIN needs 30 eligible HK names.
PIPELINE_START = "2020-01-01"


#: AI_CHAIN_OPT's annualised ex-ante tracking-error budget against HSTECH at each review.
OPT_TE_BUDGET = 0.08


def _optimised_candidate(dataset: Dataset) -> tuple[Any, str]:
    """AI_CHAIN_OPT: at each review, the top 30 HK names by ai_score x free-float market cap
    at the cut-off (point in time), weighted for the most AI exposure with an ex-ante tracking
    error of at most ``OPT_TE_BUDGET`` against the HSTECH weights of that review (8% cap).

    Maximising exposure under a budget, rather than trading it against a TE penalty, is what
    puts it on the AI-exposure vs tracking-error frontier the report draws
    (``tests/test_report.py`` checks that no other pipeline row dominates it).
    ``dataset`` is unused: the candidate is resolved point in time by the search.
    """
    from indexlab.search import OptimisedCandidate

    del dataset
    cand = OptimisedCandidate(
        top_k=30, name="AI_CHAIN_OPT", te_weight=0.0, te_budget=OPT_TE_BUDGET, markets=("HK",)
    )
    how = (
        "top 30 HK names by ai_score x ff mcap at each cut-off, weighted for the most AI "
        f"exposure with ex-ante TE <= {OPT_TE_BUDGET:.0%} vs HSTECH (8% cap)"
    )
    return cand, how


def pipeline(dataset: Dataset | None = None, keep_weights: bool = False) -> tuple[Any, str]:
    """HSTECH rebuilt by its rules, the AI_CHAIN index and an optimised AI-chain candidate,
    backtested side by side from ``PIPELINE_START`` (:func:`indexlab.search.evaluate`).

    ``keep_weights`` keeps each candidate's schedule (``res.weights``), e.g. for a report."""
    from indexlab.datasets import hk_tech
    from indexlab.rules import AI_CHAIN, HSTECH
    from indexlab.search import evaluate

    ds = hk_tech() if dataset is None else dataset
    opt, how = _optimised_candidate(ds)
    res = evaluate(
        ds,
        [HSTECH, AI_CHAIN, opt],
        start=PIPELINE_START,
        keep_levels=True,
        keep_weights=keep_weights,
        progress=False,
    )
    return res, how


def render_pipeline(res: Any, how: str) -> str:
    """The side-by-side metrics table of :func:`pipeline`."""
    t = res.table
    cols = {
        "total_return": ("total return", "{:.1%}"),
        "annual_return": ("annualised", "{:.1%}"),
        "volatility": ("vol", "{:.1%}"),
        "sharpe": ("Sharpe", "{:.2f}"),
        "max_drawdown": ("max DD", "{:.1%}"),
        "tracking_error": ("TE vs HSTECH", "{:.1%}"),
        "information_ratio": ("IR", "{:.2f}"),
        "average_turnover": ("turnover/review", "{:.1%}"),
        "ai_exposure": ("AI exposure", "{:.3f}"),
    }
    out = pd.DataFrame(index=t.index)
    for col, (label, fmt) in cols.items():
        out[label] = [fmt.format(v) if np.isfinite(v) else "n/a" for v in t[col].astype(float)]
    start = res.levels.index[0].date() if res.levels is not None else "?"
    end = res.levels.index[-1].date() if res.levels is not None else "?"
    return (
        f"Pipeline on hk_tech from {start} to {end} (price returns in HKD, net of HK costs, vs the "
        "published HSTECH price index):\n"
        f"  AI_CHAIN_OPT = {how}\n\n{out.to_string()}\n"
    )


def products(dataset: Dataset, report: Any = None, overwrite: bool = False) -> str:
    """The AI_CHAIN index's factsheet headline and the notice of its latest review
    (:mod:`indexlab.analytics`), reviews from ``PIPELINE_START``.

    With ``report`` (the demo's ``--report`` path) it also writes ``<stem>-factsheet.html`` and
    ``<stem>-announcement.md`` beside it. Every line of the text is indented or Markdown, so
    it never reads as a row of the pipeline table.
    """
    from pathlib import Path

    from indexlab import analytics
    from indexlab.rules import AI_CHAIN, build_index

    hist = build_index(dataset, AI_CHAIN, start=PIPELINE_START)
    fs = analytics.factsheet(dataset, hist, benchmark="HSTECH")
    notice = analytics.announcement(dataset, hist)
    pr = fs.period_returns
    col, bench = f"{fs.name} (price)", f"{fs.benchmark} (price)"
    lines = [
        f"Index products: {fs.name} factsheet as of {fs.as_of.date()} "
        f"({fs.n_constituents} constituents, price returns in HKD):",
        *(
            f"  {p + (' (ann.)' if pr.at[p, 'annualised'] else ''):<22} {pr.at[p, col]:8.2%}"
            f"   {fs.benchmark} {pr.at[p, bench]:8.2%}"
            for p in ("YTD", "1Y", "3Y", "Since inception")
        ),
        f"  tracking error {fs.risk.at['tracking_error', col]:.2%} vs {fs.benchmark}, "
        f"information ratio {fs.risk.at['information_ratio', col]:.2f}",
    ]
    if report is not None:
        from indexlab.report import factsheet as page

        base = Path(report)
        page_path = page.html(fs, base.with_name(f"{base.stem}-factsheet.html"), overwrite)
        md = base.with_name(f"{base.stem}-announcement.md")
        try:
            with md.open("w" if overwrite else "x", encoding="utf-8") as f:
                f.write(notice.to_markdown())
        except FileExistsError:
            from indexlab.errors import DataError

            raise DataError(f"{md} exists: pass --force to replace it") from None
        lines.append(f"  factsheet written to {page_path}, announcement to {md}")
    return "\n".join(lines) + "\n\n" + notice.to_markdown(weights=False)
