"""The bundled real-price sample: it loads offline, passes validation, and is what PROVENANCE.md
says it is."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab.datasets import HK_TECH_PATH


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return indexlab.datasets.hk_tech()


def test_loads_and_covers_the_documented_span(ds: indexlab.Dataset) -> None:
    assert str(ds.dates[0]) == "2019-01-02" and str(ds.dates[-1]) == "2026-08-27"
    assert str(ds.universe_complete_until) == "2025-10-30"
    markets = ds.securities["market"].value_counts().to_dict()
    assert markets["HK"] == 506 and markets.get("SH", 0) + markets.get("SZ", 0) == 6
    # The whole Hang Seng Composite list of 2025-11-21 plus the 2026 AI listings.
    assert ds.securities["hsci_member"].sum() == 503
    for name in ["0700.HK", "9988.HK", "0981.HK", "688256.SH", "300308.SZ", "9660.HK"]:
        assert name in set(ds.ids)
    cov = ds.coverage().set_index("id")
    assert str(cov.loc["2513.HK", "first_observation"].date()) == "2026-01-08"  # Zhipu
    assert str(cov.loc["0100.HK", "first_observation"].date()) == "2026-01-09"  # MiniMax
    assert str(cov.loc["0700.HK", "last_observation"].date()) == "2026-08-21"
    assert (cov["last_observation"] >= pd.Timestamp("2025-10-30")).sum() >= 500


def test_published_2025_calendar_returns_from_the_bundled_levels(ds: indexlab.Dataset) -> None:
    # HSIL's year-end figures: HSI +27.77%, HSTECH +23.45% (price indices).
    levels = ds.benchmarks
    for name, published in (("HSI", 0.2777), ("HSTECH", 0.2345)):
        year = levels.loc["2025-01-01":"2025-12-31", name].dropna()
        before = levels.loc[:"2024-12-31", name].dropna().iloc[-1]
        assert year.iloc[-1] / before - 1 == pytest.approx(published, abs=5e-5)


def test_classification_is_point_in_time(ds: indexlab.Dataset) -> None:
    # Baidu's Ernie Bot (2023-03-16) raised its judged AI share; before it the old value holds.
    before = ds.securities_at("2023-03-15").set_index("id").loc["9888.HK", "ai_score"]
    after = ds.securities_at("2023-03-16").set_index("id").loc["9888.HK", "ai_score"]
    assert before < after
    view = ds.until("2022-12-30").securities.set_index("id")
    assert view.loc["9888.HK", "ai_score"] == before


def test_classification_is_complete(ds: indexlab.Dataset) -> None:
    sec = ds.securities
    assert sec["ai_rationale"].str.strip().str.len().gt(3).all()
    assert set(sec["ai_layer"]) <= set(indexlab.data.AI_LAYERS)
    compute = set(sec.loc[sec["ai_layer"] == "compute", "id"])
    assert {"0981.HK", "688256.SH"} <= compute


def test_every_share_count_says_where_it_comes_from(ds: indexlab.Dataset) -> None:
    sec = ds.securities
    assert sec["shares_kind"].isin(["cited", "approximation"]).all()
    assert sec["shares_source"].str.len().gt(10).all() and sec["ff_source"].notna().all()
    cited = sec[sec["shares_kind"] == "cited"]
    # Every HSI member and the large technology names carry a cited count.
    for name in ["0700.HK", "9988.HK", "1810.HK", "3690.HK", "0981.HK", "9660.HK", "0100.HK"]:
        assert name in set(cited["id"]), name
    provenance = (HK_TECH_PATH / "PROVENANCE.md").read_text()
    for word in ["approximation", "survivor", "coverage gap"]:
        assert word.lower() in provenance.lower(), word


def test_market_caps_are_plausible(ds: indexlab.Dataset) -> None:
    # Tencent's free-float market cap in late Oct 2025 was in the HK$3-5 trillion range
    # (total market cap about HK$5.9tn at HK$640; see PROVENANCE.md).
    snap = ds.snapshot("2025-10-30").set_index("id")
    assert ds.securities.set_index("id").loc["0700.HK", "shares_kind"] == "cited"
    assert 2.5e12 < snap.loc["0700.HK", "free_float_mcap_hkd"] < 5.5e12
    # A-share caps are converted to HKD at a CNY rate near 1.08-1.10.
    rate = ds.fx["CNY"].iloc[-1]
    assert 1.0 < rate < 1.15


def test_stale_placeholder_rows_are_missing(ds: indexlab.Dataset) -> None:
    # SOURCES.md: 2024-01-15 is a stale flat zero-volume placeholder for 33+ names.
    t = int(np.flatnonzero(ds.dates == np.datetime64("2024-01-15"))[0])
    assert np.isnan(ds.field("close")[t]).sum() >= 30


def test_a_share_bonus_issue_is_neutralised(ds: indexlab.Dataset) -> None:
    # Eoptolink's 2020-05-29 bonus issue leaves no jump in total return: no daily move beyond
    # ChiNext's 20% limit survives in the total-return series.
    i = list(ds.ids).index("300502.SZ")
    step = np.abs(np.diff(np.log(ds.field("total_return")[:, i])))
    # Consecutive trading days only: the 2023-04..2024-07 coverage gap is NaN, not a move.
    # A 20% limit-down day is log(0.8) = -0.223; an unadjusted 10-for-4 bonus would be -0.336.
    assert np.nanmax(step) < 0.25
