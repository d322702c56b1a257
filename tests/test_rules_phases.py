"""A selection that changes at a date (HSTECH's 30 -> 50 names of 7 Dec 2026), and the
point-in-time fundamental its revenue-growth sleeve ranks by.

The reference is computed independently: the eligible names at each review come from a run of
the same screens that selects every eligible name, and the expected members are then a plain
sort of full market cap (then of revenue growth) at the cut-off.
"""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import rules
from indexlab.market import Market
from indexlab.rules import SelectionPhase, Sleeve


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    base = indexlab.datasets.synthetic(n_securities=120, years=3, seed=3)
    rng = np.random.default_rng(11)
    # Two figures per name: one public from the start, a revision a year later.
    first, later = base.dates[0], base.dates[260]
    growth = pd.DataFrame(
        {
            "id": np.concatenate([base.ids, base.ids]),
            "known_from": [first] * len(base.ids) + [later] * len(base.ids),
            "revenue_growth": rng.normal(0.1, 0.3, 2 * len(base.ids)),
        }
    )
    return base.with_fundamentals(growth)


def phased(switch: str) -> rules.IndexRules:
    return rules.HSTECH.replace(
        selection={
            "n": 12,
            "buffer": 0.0,
            "fast_entry_top": 0,
            "extra": (Sleeve("column:revenue_growth", n=4, missing="error"),),
            "earlier": (SelectionPhase(switch, (15, 0)),),
        },
        weighting={"cap": 0.2},
    )


def members(hist: rules.IndexHistory) -> dict[pd.Timestamp, set[str]]:
    rows = hist.reviews[hist.reviews["event"] == "review"]
    return {pd.Timestamp(d): set(g["id"]) for d, g in rows.groupby("effective_date")}


def test_sizes_change_at_the_date_and_follow_an_independent_sort(ds: indexlab.Dataset) -> None:
    cal = rules.review_calendar(ds.dates, rules.HSTECH)
    switch = cal["effective"].iloc[5]
    hist = indexlab.build_index(ds, phased(str(switch.date())))
    everyone = indexlab.build_index(
        ds, rules.HSTECH.replace(n=400, buffer=0.0, cap=1.0, **{"selection.fast_entry_top": 0})
    )
    eligible = members(everyone)
    mcap = Market.of(ds).market_cap_hkd(free_float=False)
    ids = pd.Index(ds.ids)
    got = members(hist)
    assert len(got) == len(eligible) >= 8
    delisted = ds.securities.set_index("id")["delisting_date"]
    for _, row in hist.calendar.iterrows():
        eff, t = pd.Timestamp(row["effective"]), int(row["cutoff_idx"])
        # A name delisted between cut-off and implementation is chosen, then cannot be bought:
        # it takes its place in the ranking but not in the index.
        gone = set(delisted.index[(delisted > row["cutoff"]) & (delisted <= row["implementation"])])
        ranked = eligible[eff] | gone
        pool = sorted(ranked, key=lambda i: (-mcap[t, ids.get_loc(i)], i))
        if eff < switch:
            expected = set(pool[:15])
        else:
            top = pool[:12]
            growth = ds.fundamental("revenue_growth", [t])[0]
            rest = sorted(set(pool) - set(top), key=lambda i: (-growth[ids.get_loc(i)], i))
            expected = set(top) | set(rest[:4])
        assert got[eff] == expected - gone, eff.date()
    # The growth figures revised a year in are used from then on, not before.
    assert (
        ds.fundamental("revenue_growth", [259, 260]).tolist()[0]
        != ds.fundamental("revenue_growth", [260]).tolist()[0]
    )


def test_a_missing_fundamental_names_the_field_and_the_names(ds: indexlab.Dataset) -> None:
    cal = rules.review_calendar(ds.dates, rules.HSTECH)
    switch = str(cal["effective"].iloc[5].date())
    table = ds.fundamentals
    assert table is not None
    lacking = sorted(ds.ids[:3])
    thin = ds.with_fundamentals(table[~table["id"].isin(lacking)])
    with pytest.raises(indexlab.DataError, match="revenue_growth") as err:
        indexlab.build_index(thin, phased(switch))
    message = str(err.value)
    # Only names in the universe at that review are named; at least one of the three is.
    assert any(i in message for i in lacking) and "missing='skip'" in message
    # Before the switch the sleeve selects nobody, so the field is not needed there.
    early = indexlab.build_index(thin, phased(switch), end=cal["cutoff"].iloc[4])
    assert len(early.calendar) == 5
    # The preset on a dataset without the field at all, through a 50-name review.
    with pytest.raises(indexlab.DataError, match="revenue_growth"):
        indexlab.build_index(
            indexlab.datasets.synthetic(n_securities=120, years=3, seed=3), phased(switch)
        )


def test_the_2026_preset_keeps_thirty_names_before_7_december_2026() -> None:
    sel = rules.HSTECH_2026.selection
    assert sel.sizes_at("2026-09-07") == (30, 0) and sel.sizes_at("2026-12-07") == (40, 10)
    assert rules.IndexRules.from_toml(rules.HSTECH_2026.to_toml()) == rules.HSTECH_2026
    # The 30-name part is HSTECH itself: the sample's history before the change is identical.
    ds = indexlab.datasets.hk_tech()
    a = indexlab.build_index(ds, rules.HSTECH, start="2024-01-01")
    b = indexlab.build_index(ds, rules.HSTECH_2026, start="2024-01-01")
    pd.testing.assert_frame_equal(a.reviews, b.reviews)


def test_bad_phases_are_refused() -> None:
    with pytest.raises(indexlab.DataError, match="sizes"):
        rules.HSTECH.replace(selection={"earlier": (SelectionPhase("2026-12-07", (30, 0)),)})
    with pytest.raises(indexlab.DataError, match="date"):
        SelectionPhase("not a date", (30,))
    with pytest.raises(indexlab.DataError, match="at least one name"):
        SelectionPhase("2026-12-07", (0,))
    with pytest.raises(indexlab.DataError, match="increasing"):
        late, early = SelectionPhase("2026-12-07", (30,)), SelectionPhase("2025-01-01", (20,))
        rules.HSTECH.replace(selection={"earlier": (late, early)})
    with pytest.raises(indexlab.DataError, match="missing"):
        Sleeve("column:revenue_growth", n=3, missing="ignore")
