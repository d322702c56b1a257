"""IndexHistory.compare and the published-changes dataset, on a hand-made market.

The market runs on the business days of 2024 with six names whose market caps (close 1, free
float 1) are constant within three periods. The rules select the top 3 by market cap with no
buffer (newcomers and incumbents both need rank <= 3), no velocity test, no fast entry and no
binding cap, so every membership below is a sort of the numbers in ``CAPS``:

======  =====================  =====================  =====================
name    to 31 Mar (cut-off 1)  Apr-Jun (cut-off 2)    from Jul (cut-off 3)
======  =====================  =====================  =====================
A       100                    100                    100
B       90                     90                     10
C       80                     20                     20
D       50                     85                     85
E       40                     40                     95
F       30                     30                     30
======  =====================  =====================  =====================

=============  ==========  ==========================  ======================
cut-off        effective   top 3 (rank order)          changes
=============  ==========  ==========================  ======================
2024-03-29     2024-06-10  A 100, B 90, C 80           first review
2024-06-28     2024-09-09  A 100, B 90, D 85           +D, -C
2024-09-30     2024-12-09  A 100, E 95, D 85           +E, -B
=============  ==========  ==========================  ======================

At cut-off 2 the ranks are A1 B2 D3 E4 F5 C6; at cut-off 3, A1 E2 D3 F4 C5 B6.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import indexlab
import numpy as np
import pandas as pd
import pytest
from hand_market import security_row
from indexlab import rules
from indexlab.errors import DataError
from indexlab.market import Market
from indexlab.rules import Comparison

DATES = pd.bdate_range("2024-01-01", "2024-12-31").to_numpy().astype("datetime64[D]")
APRIL = int(np.searchsorted(DATES, np.datetime64("2024-04-01")))
JULY = int(np.searchsorted(DATES, np.datetime64("2024-07-01")))
CAPS = {
    "A": (100.0, 100.0, 100.0),
    "B": (90.0, 90.0, 10.0),
    "C": (80.0, 20.0, 20.0),
    "D": (50.0, 85.0, 85.0),
    "E": (40.0, 40.0, 95.0),
    "F": (30.0, 30.0, 30.0),
}
TOP3 = rules.IndexRules(
    name="top3",
    universe=rules.Universe(markets=("HK",)),
    eligibility=rules.Eligibility(min_listing_days=0, velocity_threshold=0.0),
    selection=rules.Selection(n=3, key="mcap", buffer=0.0, fast_entry_top=0),
    weighting=rules.Weighting(cap=1.0),
)
FIRST, SECOND, THIRD = "2024-06-10", "2024-09-09", "2024-12-09"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hist() -> rules.IndexHistory:
    ids = list(CAPS)
    t = len(DATES)
    listed = {"listing_date": "2015-01-02", "ai_layer": "application", "ai_score": 0.5}
    sec = pd.DataFrame([security_row(i, **listed) for i in ids])
    shares = np.empty((t, len(ids)))
    for j, i in enumerate(ids):
        shares[:APRIL, j], shares[APRIL:JULY, j], shares[JULY:, j] = CAPS[i]
    ones = np.ones((t, len(ids)))
    fields = {
        "close": ones,
        "total_return": ones,
        "shares_outstanding": shares,
        "free_float_factor": ones,
        "turnover_value": shares * 0.01,
        "turnover_shares": shares * 0.01,
    }
    ds = indexlab.Dataset.from_arrays(sec, DATES, fields)
    return indexlab.build_index(ds, TOP3)


def changes(*rows: tuple[str, str | None, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["effective", "id", "change"])


def statuses(cmp: Comparison) -> dict[str, str]:
    days = cmp.reviews["effective"].dt.strftime("%Y-%m-%d")
    return dict(zip(days, cmp.reviews["status"], strict=True))


def review(cmp: Comparison, effective: str) -> pd.Series:
    r = cmp.reviews
    return r[r["effective"] == pd.Timestamp(effective)].iloc[0]


def test_the_hand_made_history_is_as_worked_out(hist: rules.IndexHistory) -> None:
    ch = hist.changes()
    later = ch[ch["effective_date"] > pd.Timestamp(FIRST)]
    days = later["effective_date"].dt.strftime("%Y-%m-%d")
    got = set(zip(days, later["id"], later["change"], strict=True))
    assert got == {
        (SECOND, "D", "add"),
        (SECOND, "C", "delete"),
        (THIRD, "E", "add"),
        (THIRD, "B", "delete"),
    }


def test_matched_missed_and_extra(hist: rules.IndexHistory) -> None:
    # Second review: published +D +F -C -A; engine +D -C. Third: published +E (no deletion);
    # engine +E -B.
    published = changes(
        (SECOND, "D", "add"),
        (SECOND, "F", "add"),
        (SECOND, "C", "delete"),
        (SECOND, "A", "delete"),
        (THIRD, "E", "add"),
    )
    cmp = hist.compare(published)
    assert cmp.kind == "changes"
    second = review(cmp, SECOND)
    assert second["status"] == "compared"
    assert second["cutoff"] == pd.Timestamp("2024-06-28")
    assert second["matched_adds"] == ["D"] and second["missed_adds"] == ["F"]
    assert second["extra_adds"] == [] and second["matched_deletes"] == ["C"]
    assert second["missed_deletes"] == ["A"] and second["extra_deletes"] == []
    third = review(cmp, THIRD)
    assert third["matched_adds"] == ["E"] and third["extra_deletes"] == ["B"]
    assert third["missed_adds"] == [] and third["missed_deletes"] == []

    # 2024: published 5 (D F C A E), matched 3 (D C E), missed 2 (F A), extra 1 (B).
    s = cmp.summary()
    assert s.index.tolist() == [2024]
    row = s.loc[2024]
    assert row[["reviews", "published", "matched", "missed", "extra", "not_compared"]].tolist() == [
        2,
        5,
        3,
        2,
        1,
        0,
    ]
    assert row["hit_rate"] == pytest.approx(3 / 5)
    assert row["extra_share"] == pytest.approx(1 / 4)
    per_review = cmp.summary(by="review")
    assert per_review.loc[pd.Timestamp(SECOND), "hit_rate"] == pytest.approx(2 / 4)
    assert per_review.loc[pd.Timestamp(THIRD), "extra_share"] == pytest.approx(1 / 2)


def test_names_carry_the_engine_explanation(hist: rules.IndexHistory) -> None:
    published = changes((SECOND, "D", "add"), (SECOND, "F", "add"), (SECOND, "A", "delete"))
    names = hist.compare(published).names.set_index(["id", "change"])
    # Ranks at cut-off 2 (2024-06-28): A 1, B 2, D 3, E 4, F 5, C 6.
    assert names.loc[("D", "add"), "outcome"] == "matched"
    assert "selected (reason rank), rank 3 by mcap (85)" in names.loc[("D", "add"), "reason"]
    assert names.loc[("F", "add"), "outcome"] == "missed"
    assert "eligible but not selected: rank 5" in names.loc[("F", "add"), "reason"]
    assert names.loc[("A", "delete"), "outcome"] == "missed"
    assert "rank 1 by mcap (100)" in names.loc[("A", "delete"), "reason"]
    # The engine's deletion of C (rank 6) is extra: the published deletes are A only.
    assert names.loc[("C", "delete"), "outcome"] == "extra"
    assert "rank 6" in names.loc[("C", "delete"), "reason"]
    assert (names["cutoff"] == pd.Timestamp("2024-06-28")).all()
    assert names.loc[("D", "add"), "reason"].startswith("D at the review with cut-off 2024-06-28")


def test_no_change_review_counts_every_engine_change_as_extra(hist: rules.IndexHistory) -> None:
    cmp = hist.compare(changes((THIRD, None, "none")))
    third = review(cmp, THIRD)
    assert third["status"] == "compared"
    assert third["extra_adds"] == ["E"] and third["extra_deletes"] == ["B"]
    row = cmp.summary().loc[2024]
    assert row[["published", "matched", "missed", "extra"]].tolist() == [0, 0, 0, 2]
    assert np.isnan(row["hit_rate"]) and row["extra_share"] == 1.0


def test_unknown_deletions_are_neither_missed_nor_extra(hist: rules.IndexHistory) -> None:
    cmp = hist.compare(changes((THIRD, "E", "add"), (THIRD, None, "delete_unknown")))
    third = review(cmp, THIRD)
    assert not third["deletes_known"] and third["adds_known"]
    assert third["extra_deletes"] == [] and third["missed_deletes"] == []
    assert third["unchecked_deletes"] == ["B"]
    names = cmp.names.set_index("id")
    assert names.loc["B", "outcome"] == "unchecked"
    row = cmp.summary().loc[2024]
    assert row[["published", "matched", "missed", "extra"]].tolist() == [1, 1, 0, 0]
    assert row["hit_rate"] == 1.0 and row["extra_share"] == 0.0


def test_reviews_the_history_cannot_compare(hist: rules.IndexHistory) -> None:
    published = changes(
        (FIRST, "A", "add"),  # the history's first review: no earlier membership
        ("2024-10-15", "F", "add"),  # between reviews: no review takes effect that day
        ("2025-03-10", "F", "add"),  # after the history's last review
        ("2025-03-10", "A", "delete"),
        ("2023-12-04", None, "none"),  # before its first review
    )
    cmp = hist.compare(published)
    status = statuses(cmp)
    assert status == {
        "2023-12-04": "not_covered",
        FIRST: "first_review",
        "2024-10-15": "unmatched",
        "2025-03-10": "not_covered",
    }
    assert cmp.names.empty
    s = cmp.summary()
    assert s.index.tolist() == [2023, 2024, 2025]
    assert s["reviews"].tolist() == [0, 0, 0]
    assert s["not_compared"].tolist() == [0, 2, 2]
    assert s["published"].tolist() == [0, 0, 0]


def test_rows_without_an_effective_date_are_skipped(hist: rules.IndexHistory) -> None:
    cmp = hist.compare(changes((SECOND, "D", "add"), (None, "C", "delete")))
    assert cmp.skipped["id"].tolist() == ["C"]
    assert cmp.reviews["effective"].tolist() == [pd.Timestamp(SECOND)]


def test_tolerance_days(hist: rules.IndexHistory) -> None:
    # One day after the engine's effective date: unmatched exactly, matched within 3 days.
    published = changes(("2024-09-10", "D", "add"))
    assert hist.compare(published).reviews["status"].tolist() == ["unmatched"]
    cmp = hist.compare(published, tolerance_days=3)
    row = cmp.reviews.iloc[0]
    assert row["status"] == "compared" and row["matched_adds"] == ["D"]
    assert row["history_effective"] == pd.Timestamp(SECOND)
    both = changes(("2024-09-08", "D", "add"), ("2024-09-10", "D", "add"))
    with pytest.raises(DataError, match="both match"):
        hist.compare(both, tolerance_days=3)


def test_full_membership_lists(hist: rules.IndexHistory) -> None:
    # Published lists {A B C} -> {A B F} -> {A D E}. The engine's: {A B C} -> {A B D} -> {A D E}.
    lists = {FIRST: "ABC", SECOND: "ABF", THIRD: "ADE"}
    published = pd.DataFrame(
        [(d, i) for d, members in lists.items() for i in members],
        columns=["effective_date", "id"],
    )
    cmp = hist.compare(published)
    assert cmp.kind == "lists"
    assert cmp.reviews["status"].tolist() == ["baseline", "compared", "compared"]
    second = review(cmp, SECOND)  # published +F -C; engine +D -C
    assert second["published_adds"] == ["F"] and second["published_deletes"] == ["C"]
    assert second["matched_deletes"] == ["C"] and second["missed_adds"] == ["F"]
    assert second["extra_adds"] == ["D"]
    third = review(cmp, THIRD)  # published +D +E -B -F; engine +E -B
    assert third["matched_adds"] == ["E"] and third["missed_adds"] == ["D"]
    assert third["matched_deletes"] == ["B"] and third["missed_deletes"] == ["F"]
    assert third["extra_adds"] == [] and third["extra_deletes"] == []
    row = cmp.summary(by="all").loc["all"]
    assert row[["published", "matched", "missed", "extra"]].tolist() == [6, 3, 3, 1]
    assert row["hit_rate"] == pytest.approx(0.5)
    assert row["extra_share"] == pytest.approx(0.25)


def test_lists_that_skip_a_review_span_the_same_interval(hist: rules.IndexHistory) -> None:
    # Lists at the first and third reviews only: published +D +E -B -C; engine the same.
    published = pd.DataFrame({"effective": [FIRST] * 3 + [THIRD] * 3, "id": list("ABCADE")})
    third = review(hist.compare(published), THIRD)
    assert third["matched_adds"] == ["D", "E"] and third["matched_deletes"] == ["B", "C"]
    assert third["missed_adds"] == [] and third["extra_deletes"] == []


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (pd.DataFrame({"id": ["A"], "change": ["add"]}), "needs columns"),
        (changes((SECOND, "A", "moved")), "not among"),
        (changes((SECOND, None, "add")), "has no id"),
        (changes((SECOND, "A", "none")), "must have no id"),
        (changes((SECOND, "D", "add"), (SECOND, None, "none")), "marked 'none'"),
        (changes((SECOND, "D", "add")).assign(index=["HSI"]), None),
        (
            pd.concat(
                [
                    changes((SECOND, "D", "add")).assign(index="HSI"),
                    changes((SECOND, "C", "delete")).assign(index="HSTECH"),
                ]
            ),
            "several indices",
        ),
    ],
)
def test_bad_published_tables(
    hist: rules.IndexHistory, table: pd.DataFrame, match: str | None
) -> None:
    if match is None:
        hist.compare(table)  # one index in an index column is fine
        return
    with pytest.raises(DataError, match=match):
        hist.compare(table)


def test_compare_rejects_non_frames_and_negative_tolerance(hist: rules.IndexHistory) -> None:
    with pytest.raises(DataError, match="DataFrame"):
        hist.compare({"effective": [SECOND]})  # type: ignore[arg-type]
    with pytest.raises(DataError, match="tolerance_days"):
        hist.compare(changes((SECOND, "D", "add")), tolerance_days=-1)
    with pytest.raises(DataError, match="by must be"):
        hist.compare(changes((SECOND, "D", "add"))).summary(by="month")


# ---------------------------------------------------------------------------- the dataset


def test_published_hstech_changes_match_the_doc() -> None:
    """docs/hang-seng-rules.md 1.6, counted by hand: 9 adds, 9 deletes, 3 reviews with no
    change (2024-06, 2025-09, 2026-03) and the 2026-06 review's unknown deletions."""
    ch = indexlab.datasets.published_changes("HSTECH")
    assert list(ch.columns) == [
        "index",
        "review_cutoff",
        "announced",
        "effective",
        "id",
        "name",
        "change",
        "note",
        "source",
    ]
    assert ch["change"].value_counts().to_dict() == {
        "add": 9,
        "delete": 9,
        "none": 3,
        "delete_unknown": 1,
    }
    day = ch["effective"].dt.strftime("%Y-%m-%d")
    pairs = set(zip(day, ch["id"].fillna(""), ch["change"], strict=True))
    assert pairs == {
        ("2021-03-15", "6690.HK", "add"),
        ("2021-03-15", "9698.HK", "add"),
        ("2021-03-15", "1478.HK", "delete"),
        ("2021-03-15", "1896.HK", "delete"),
        ("2021-03-15", "2400.HK", "delete"),
        ("2021-03-15", "2858.HK", "delete"),
        ("2023-09-04", "1797.HK", "add"),
        ("2023-09-04", "2018.HK", "delete"),
        ("2024-06-11", "", "none"),
        ("2025-03-10", "1698.HK", "add"),
        ("2025-03-10", "9660.HK", "add"),
        ("2025-03-10", "1797.HK", "delete"),
        ("2025-03-10", "6060.HK", "delete"),
        ("2025-06-09", "1211.HK", "add"),
        ("2025-06-09", "0772.HK", "delete"),
        ("2025-09-08", "", "none"),
        ("2025-12-08", "9863.HK", "add"),
        ("2025-12-08", "0522.HK", "delete"),
        ("2026-03-09", "", "none"),
        ("2026-06-08", "0100.HK", "add"),
        ("2026-06-08", "2513.HK", "add"),
        ("2026-06-08", "", "delete_unknown"),
    }
    cutoff = dict(zip(day, ch["review_cutoff"].dt.strftime("%Y-%m-%d"), strict=True))
    assert cutoff["2023-09-04"] == "2023-06-30" and cutoff["2026-06-08"] == "2026-03-31"
    assert ch.loc[day == "2026-06-08", "announced"].isna().all()  # "May 2026": no day given
    assert ch["source"].str.startswith("hang-seng-rules.md 1.6; [").all()
    assert (ch["index"] == "HSTECH").all()


def test_published_hsi_changes_match_the_doc() -> None:
    """docs/hang-seng-rules.md 2.2b: 12 adds, 4 deletes (Hang Seng Bank's without a date),
    3 reviews with no change."""
    ch = indexlab.datasets.published_changes("HSI")
    assert ch["change"].value_counts().to_dict() == {"add": 12, "delete": 4, "none": 3}
    day = ch["effective"].dt.strftime("%Y-%m-%d").fillna("")
    gone = ch["change"] == "delete"
    deletes = set(zip(day[gone], ch.loc[gone, "id"], strict=True))
    assert deletes == {
        ("2024-06-11", "6098.HK"),
        ("2024-12-09", "0017.HK"),
        ("", "0011.HK"),
        ("2026-03-09", "0881.HK"),
    }
    assert set(day[ch["change"] == "none"]) == {"2024-03-04", "2024-09-09", "2025-03-10"}
    adds = ch[ch["change"] == "add"].groupby(day)["id"].apply(sorted).to_dict()
    assert adds == {
        "2024-06-11": ["0285.HK"],
        "2024-12-09": ["1024.HK", "9901.HK"],
        "2025-06-09": ["0300.HK", "2057.HK"],
        "2025-09-08": ["0728.HK", "2618.HK", "9992.HK"],
        "2025-12-08": ["1801.HK"],
        "2026-03-09": ["3750.HK", "3993.HK", "6181.HK"],
    }


@pytest.mark.parametrize("index", ["HSTECH", "HSI"])
def test_published_ids_and_dates_are_well_formed(index: str) -> None:
    ch = indexlab.datasets.published_changes(index)
    ids = ch["id"].dropna()
    assert all(re.fullmatch(r"\d{4}\.HK", i) for i in ids)
    assert ch.loc[ch["change"].isin(["add", "delete"]), "id"].notna().all()
    assert ch.loc[~ch["change"].isin(["add", "delete"]), "id"].isna().all()
    for column in ("review_cutoff", "announced", "effective"):
        assert ch[column].dtype.kind == "M"
    dated = ch.dropna(subset=["review_cutoff", "effective"])
    assert (dated["effective"] > dated["review_cutoff"]).all()
    assert ch["source"].str.len().gt(0).all()


def test_published_changes_loader_returns_copies_and_rejects_unknown_names() -> None:
    first = indexlab.datasets.published_changes("HSTECH")
    first.loc[0, "id"] = "XXXX.HK"
    first.drop(columns="source", inplace=True)
    again = indexlab.datasets.published_changes("hstech")  # case-insensitive
    assert again.loc[0, "id"] == "6690.HK" and "source" in again.columns
    with pytest.raises(DataError, match="HSCEI"):
        indexlab.datasets.published_changes("HSCEI")


def test_published_files_ship_in_the_wheel() -> None:
    folder = Path(indexlab.datasets.PUBLISHED_PATH)
    assert (folder / "hstech_changes.csv").is_file() and (folder / "hsi_changes.csv").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["maturin"]["include"]
    shipped = {entry["path"] for entry in include if "wheel" in entry.get("format", [])}
    assert "python/indexlab/datasets/published/*" in shipped


# ---------------------------------------------------------------------------- the real sample


def test_real_sample_comparison_runs() -> None:
    hist = indexlab.build_index(indexlab.datasets.hk_tech(), rules.HSTECH, start="2023-01-01")
    cmp = hist.compare(indexlab.datasets.published_changes("HSTECH"))
    summary = cmp.summary(by="year")
    assert {2023, 2025} <= set(summary.index)
    assert summary.loc[2023, "reviews"] == 1 and summary.loc[2025, "reviews"] == 4
    # The universe is complete to 2025-10-30 (README, the sample data), so the reviews with
    # cut-offs 2025-12-31 and 2026-03-31 are not run and the 2026 reviews are not covered.
    status = statuses(cmp)
    assert status["2026-03-09"] == "not_covered" and status["2026-06-08"] == "not_covered"
    assert summary.loc[2026, "not_compared"] == 2  # +0100, +2513; deletions unknown
    assert set(cmp.names["outcome"]) <= {"matched", "missed", "extra", "unchecked"}
    assert cmp.names["reason"].str.len().gt(0).all()


def test_partial_universe_reviews_are_told_apart_from_compared_ones() -> None:
    """Past the complete-universe date (2025-10-30) the engine sees only the names with data:
    a constituent whose series ends there drops out as a coverage gap, which is no evidence
    against HSIL's decision. Such changes are ``no_data``; the review is ``partial`` and counts
    only when asked for."""
    with pytest.warns(indexlab.DataWarning, match="partial universe"):
        hist = indexlab.build_index(
            indexlab.datasets.hk_tech(),
            rules.HSTECH,
            start="2025-06-01",
            end="2026-04-30",
            partial_universe=True,
        )
    cmp = hist.compare(indexlab.datasets.published_changes("HSTECH"))
    status = statuses(cmp)
    assert status["2025-12-08"] == "compared"
    assert status["2026-03-09"] == "partial" and status["2026-06-08"] == "partial"
    march = review(cmp, "2026-03-09")
    blind = set(hist.partial_reviews["ids"].iloc[0])
    # SenseTime's series ends on 2025-10-30 (the sample's PROVENANCE): unjudgeable, not extra.
    assert "0020.HK" in march["no_data_deletes"] and "0020.HK" in blind
    assert not set(march["extra_deletes"]) & blind
    names = cmp.names.set_index(["effective", "id"])
    assert names.loc[(pd.Timestamp("2026-03-09"), "0020.HK"), "outcome"] == "no_data"
    # Zhipu and MiniMax have data: both published adds are judged, and matched.
    june = review(cmp, "2026-06-08")
    assert june["matched_adds"] == ["0100.HK", "2513.HK"]
    default = cmp.summary(by="year")
    assert default.loc[2026, "reviews"] == 0 and default.loc[2026, "partial"] == 2
    both = cmp.summary(by="year", include_partial=True)
    assert both.loc[2026, "reviews"] == 2 and both.loc[2026, "matched"] == 2
    assert both.loc[2026, "partial"] == 0
    with pytest.raises(indexlab.DataError, match="include_partial"):
        cmp.summary(include_partial="yes")  # type: ignore[arg-type]


def test_weights_around_published_reviews_against_a_numpy_drift() -> None:
    ds = indexlab.datasets.hk_tech()
    hist = indexlab.build_index(ds, rules.HSTECH, start="2024-06-01")
    published = indexlab.datasets.published_weights("HSTECH")
    june = published[published["effective"] == pd.Timestamp("2025-06-09")]
    t = rules.compare_weights(hist, ds, june)
    assert list(t["id"]) == list(june["id"]) and not t["carried"].any()
    # Post: the weights the review set (HSTECH caps at 8%: BYD entered at the cap, as CICC said).
    rev = hist.reviews[(hist.reviews["effective_date"] == pd.Timestamp("2025-06-09"))]
    post = rev.set_index("id")["weight"]
    np.testing.assert_allclose(t["post_rebuilt"], post.reindex(t["id"]).fillna(0.0), atol=1e-12)
    assert t.set_index("id").loc["1211.HK", "post_rebuilt"] == pytest.approx(0.08)
    # Pre: the March 2025 review's weights drifted with prices to the June implementation close.
    prev = hist.reviews[(hist.reviews["effective_date"] == pd.Timestamp("2025-03-10"))]
    close = pd.DataFrame(Market.of(ds).price_hkd(False), index=ds.dates, columns=ds.ids)
    p0, p1 = close.loc[np.datetime64("2025-03-07")], close.loc[np.datetime64("2025-06-06")]
    w0 = prev.set_index("id")["weight"]
    drifted = w0 * p1[w0.index] / p0[w0.index]
    drifted /= drifted.sum()
    np.testing.assert_allclose(
        t["pre_rebuilt"], drifted.reindex(t["id"]).fillna(0.0).to_numpy(), atol=1e-9
    )
    with pytest.raises(DataError, match="no review effective on"):
        rules.compare_weights(hist, ds, june.assign(effective=pd.Timestamp("2025-06-10")))
    with pytest.raises(DataError, match="'pre' and/or 'post'"):
        rules.compare_weights(hist, ds, june[["effective", "id"]])


def test_published_weights_match_the_doc() -> None:
    """docs/hang-seng-rules.md 4.1: two CICC tables of 13 names each."""
    w = indexlab.datasets.published_weights("hstech")
    assert w.groupby(w["effective"].dt.strftime("%Y-%m-%d")).size().to_dict() == {
        "2025-06-09": 13,
        "2025-12-08": 13,
    }
    row = w.set_index(["effective", "id"])
    assert row.loc[(pd.Timestamp("2025-06-09"), "9999.HK"), ["pre", "post"]].tolist() == [
        0.0462,
        0.0698,
    ]
    assert np.isnan(row.loc[(pd.Timestamp("2025-12-08"), "9863.HK"), "pre"])  # new: Leapmotor
    assert w["source"].str.startswith("hang-seng-rules.md 4.1; [B] CICC").all()
    with pytest.raises(DataError, match="HSI"):
        indexlab.datasets.published_weights("HSI")
