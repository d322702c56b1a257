"""The 2026 story: the AI listings' entry dates under each design and the published record."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab.story import AI_CHAIN_FAST, pro_forma_50, render_pro_forma, render_story, story_2026


@pytest.fixture(scope="module")
def story() -> object:
    return story_2026(indexlab.datasets.hk_tech())


def test_hstech_rebuilt_adds_zhipu_and_minimax_when_hsil_did(story: object) -> None:
    e = story.entries.set_index(["design", "id"])  # type: ignore[attr-defined]
    # Published: both added at the 31 Mar 2026 review, effective 2026-06-08; no fast entry.
    for sec in ("2513.HK", "0100.HK"):
        assert e.loc[("HSTECH", sec), "entered"] == pd.Timestamp("2026-06-08")
        assert e.loc[("HSTECH", sec), "how"] == "review"


def test_fast_entry_comes_after_the_tenth_trading_day(story: object) -> None:
    ds = indexlab.datasets.hk_tech()
    e = story.entries.set_index(["design", "id"])  # type: ignore[attr-defined]
    for sec in ("2513.HK", "0100.HK"):
        first = int(np.searchsorted(ds.dates, np.datetime64(e.loc[("HSTECH", sec), "first_trade"])))
        # Added after the close of its 10th trading day: effective the next trading day.
        expected = pd.Timestamp(ds.dates[first + 10])
        assert e.loc[(AI_CHAIN_FAST.name, sec), "entered"] == expected
        assert e.loc[(AI_CHAIN_FAST.name, sec), "how"] == "fast_entry"


def test_published_returns_and_window_are_the_record(story: object) -> None:
    pub = story.published  # type: ignore[attr-defined]
    assert float(pub.loc["HSTECH", "2025"]) == pytest.approx(0.2345, abs=5e-5)
    assert float(pub.loc["HSI", "2025"]) == pytest.approx(0.2777, abs=5e-5)
    start, end = story.window  # type: ignore[attr-defined]
    assert start > pd.Timestamp("2025-10-30") and end == pd.Timestamp("2026-07-15")
    levels = indexlab.datasets.hk_tech().benchmarks["HSTECH"]
    ratio = levels.loc[end] / levels.loc[start] - 1.0
    ret = story.returns  # type: ignore[attr-defined]
    assert ret.loc["published HSTECH", "price_return"] == pytest.approx(ratio)
    assert ret.loc[AI_CHAIN_FAST.name, "weight_in_2026_listings"] > 0
    assert "covered subset" in render_story(story)  # type: ignore[arg-type]


def test_pro_forma_50_against_the_30_name_index() -> None:
    ds = indexlab.datasets.hk_tech()
    p = pro_forma_50(ds)
    w = p.weights
    assert w["w30"].sum() == pytest.approx(1.0) and w["w50"].sum() == pytest.approx(1.0)
    # The 30-name side is the rebuilt HSTECH at that review.
    hist = indexlab.build_index(ds, indexlab.rules.HSTECH, start="2024-01-01")
    r = hist.reviews[(hist.reviews["effective_date"] == p.effective)]
    assert set(w.index[w["w30"] > 0]) == set(r["id"]) and len(r) == 30
    joiners = set(w.index[(w["w50"] > 0) & (w["w30"] == 0)])
    assert joiners == set(p.joiners) and len(joiners) >= 10
    # Both fully invested: one-way turnover is half the summed absolute change.
    assert p.turnover == pytest.approx(0.5 * (w["w50"] - w["w30"]).abs().sum())
    # 40 by market cap, and the revenue block holds only names with a figure at the cut-off.
    assert (w["sleeve"] == "market cap").sum() == 40
    growth = w[w["sleeve"] == "revenue growth"]
    assert growth["revenue_growth"].notna().all() and 1 <= len(growth) <= 10
    score = ds.securities_at(p.cutoff).set_index("id")["ai_score"]
    assert p.ai_exposure["HSTECH (50)"] == pytest.approx((w["w50"] * score[w.index]).sum())
    assert "0981.HK" in p.lacking_revenue_growth  # SMIC: no revenue figure in the sample
    assert "would join" in render_pro_forma(p)
    # The strict preset names the field and the names lacking it.
    strict = indexlab.rules.HSTECH_2026.replace(
        selection={"earlier": (indexlab.rules.SelectionPhase("2025-12-08", (30, 0)),)}
    )
    with pytest.raises(indexlab.DataError, match="revenue_growth.*0981.HK"):
        indexlab.build_index(ds, strict, start="2024-01-01")
