"""Hand-worked scenarios for the index rules engine, one per rule, on tiny hand-made markets.

Every market below runs on business days of 2024. Cut-offs are the last trading days of March,
June and September (December has no later month in the data, so it is not a review):

=============  =====================  ==============
cut-off        implementation (Fri)   effective
=============  =====================  ==============
2024-03-29     2024-06-07             2024-06-10
2024-06-28     2024-09-06             2024-09-09
2024-09-30     2024-12-06             2024-12-09
=============  =====================  ==============

Market caps are piecewise constant (close 1, free float 1 unless stated), so every expected
weight below is a ratio of the numbers written in the test.
"""

from __future__ import annotations

import subprocess
import sys

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import rules
from indexlab.errors import DataError, InfeasibleError

DATES = pd.bdate_range("2024-01-01", "2024-12-31").to_numpy().astype("datetime64[D]")
T = len(DATES)
SWITCH = int(np.searchsorted(DATES, np.datetime64("2024-04-01")))  # caps change after cut-off 1

# Plain rules: no velocity test, no fast entry, no caps binding, 4 names, buffer 25% (keep an
# incumbent to rank 5, let a newcomer in from rank 3).
BASE = rules.IndexRules(
    name="test",
    universe=rules.Universe(markets=("HK",)),
    eligibility=rules.Eligibility(min_listing_days=0, velocity_threshold=0.0),
    selection=rules.Selection(n=4, key="mcap", buffer=0.25, fast_entry_top=0),
    weighting=rules.Weighting(cap=1.0),
)


def market(
    caps: dict[str, list[float] | float],
    listing: dict[str, str] | None = None,
    delisting: dict[str, str] | None = None,
    industry: dict[str, str] | None = None,
    extra: dict[str, dict[str, object]] | None = None,
    turnover: dict[str, np.ndarray] | None = None,
    ff: dict[str, float] | None = None,
) -> indexlab.Dataset:
    """A market where ``caps[id]`` is a cap, or [cap before April, cap from April]."""
    ids = list(caps)
    listing = listing or {}
    delisting = delisting or {}
    sec = pd.DataFrame(
        {
            "id": ids,
            "name": ids,
            "market": "HK",
            "currency": "HKD",
            "listing_date": [listing.get(i, "2015-01-02") for i in ids],
            "delisting_date": [delisting.get(i) for i in ids],
            "industry": [(industry or {}).get(i, "Information Technology") for i in ids],
            "listing_type": "primary",
            "wvr": False,
            "connect_eligible": True,
            "ai_layer": "application",
            "ai_score": 0.5,
        }
    )
    for col, values in (extra or {}).items():
        sec[col] = [values.get(i, False) for i in ids]
    shares = np.empty((T, len(ids)))
    for j, i in enumerate(ids):
        c = caps[i]
        before, after = (c, c) if isinstance(c, float | int) else c
        shares[:SWITCH, j], shares[SWITCH:, j] = before, after
    close = np.ones((T, len(ids)))
    ffac = np.ones((T, len(ids)))
    for j, i in enumerate(ids):
        ffac[:, j] = (ff or {}).get(i, 1.0)
    vol = shares * 0.01
    for j, i in enumerate(ids):
        if turnover and i in turnover:
            vol[:, j] = turnover[i]
    listed = (DATES[:, None] >= sec["listing_date"].to_numpy().astype("datetime64[D]")) & (
        DATES[:, None]
        <= np.where(
            sec["delisting_date"].isna(),
            np.datetime64("2100-01-01"),
            pd.to_datetime(sec["delisting_date"]).to_numpy().astype("datetime64[D]"),
        )
    )
    fields = {
        "close": close,
        "total_return": close,
        "shares_outstanding": shares,
        "free_float_factor": ffac,
        "turnover_value": vol,
        "turnover_shares": vol,
    }
    fields = {k: np.where(listed, v, np.nan) for k, v in fields.items()}
    return indexlab.Dataset.from_arrays(sec, DATES, fields)


def members(hist: rules.IndexHistory, cutoff: str, event: str = "review") -> dict[str, str]:
    r = hist.reviews
    rows = r[(r["review_date"] == pd.Timestamp(cutoff)) & (r["event"] == event)]
    return dict(zip(rows["id"], rows["reason"], strict=True))


# ---------------------------------------------------------------------------- calendar


def test_calendar_matches_published_reviews() -> None:
    """hang-seng-rules.md 1.6: cut-off -> implemented after close (Fri) -> effective (Mon)."""
    days = pd.bdate_range("2023-06-01", "2025-12-31").to_numpy().astype("datetime64[D]")
    cal = rules.review_calendar(days, rules.HSTECH).set_index("cutoff")
    published = {
        "2023-06-30": ("2023-09-01", "2023-09-04"),
        "2024-12-31": ("2025-03-07", "2025-03-10"),
        "2025-03-31": ("2025-06-06", "2025-06-09"),
        "2025-09-30": ("2025-12-05", "2025-12-08"),
    }
    for cut, (impl, eff) in published.items():
        row = cal.loc[pd.Timestamp(cut)]
        assert row["implementation"] == pd.Timestamp(impl)
        assert row["effective"] == pd.Timestamp(eff)


def test_calendar_on_test_market() -> None:
    cal = rules.review_calendar(DATES, BASE)
    assert [str(d.date()) for d in cal["cutoff"]] == ["2024-03-29", "2024-06-28", "2024-09-30"]
    assert [str(d.date()) for d in cal["effective"]] == ["2024-06-10", "2024-09-09", "2024-12-09"]


# ---------------------------------------------------------------------------- screens


def test_seasoning() -> None:
    # D is the largest but listed 15 Feb 2024: 43 days at the 29 Mar cut-off (< 90), 134 at
    # the 28 Jun cut-off; it enters then and the smallest incumbent (E) leaves.
    ds = market(
        {"A": 50.0, "B": 40.0, "C": 30.0, "D": 100.0, "E": 20.0, "F": 10.0},
        listing={"D": "2024-02-15"},
    )
    hist = indexlab.build_index(ds, BASE.replace(**{"eligibility.min_listing_days": 90}))
    assert set(members(hist, "2024-03-29")) == {"A", "B", "C", "E"}
    assert set(members(hist, "2024-06-28")) == {"A", "B", "C", "D"}
    msg = hist.explain("D", "2024-03-29")
    assert "listing history 43 days < min_listing_days = 90" in msg


def test_velocity_failure_and_recovery() -> None:
    # X (the largest) trades 1e-6 of its shares a day in Feb and Mar (velocity ~2e-5 < 0.1%),
    # 1% a day otherwise (~20% a month). Window 3, 2 required, latest 1: at the March cut-off it
    # passes 1 of 3 months and fails; by June (Apr, May, Jun pass) it recovers.
    caps = {"X": 100.0, "A": 50.0, "B": 40.0, "C": 30.0, "D": 20.0}
    vol = np.full(T, 1.0)
    feb_mar = (DATES >= np.datetime64("2024-02-01")) & (DATES < np.datetime64("2024-04-01"))
    vol[feb_mar] = 1e-4
    ds = market(caps, turnover={"X": vol})
    r = BASE.replace(
        eligibility=rules.Eligibility(
            min_listing_days=0,
            velocity_threshold=0.001,
            velocity_window=3,
            velocity_required=2,
            velocity_recent=1,
            incumbent_required=2,
        )
    )
    hist = indexlab.build_index(ds, r)
    assert "X" not in members(hist, "2024-03-29")
    assert "X" in members(hist, "2024-06-28")
    msg = hist.explain("X", "2024-03-29")
    assert "turnover velocity test failed: 1 of 3 available months" in msg


def test_min_ff_mcap_and_suspension() -> None:
    # E's free float is 10% (ff cap 2 < 5); F has no trade for the whole of March (> 10 days).
    ds = market({"A": 50.0, "B": 40.0, "C": 30.0, "D": 25.0, "E": 20.0, "F": 60.0}, ff={"E": 0.1})
    fields = {k: np.array(ds.field(k)) for k in indexlab.data.PANEL_FIELDS}
    march = (DATES >= np.datetime64("2024-03-01")) & (DATES < np.datetime64("2024-04-01"))
    for k in ("close", "total_return", "turnover_value", "turnover_shares"):
        fields[k][march, 5] = np.nan
    ds = indexlab.Dataset.from_arrays(ds.securities, DATES, fields)
    r = BASE.replace(
        **{
            "eligibility.min_ff_mcap_hkd": 5.0,
            "eligibility.max_suspension_days": 10,
            "selection.n": 5,
        }
    )
    hist = indexlab.build_index(ds, r)
    assert set(members(hist, "2024-03-29")) == {"A", "B", "C", "D"}
    assert "min_ff_mcap_hkd" in hist.explain("E", "2024-03-29")
    assert "suspended: 21 trading days without a trade" in hist.explain("F", "2024-03-29")


# ---------------------------------------------------------------------------- buffers


def test_buffer_keeps_incumbent_just_inside_the_band() -> None:
    # After April: A B C E D F, so incumbent D ranks 5 = round(4 x 1.25): kept (buffer);
    # newcomer E ranks 4 > round(4 x 0.75) = 3: stays out.
    ds = market(
        {
            "A": 60.0,
            "B": 50.0,
            "C": 40.0,
            "D": [30.0, 19.0],
            "E": [10.0, 25.0],
            "F": [5.0, 15.0],
        }
    )
    hist = indexlab.build_index(ds, BASE)
    assert members(hist, "2024-03-29") == {"A": "rank", "B": "rank", "C": "rank", "D": "rank"}
    assert members(hist, "2024-06-28") == {"A": "rank", "B": "rank", "C": "rank", "D": "buffer"}
    assert "newcomers need rank <= 3" in hist.explain("E", "2024-06-28")


def test_buffer_drops_incumbent_just_outside_the_band() -> None:
    # After April: A B C E F D: D ranks 6 > 5 and leaves; the best remaining name, E (rank 4),
    # fills the place even though it is outside the newcomers' band.
    ds = market(
        {"A": 60.0, "B": 50.0, "C": 40.0, "D": [30.0, 10.0], "E": [10.0, 25.0], "F": [5, 15.0]}
    )
    hist = indexlab.build_index(ds, BASE)
    assert members(hist, "2024-06-28") == {"A": "rank", "B": "rank", "C": "rank", "E": "rank"}
    changes = indexlab.build_index(ds, BASE).changes()
    june = changes[changes["review_date"] == pd.Timestamp("2024-06-28")]
    assert set(zip(june["id"], june["change"], strict=True)) == {("E", "add"), ("D", "delete")}


def test_newcomer_must_clear_the_inner_band() -> None:
    # After April: A B E C D F. Newcomer E ranks 3 (<= 3) and enters; that makes five names in
    # the bands (A, B, E, C, D), so the worst-ranked incumbent, D (rank 5), leaves.
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": [10.0, 45.0], "F": 5.0})
    hist = indexlab.build_index(ds, BASE)
    assert set(members(hist, "2024-06-28")) == {"A", "B", "C", "E"}
    assert "incumbent inside the buffer band (rank 5 <= 5" in hist.explain("D", "2024-06-28")
    # Same market, but E only reaches rank 4 (C 40 > E 35 > D 30): not enough for a newcomer.
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": [10.0, 35.0], "F": 5.0})
    assert set(members(indexlab.build_index(ds, BASE), "2024-06-28")) == {"A", "B", "C", "D"}


# ---------------------------------------------------------------------------- fast entry


def test_fast_entry_on_day_ten() -> None:
    # G lists on Mon 1 Jul 2024 with a cap of 55: above the 2nd-largest constituent (B, 50),
    # so within the top 2. Its 10th trading day is Fri 12 Jul; it joins after that close and
    # the weights take effect on Mon 15 Jul, with five names (one above target) until the
    # next review. H (cap 1) lists the same day and is not fast-tracked.
    caps = {"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 10.0, "G": 55.0, "H": 1.0}
    ds = market(caps, listing={"G": "2024-07-01", "H": "2024-07-01"})
    hist = indexlab.build_index(ds, BASE.replace(**{"selection.fast_entry_top": 2}))
    rows = hist.reviews[hist.reviews["event"] == "fast_entry"]
    assert set(rows["effective_date"]) == {pd.Timestamp("2024-07-15")}
    assert set(rows["id"]) == {"A", "B", "C", "D", "G"}
    g = rows[rows["id"] == "G"].iloc[0]
    assert g["reason"] == "fast_entry" and g["rank"] == 2
    # No caps bind, so weights are caps over their sum: 60, 50, 40, 30, 55 of 235.
    w = dict(zip(rows["id"], rows["weight"], strict=True))
    for i in ("A", "B", "C", "D", "G"):
        assert w[i] == pytest.approx(caps[i] / 235.0, rel=1e-12)
    eff, _ids, mat = hist.weights_matrix(when="effective")
    assert np.datetime64("2024-07-15") in eff
    np.testing.assert_allclose(mat.sum(axis=1), 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------- limits and quotas


def test_industry_limit() -> None:
    ind = {"A": "Financials", "B": "Financials", "C": "Financials"}
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 20.0}, industry=ind)
    hist = indexlab.build_index(ds, BASE.replace(**{"selection.max_per_industry": 2}))
    assert set(members(hist, "2024-03-29")) == {"A", "B", "D", "E"}
    assert "max_per_industry = 2" in hist.explain("C", "2024-03-29")


def test_quota_minimum_and_maximum() -> None:
    caps = {"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 20.0, "F": 10.0}
    flags = {"hk_company": {"E": True, "F": True}}
    ds = market(caps, extra=flags)
    hist = indexlab.build_index(
        ds, BASE.replace(**{"selection.quota_column": "hk_company", "selection.quota_min": 1})
    )
    # Top 4 has no flagged name: the worst (D) makes way for the best flagged name (E).
    assert members(hist, "2024-03-29") == {"A": "rank", "B": "rank", "C": "rank", "E": "quota"}
    flags = {"hk_company": {"A": True, "B": True, "C": True}}
    ds = market(caps, extra=flags)
    hist = indexlab.build_index(
        ds, BASE.replace(**{"selection.quota_column": "hk_company", "selection.quota_max": 2})
    )
    assert set(members(hist, "2024-03-29")) == {"A", "B", "D", "E"}
    assert "quota_max = 2" in hist.explain("C", "2024-03-29")


# ---------------------------------------------------------------------------- weighting


def test_per_category_caps_and_global_cap() -> None:
    # A (50 of 100) is WVR with a 10% cap; the global cap is 35%. Hand-worked: A = 0.10; the
    # remaining 0.90 over B, C, D, E = 20, 15, 10, 5 (sum 50) gives B = 0.36 > 0.35, so B is
    # capped too; 0.55 over C, D, E (30) -> 0.275, 0.18333, 0.091667.
    ds = market({"A": 50.0, "B": 20.0, "C": 15.0, "D": 10.0, "E": 5.0}, extra={"wvr": {"A": True}})
    r = BASE.replace(
        **{
            "selection.n": 5,
            "weighting.cap": 0.35,
            "weighting.category_caps": (rules.CategoryCap("wvr", 0.10),),
        }
    )
    hist = indexlab.build_index(ds, r)
    rows = hist.reviews[hist.reviews["review_date"] == pd.Timestamp("2024-03-29")]
    w = dict(zip(rows["id"], rows["weight"], strict=True))
    expected = {"A": 0.10, "B": 0.35, "C": 0.55 * 15 / 30, "D": 0.55 * 10 / 30, "E": 0.55 * 5 / 30}
    for i, v in expected.items():
        assert w[i] == pytest.approx(v, abs=1e-12)
    cf = dict(zip(rows["id"], rows["capping_factor"], strict=True))
    # Uncapped names share the largest factor (1); A keeps 0.10/0.5 of its share vs C's 0.275/0.15.
    assert cf["C"] == pytest.approx(1.0) and cf["A"] == pytest.approx((0.10 / 50) / (0.275 / 15))


def test_equal_and_tilted_weighting() -> None:
    ds = market({"A": 40.0, "B": 30.0, "C": 20.0, "D": 10.0})
    hist = indexlab.build_index(ds, BASE.replace(**{"weighting.scheme": "equal"}))
    rows = hist.reviews[hist.reviews["event"] == "review"]
    np.testing.assert_allclose(rows["weight"], 0.25, rtol=1e-12)
    # ai_score is 0.5 for all: the tilt cancels and weights are market-cap weights.
    hist = indexlab.build_index(ds, BASE.replace(**{"weighting.scheme": "tilted"}))
    first = hist.reviews[hist.reviews["review_date"] == pd.Timestamp("2024-03-29")]
    np.testing.assert_allclose(first["weight"].sort_values(), [0.1, 0.2, 0.3, 0.4], rtol=1e-12)


# ---------------------------------------------------------------------------- delisting


def test_delisting_mid_quarter() -> None:
    # C delists on Wed 31 Jul 2024 (last day with data): removed at that close, effective Thu
    # 1 Aug; its weight goes pro rata to the others: A, B, D = 60, 50, 30 of 140.
    caps = {"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 10.0}
    ds = market(caps, delisting={"C": "2024-07-31"})
    hist = indexlab.build_index(ds, BASE)
    rows = hist.reviews[hist.reviews["event"] == "delisting"]
    assert set(rows["effective_date"]) == {pd.Timestamp("2024-08-01")}
    w = dict(zip(rows["id"], rows["weight"], strict=True))
    assert w == pytest.approx({"A": 60 / 140, "B": 50 / 140, "D": 30 / 140}, rel=1e-12)
    # At the next review C is gone and E fills the place.
    assert set(members(hist, "2024-09-30")) == {"A", "B", "D", "E"}


# ---------------------------------------------------------------------------- errors


def test_infeasible_cap_names_the_review() -> None:
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0})
    with pytest.raises(InfeasibleError, match=r"cut-off 2024-03-29.*4 names x 10\.0000% cap"):
        indexlab.build_index(ds, BASE.replace(cap=0.10))


def test_empty_universe_names_the_screens() -> None:
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0}, listing={"C": "2024-03-01"})
    r = BASE.replace(**{"eligibility.min_listing_days": 60, "universe.industries": ("Energy",)})
    with pytest.raises(InfeasibleError, match=r"cut-off 2024-03-29.*universe filter removed 3"):
        indexlab.build_index(ds, r)
    r = BASE.replace(**{"eligibility.min_listing_days": 5000})
    with pytest.raises(InfeasibleError, match=r"listing history removed 3"):
        indexlab.build_index(ds, r)


# ---------------------------------------------------------------------------- rules as data


@pytest.mark.parametrize("preset", [rules.HSI, rules.HSTECH, rules.AI_CHAIN, rules.AI_CHAIN_AH])
def test_presets_round_trip(preset: rules.IndexRules) -> None:
    assert rules.IndexRules.from_toml(preset.to_toml()) == preset
    assert rules.IndexRules.from_json(preset.to_json()) == preset
    assert rules.IndexRules.from_dict(preset.to_dict()) == preset


def test_replace_forms_and_grid() -> None:
    a = rules.HSTECH.replace(**{"weighting.cap": 0.1})
    b = rules.HSTECH.replace(weighting={"cap": 0.1})
    c = rules.HSTECH.replace(cap=0.1)
    d = rules.HSTECH.replace(weighting=rules.HSTECH.weighting.__class__(cap=0.1))
    assert a == b == c and d.weighting.cap == 0.1
    assert rules.HSTECH.weighting.cap == 0.08  # the preset is untouched
    variants = list(rules.grid(rules.HSTECH, cap=[0.08, 0.1], n=[20, 30, 40]))
    assert len(variants) == 6
    assert {(v.weighting.cap, v.selection.n) for v in variants} == {
        (c, n) for c in (0.08, 0.1) for n in (20, 30, 40)
    }
    with pytest.raises(DataError, match="unknown field"):
        rules.HSTECH.replace(**{"weighting.kap": 0.1})
    with pytest.raises(DataError, match="cap must be in"):
        rules.HSTECH.replace(cap=1.5)
    with pytest.raises(DataError, match="buffer"):
        rules.HSTECH.replace(buffer=1.0)


def test_report_and_weights_matrix_shape() -> None:
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 10.0})
    hist = indexlab.build_index(ds, BASE)
    eff, ids, w = hist.weights_matrix(when="effective")
    assert list(ids) == list(ds.ids) and w.shape == (len(eff), len(ids))
    assert [str(e) for e in eff] == ["2024-06-10", "2024-09-09", "2024-12-09"]
    text = hist.to_rules_report()
    assert text.startswith("# test") and "| 2024-06-10 | 2024-03-29 | review | 4 |" in text


# ---------------------------------------------------------------------------- determinism

_SCRIPT = """
import hashlib, indexlab
from indexlab import rules
ds = indexlab.datasets.synthetic(n_securities=300, years=3, seed=11)
h = indexlab.build_index(ds, rules.HSTECH)
print(hashlib.sha256(h.reviews.to_csv().encode()).hexdigest())
"""


@pytest.mark.slow
def test_deterministic_across_runs_and_threads() -> None:
    out = set()
    for threads in ("1", "2", "2"):
        env = {"RAYON_NUM_THREADS": threads, "PATH": ""}
        res = subprocess.run(
            [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, check=True
        )
        out.add(res.stdout.strip())
    assert len(out) == 1


def test_weights_matrix_set_dates_are_implementation_closes() -> None:
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 10.0})
    eff, _, w = indexlab.build_index(ds, BASE).weights_matrix(when="set")
    assert [str(e) for e in eff] == ["2024-06-07", "2024-09-06", "2024-12-06"]
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)


def test_trailing_average_rank_key() -> None:
    # E jumps from 10 to 70 on 1 Apr (day 65). At the June cut-off (day 129) its cap ranks 1st
    # and it enters as a newcomer; averaged over 126 days (days 4..129: 61 days at 10, 65 at
    # 70) it is (61 x 10 + 65 x 70) / 126 = 40.95, 5th behind A 60, B 55, C 50, D 45: out.
    caps = {"A": 60.0, "B": 55.0, "C": 50.0, "D": 45.0, "E": [10.0, 70.0], "F": 5.0}
    ds = market(caps)
    assert (61 * 10 + 65 * 70) / 126 < 45
    spot = indexlab.build_index(ds, BASE)
    assert "E" in members(spot, "2024-06-28")
    avg = indexlab.build_index(ds, BASE.replace(**{"selection.window_days": 126}))
    assert "E" not in members(avg, "2024-06-28")
    assert "rank 5 by mcap (40.95" in avg.explain("E", "2024-06-28")


def test_composite_selection() -> None:
    # Two by market cap, then one more by the securities column `growth` among the rest.
    caps = {"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 10.0}
    ds = market(caps, extra={"growth": {"A": 9.0, "B": 8.0, "C": 1.0, "D": 2.0, "E": 5.0}})
    r = BASE.replace(
        **{
            "selection.n": 2,
            "selection.extra": (rules.Sleeve(key="column:growth", n=1),),
        }
    )
    hist = indexlab.build_index(ds, r)
    assert set(members(hist, "2024-03-29")) == {"A", "B", "E"}
    assert rules.IndexRules.from_toml(r.to_toml()) == r


@pytest.mark.parametrize("preset", [rules.HSI, rules.HSTECH, rules.AI_CHAIN, rules.AI_CHAIN_AH])
def test_presets_build_on_synthetic(preset: rules.IndexRules) -> None:
    ds = indexlab.datasets.synthetic(n_securities=1000, years=3, seed=5)
    hist = indexlab.build_index(ds, preset)
    rev = hist.reviews[hist.reviews["event"] == "review"]
    sums = rev.groupby("effective_date")["weight"].sum()
    np.testing.assert_allclose(sums, 1.0, rtol=1e-12)
    assert rev["weight"].max() <= preset.weighting.cap + 1e-12
    sec = ds.securities.set_index("id").loc[rev["id"]]
    assert set(sec["market"]) <= set(preset.universe.markets or ("HK", "SH", "SZ"))
    if preset.universe.ai_layers is not None:
        assert set(sec["ai_layer"]) <= set(preset.universe.ai_layers)
        app = rev[sec["ai_layer"].to_numpy() == "application"]
        assert app["weight"].max() <= 0.05 + 1e-12
    if preset.universe.connect_eligible_only:
        assert sec["connect_eligible"].all()


def test_ai_tilted_rank_key() -> None:
    # Key = ff cap x ai_score ** 2: A 60 x 0.1^2 = 0.6, B 50 x 0.5^2 = 12.5, C 40 x 0.9^2 =
    # 32.4, D 30 x 0.5^2 = 7.5, E 20 x 0.8^2 = 12.8. Top 2: C, E.
    ds = market({"A": 60.0, "B": 50.0, "C": 40.0, "D": 30.0, "E": 20.0})
    sec = ds.securities.copy()
    sec["ai_score"] = [0.1, 0.5, 0.9, 0.5, 0.8]
    ds = indexlab.Dataset.from_arrays(sec, DATES, ds.fields)
    r = BASE.replace(**{"selection.n": 2, "selection.key": "ai_tilted", "selection.alpha": 2.0})
    assert set(members(indexlab.build_index(ds, r), "2024-03-29")) == {"C", "E"}


def test_velocity_sum_method() -> None:
    # X trades 0.01 shares a day on 100 free-float shares; with constant volume both
    # definitions (median x trading days, and the sum) give 21 x 0.01 / 100 = 0.0021 in March.
    vol = np.full(T, 0.01)
    ds = market({"X": 100.0, "A": 50.0, "B": 40.0, "C": 30.0, "D": 20.0}, turnover={"X": vol})
    el = dict(
        min_listing_days=0,
        velocity_threshold=0.0025,
        velocity_window=1,
        velocity_required=1,
        velocity_recent=1,
        incumbent_required=1,
    )
    # March has 21 business days: 21 x 0.01 / 100 = 0.0021 < 0.0025, both methods fail X.
    for method in ("median", "sum"):
        r = BASE.replace(eligibility=rules.Eligibility(velocity_method=method, **el))
        assert "X" not in members(indexlab.build_index(ds, r), "2024-03-29")
    el["velocity_threshold"] = 0.002
    for method in ("median", "sum"):
        r = BASE.replace(eligibility=rules.Eligibility(velocity_method=method, **el))
        assert "X" in members(indexlab.build_index(ds, r), "2024-03-29")


def test_velocity_median_vs_sum_on_one_busy_day() -> None:
    # March: 20 days at 0.01 shares and one day at 1.0 on 100 free-float shares. Median x days
    # = 0.01 x 21 / 100 = 0.0021; sum = (20 x 0.01 + 1.0) / 100 = 0.012. Threshold 0.005:
    # "median" fails X, "sum" passes it.
    vol = np.full(T, 0.01)
    vol[int(np.searchsorted(DATES, np.datetime64("2024-03-15")))] = 1.0
    ds = market({"X": 100.0, "A": 50.0, "B": 40.0, "C": 30.0, "D": 20.0}, turnover={"X": vol})
    el = dict(
        min_listing_days=0,
        velocity_threshold=0.005,
        velocity_window=1,
        velocity_required=1,
        velocity_recent=1,
        incumbent_required=1,
    )
    median = BASE.replace(eligibility=rules.Eligibility(velocity_method="median", **el))
    total = BASE.replace(eligibility=rules.Eligibility(velocity_method="sum", **el))
    assert "X" not in members(indexlab.build_index(ds, median), "2024-03-29")
    assert "X" in members(indexlab.build_index(ds, total), "2024-03-29")


def test_screening_lists_every_name_at_a_review() -> None:
    ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    hist = indexlab.build_index(ds, rules.HSTECH.replace(n=20))
    eff = hist.calendar["effective"].iloc[2]
    s = hist.screening(eff)
    members = set(hist.reviews.loc[hist.reviews["effective_date"] == eff, "id"])
    assert set(s.index[s["status"] == "selected"]) == members
    assert len(s) == len(ds.ids) and not s.loc[list(members), "in_universe"].eq(False).any()
    ranked = s[s["rank"] > 0].sort_values("rank")
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    with pytest.raises(DataError, match="no review takes effect"):
        hist.screening(eff + pd.Timedelta(days=1))
