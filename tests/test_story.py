"""The 2026 story: the AI listings' entry dates under each design and the published record."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab.story import AI_CHAIN_FAST, render_story, story_2026


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
