"""The HSTECH preset on the real ``hk_tech()`` sample: the technology theme comes from the
judged ``tech_theme`` column (never a whole industry), classification is point in time, and
reviews past the complete-universe date need an explicit opt-in.

How close the rebuilt index comes to each published change is a fidelity question answered
review by review elsewhere; these tests pin what the data and the rules guarantee.
"""

from __future__ import annotations

import indexlab
import pandas as pd
import pytest
from indexlab import rules

# Businesses the HSTECH theme never covers (the old fallback let them in through their
# Consumer Discretionary industry).
NOT_TECH = {
    "0027.HK": "Galaxy Entertainment (casino)",
    "1928.HK": "Sands China (casino)",
    "1929.HK": "Chow Tai Fook (jeweller)",
    "2020.HK": "ANTA Sports (sportswear)",
    "2331.HK": "Li Ning (sportswear)",
    "6862.HK": "Haidilao (restaurants)",
    "2313.HK": "Shenzhou International (textiles)",
    "0669.HK": "Techtronic Industries (power tools)",
    "0066.HK": "MTR Corporation (railway)",
}


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return indexlab.datasets.hk_tech()


@pytest.fixture(scope="module")
def history(ds: indexlab.Dataset) -> rules.IndexHistory:
    return indexlab.build_index(ds, rules.HSTECH, start="2020-06-01")


def test_no_casino_jeweller_sportswear_restaurant_or_railway_is_ever_a_member(
    history: rules.IndexHistory,
) -> None:
    members = set(history.reviews["id"])
    assert not members & set(NOT_TECH), {NOT_TECH[i] for i in members & set(NOT_TECH)}
    why = history.explain("0027.HK", "2025-06-30")
    assert "not a technology-theme name" in why and "casino" in why.lower()


def test_thirty_names_capped_at_eight_percent_at_every_review(
    history: rules.IndexHistory,
) -> None:
    reviews = history.reviews[history.reviews["event"] == "review"]
    sizes = reviews.groupby("effective_date").size()
    # 30, plus fast entries since the last cut-off, which a review keeps.
    assert sizes.between(30, 32).all() and (sizes.iloc[-8:] == 30).all()
    assert reviews["weight"].max() <= 0.08 + 1e-12


def test_the_march_2025_review_adds_tme_and_horizon(history: rules.IndexHistory) -> None:
    # Published: effective 2025-03-10, +Tencent Music (1698) and +Horizon Robotics (9660).
    ch = history.changes()
    adds = set(ch[(ch["effective_date"] == "2025-03-10") & (ch["change"] == "add")]["id"])
    assert {"1698.HK", "9660.HK"} <= adds


def test_the_june_2025_review_adds_byd_once_it_is_a_smart_vehicle_maker(
    history: rules.IndexHistory,
) -> None:
    # Published: +BYD (1211) effective 2025-06-09. Its judged theme turns on with the
    # 2025-02-10 launch of in-house driver assistance on every model (a dated classification
    # row), so the 31 Mar 2025 cut-off is the first review that sees it as a technology name.
    ch = history.changes()
    adds = ch[(ch["id"] == "1211.HK") & (ch["change"] == "add")]
    assert list(adds["effective_date"]) == [pd.Timestamp("2025-06-09")]
    assert "not a technology-theme name" in history.explain("1211.HK", "2024-12-31")


def test_reviews_stop_at_the_complete_universe_date_by_default(
    ds: indexlab.Dataset, history: rules.IndexHistory
) -> None:
    assert history.calendar["cutoff"].max() <= pd.Timestamp("2025-10-30")
    with pytest.raises(indexlab.DataError, match="partial_universe=True"):
        indexlab.build_index(ds, rules.HSTECH, start="2025-01-01", end="2026-06-30")


def test_a_partial_universe_review_says_which_names_it_could_not_see(
    ds: indexlab.Dataset,
) -> None:
    with pytest.warns(indexlab.DataWarning, match="partial universe"):
        hist = indexlab.build_index(
            ds, rules.HSTECH, start="2025-06-01", end="2026-03-31", partial_universe=True
        )
    late = hist.partial_reviews
    assert len(late) >= 1 and (late["names_without_data"] > 50).all()
    # A name whose data end on 2025-10-30 is told apart from a suspended one.
    cut = late["review_date"].iloc[-1]
    why = hist.explain("0020.HK", cut)  # SenseTime: its series here ends on 2025-10-30
    assert "no data after 2025-10-30" in why and "coverage gap" in why
