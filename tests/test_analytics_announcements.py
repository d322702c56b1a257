"""Change announcements on a synthetic market with a fast entry and a later deletion; the
expected tables come from the history's own review rows and a plain numpy drift."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import analytics, rules


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return indexlab.datasets.synthetic(n_securities=120, years=3, seed=0)


@pytest.fixture(scope="module")
def hist(ds: indexlab.Dataset) -> indexlab.IndexHistory:
    return indexlab.build_index(ds, rules.HSTECH.replace(n=20, selection={"fast_entry_top": 20}))


def events(hist: indexlab.IndexHistory) -> list[tuple[pd.Timestamp, pd.Timestamp, str]]:
    keys = ["effective_date", "review_date", "event"]
    rows = hist.reviews[keys].drop_duplicates().sort_values(keys)
    return [tuple(r) for r in rows.itertuples(index=False)]


def members(hist: indexlab.IndexHistory, event: tuple) -> pd.DataFrame:
    r = hist.reviews
    key = (r["effective_date"] == event[0]) & (r["review_date"] == event[1])
    return r[key & (r["event"] == event[2])].set_index("id")


def held_values(ds: indexlab.Dataset) -> np.ndarray:
    """HKD total-return values carried forward over gaps (plain pandas)."""
    tr = pd.DataFrame(ds.field("total_return") * ds.fx_to_hkd())
    return tr.ffill().to_numpy()


def implementation_day(ds: indexlab.Dataset, hist: indexlab.IndexHistory, event: tuple) -> int:
    if event[2] == "review":
        cal = hist.calendar.set_index("cutoff")
        return int(cal.loc[event[1], "impl_idx"])
    return int(np.searchsorted(ds.dates, np.datetime64(event[0].date(), "D"))) - 1


def test_fast_entry_notice(ds: indexlab.Dataset, hist: indexlab.IndexHistory) -> None:
    evs = events(hist)
    k = next(i for i, e in enumerate(evs) if e[2] == "fast_entry")
    fast, prev = evs[k], evs[k - 1]
    notice = analytics.announcement(ds, hist, review=fast[0])
    new, old = members(hist, fast), members(hist, prev)
    added = sorted(set(new.index) - set(old.index))
    assert notice.event == "fast_entry" and len(added) == 1
    assert notice.changes[["change", "id"]].values.tolist() == [["add", added[0]]]
    listed = ds.securities.set_index("id").loc[added[0], "listing_date"]
    assert notice.changes["reason"].iloc[0] == f"fast entry: a new listing ({listed.date()})"
    assert notice.announcement_date is None  # announced as it arose: no date estimated
    impl = implementation_day(ds, hist, fast)
    assert notice.implementation_date == pd.Timestamp(ds.dates[impl])
    assert notice.effective_date == fast[0] and ds.dates[impl + 1] == np.datetime64(fast[0].date())
    # Pro-forma weights and capping factors: the history's rows, largest first.
    table = notice.constituents.set_index("id")
    assert set(table.index) == set(new.index) and table["weight"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(table.loc[new.index, "weight"], new["weight"], rtol=0, atol=0)
    np.testing.assert_allclose(table.loc[new.index, "capping_factor"], new["capping_factor"])
    assert table["new"].sum() == 1 and bool(table.loc[added[0], "new"])
    # One-way turnover: previous weights drifted by total return to the implementation close.
    values = held_values(ds)
    t0, t1 = implementation_day(ds, hist, prev), impl
    ids = pd.Index(ds.ids)
    w_old = np.zeros(len(ids))
    w_old[ids.get_indexer(old.index)] = old["weight"]
    w_new = np.zeros(len(ids))
    w_new[ids.get_indexer(new.index)] = new["weight"]
    held = w_old > 0
    grown = np.zeros(len(ids))
    grown[held] = w_old[held] * values[t1, held] / values[t0, held]
    expected = np.abs(w_new - grown / grown.sum()).sum() / 2
    assert notice.one_way_turnover == pytest.approx(expected, rel=1e-10)


def test_review_notice_with_a_deletion(ds: indexlab.Dataset, hist: indexlab.IndexHistory) -> None:
    evs = events(hist)
    k = next(
        i
        for i, e in enumerate(evs)
        if i > 0
        and e[2] == "review"
        and set(members(hist, evs[i - 1]).index) - set(members(hist, e).index)
    )
    event, prev = evs[k], evs[k - 1]
    notice = analytics.announcement(ds, hist, review=event[1])  # by its cut-off
    deleted = sorted(set(members(hist, prev).index) - set(members(hist, event).index))
    added = sorted(set(members(hist, event).index) - set(members(hist, prev).index))
    got = notice.changes
    assert got.loc[got["change"] == "delete", "id"].tolist() == deleted
    assert got.loc[got["change"] == "add", "id"].tolist() == added
    for sid in deleted:
        reason = got.set_index("id").loc[sid, "reason"]
        assert hist.explain(sid, event[1]).endswith(reason) and "selected" not in reason
    impl = pd.Timestamp(hist.calendar.set_index("cutoff").loc[event[1], "implementation"])
    assert notice.announcement_date == impl - pd.Timedelta(days=14)
    assert notice.count_before == len(members(hist, prev))
    names = ds.securities.set_index("id")["name"]
    md = notice.to_markdown()
    for sid in deleted:
        assert f"| delete | {sid} | {names[sid]} |" in md
    assert md.count("\n| ") - 2 == len(got) + len(notice.constituents)  # two header rows
    page = notice.to_html()
    assert 'id="changes-table"' in page and 'id="constituents-table"' in page
    assert "http" not in page and "<script" not in page


def test_change_table_lists_every_change(ds: indexlab.Dataset, hist: indexlab.IndexHistory) -> None:
    table = analytics.change_table(ds, hist)
    first = hist.reviews["effective_date"].min()
    ref = hist.changes()
    ref = ref[ref["effective_date"] > first]
    got = table[["effective_date", "id", "change"]].sort_values(["effective_date", "id"])
    exp = ref[["effective_date", "id", "change"]].sort_values(["effective_date", "id"])
    assert got.values.tolist() == exp.values.tolist()
    assert (table["reason"].str.len() > 0).all()
    assert {"fast_entry", "review"} <= set(table["event"])


def test_unknown_review_is_a_data_error(ds: indexlab.Dataset, hist: indexlab.IndexHistory) -> None:
    with pytest.raises(indexlab.DataError, match=r"^review 2001-01-01 is not a cut-off"):
        analytics.announcement(ds, hist, review="2001-01-01")
    with pytest.raises(indexlab.DataError, match=r"^history must be an IndexHistory"):
        analytics.announcement(ds, "HSTECH")  # type: ignore[arg-type]
