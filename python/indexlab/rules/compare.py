"""Compare a rules-built history with the published record, review by review.

:func:`compare` (also :meth:`IndexHistory.compare <indexlab.rules.IndexHistory.compare>`) takes
the published constituent changes of an index (``indexlab.datasets.published_changes``, from
docs/hang-seng-rules.md 1.6 and 2.2b) or its published membership lists, matches each published
review to the history's review with the same effective date, and says which adds and deletes
the rules reproduce (matched), which they miss (missed) and which they make that HSIL did not
(extra), each with the engine's own explanation (:meth:`IndexHistory.explain`).

Only the reviews in the published table are compared: a history review the table does not
list is unknown, not "no change". A review with no change is a row with ``change = "none"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from indexlab.errors import DataError

if TYPE_CHECKING:
    from indexlab.rules.engine import IndexHistory

__all__ = ["CHANGE_KINDS", "STATUSES", "Comparison", "compare", "compare_weights"]

#: Values of a published table's ``change`` column. ``none``: the review changed nothing (no
#: id). ``add_unknown`` / ``delete_unknown``: the published list of that side is incomplete or
#: unknown (no id), so the engine's adds / deletes there that are not published are
#: ``unchecked`` rather than ``extra``.
CHANGE_KINDS = ("add", "delete", "none", "add_unknown", "delete_unknown")

#: ``Comparison.reviews["status"]``: ``compared``; ``first_review`` (the history's first review:
#: no earlier membership, so its changes are undefined); ``baseline`` (membership lists: the
#: first list, or one whose previous list matches no review, has nothing to be diffed against);
#: ``not_covered`` (outside the history's reviews); ``unmatched`` (inside them, but no review
#: of the history takes effect within ``tolerance_days``); ``partial`` (compared, but the review's
#: cut-off falls after the dataset's complete-universe date, so the engine chose from the names
#: that have data: ``IndexHistory.partial_reviews``). Only ``compared`` reviews count in
#: :meth:`Comparison.summary` unless it is asked to include ``partial`` ones.
STATUSES = ("compared", "partial", "first_review", "baseline", "not_covered", "unmatched")

_SIDES = ("adds", "deletes")
#: ``no_data``: in a ``partial`` review, a published or engine change of a name the dataset has
#: no data for at that cut-off: the comparison cannot judge it, so it counts nowhere.
_OUTCOMES = ("matched", "missed", "extra", "unchecked", "no_data")
_REVIEW_COLUMNS = [
    "effective",
    "status",
    "history_effective",
    "cutoff",
    "published_adds",
    "published_deletes",
    "adds_known",
    "deletes_known",
    *[f"{o}_{s}" for s in _SIDES for o in _OUTCOMES],
]
_NAME_COLUMNS = ["effective", "cutoff", "id", "change", "outcome", "reason"]
_SUMMARY_COLUMNS = [
    "reviews",
    "published",
    "matched",
    "missed",
    "extra",
    "not_compared",
    "partial",
    "hit_rate",
    "extra_share",
]


@dataclass(frozen=True)
class Comparison:
    """A history compared with the published record (the result of :func:`compare`).

    Attributes
    ----------
    reviews
        One row per published review, by ``effective`` date: ``status`` (see :data:`STATUSES`),
        the matched history review's ``history_effective`` and ``cutoff`` (NaT when none), the
        ``published_adds`` / ``published_deletes``, whether each side is fully published
        (``adds_known``, ``deletes_known``), and sorted id lists ``matched_adds``,
        ``missed_adds``, ``extra_adds``, ``unchecked_adds``, ``no_data_adds`` and the same for
        deletes (empty unless the review is ``compared`` or ``partial``).
    names
        One row per id and compared review: ``effective``, ``cutoff``, ``id``, ``change``
        (``add``/``delete``), ``outcome`` (``matched``, ``missed``, ``extra``, ``unchecked``
        for an engine change on a side the source left unknown, or ``no_data`` for a name
        without data at the cut-off of a ``partial`` review) and ``reason``: the history's
        :meth:`~indexlab.rules.IndexHistory.explain` at the review's cut-off (rank and cut-off
        rank, buffer, velocity, listing history, classification, no data), or "not in the
        dataset".
    skipped
        Published rows without an effective date (e.g. HSI's Hang Seng Bank delisting), left
        out of every count.
    kind
        ``"changes"`` or ``"lists"``: what the published table held.
    tolerance_days
        The matching tolerance used, in calendar days.

    Examples
    --------
    >>> import pandas as pd, indexlab
    >>> ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    >>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=20))
    >>> eff = hist.calendar["effective"].iloc[1]          # the second review
    >>> published = pd.DataFrame({"effective": [eff], "id": [None], "change": ["none"]})
    >>> cmp = hist.compare(published)
    >>> cmp.reviews["status"].tolist()
    ['compared']
    >>> extra = cmp.summary()["extra"].iloc[0]            # the engine's changes at that review
    >>> bool(extra == len(hist.changes().query("effective_date == @eff")))
    True
    """

    reviews: pd.DataFrame
    names: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=pd.DataFrame)
    kind: str = "changes"
    tolerance_days: int = 0

    def summary(self, by: str = "year", include_partial: bool = False) -> pd.DataFrame:
        """Counts and rates per year (``by="year"``), per review (``"review"``) or overall
        (``"all"``).

        Columns: ``reviews`` (compared reviews), ``published`` (published adds and deletes in
        them), ``matched``, ``missed`` (published but not made), ``extra`` (made but not
        published), ``not_compared`` (published changes in reviews that were not compared,
        e.g. after the history ends), ``partial`` (published changes in ``partial`` reviews,
        made on a partial universe; counted as compared instead when ``include_partial`` is
        true, their ``no_data`` names still counting nowhere), ``hit_rate`` = matched /
        published and ``extra_share``
        = extra / (matched + extra), the share of the engine's checked changes that HSIL did
        not make (NaN where a denominator is zero). Unchecked changes count nowhere. Every
        year of a published review has a row, with zero counts when none of its reviews
        was compared.

        Examples
        --------
        >>> import pandas as pd
        >>> from indexlab.rules import Comparison
        >>> rows = pd.DataFrame({"effective": pd.to_datetime(["2025-03-10"]),
        ...     "status": ["compared"], "published_adds": [["A", "B"]],
        ...     "published_deletes": [["C"]], "matched_adds": [["A"]], "missed_adds": [["B"]],
        ...     "extra_adds": [["D"]], "matched_deletes": [["C"]], "missed_deletes": [[]],
        ...     "extra_deletes": [[]]})
        >>> s = Comparison(rows, pd.DataFrame()).summary()
        >>> s[["published", "matched", "missed", "extra"]].loc[2025].tolist()
        [3, 2, 1, 1]
        >>> round(float(s.loc[2025, "hit_rate"]), 4), round(float(s.loc[2025, "extra_share"]), 4)
        (0.6667, 0.3333)
        """
        if by not in ("year", "review", "all"):
            raise DataError(f"by must be 'year', 'review' or 'all', got {by!r}")
        if not isinstance(include_partial, bool | np.bool_):
            raise DataError(f"include_partial must be a bool, got {include_partial!r}")
        r = self.reviews
        if r.empty:
            return pd.DataFrame(columns=_SUMMARY_COLUMNS)

        def count(column: str) -> pd.Series:
            return r[column].map(len) if column in r.columns else pd.Series(0, index=r.index)

        partial = r["status"].eq("partial")
        compared = r["status"].eq("compared") | (partial & include_partial)
        matched = count("matched_adds") + count("matched_deletes")
        missed = count("missed_adds") + count("missed_deletes")
        published_all = count("published_adds") + count("published_deletes")
        counts = pd.DataFrame(
            {
                "reviews": compared.astype(np.int64),
                "published": (matched + missed).where(compared, 0),
                "matched": matched.where(compared, 0),
                "missed": missed.where(compared, 0),
                "extra": (count("extra_adds") + count("extra_deletes")).where(compared, 0),
                "not_compared": published_all.where(~compared & ~partial, 0),
                "partial": published_all.where(partial & ~compared, 0),
            }
        )
        effective = pd.to_datetime(r["effective"])
        if by == "year":
            key = effective.dt.year.rename("year")
        elif by == "review":
            key = effective.rename("effective")
        else:
            key = pd.Series("all", index=r.index, name="all")
        out = counts.groupby(key, sort=True).sum().astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["hit_rate"] = _ratio(out["matched"], out["published"])
            out["extra_share"] = _ratio(out["extra"], out["matched"] + out["extra"])
        return out[_SUMMARY_COLUMNS]


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(np.float64)


@dataclass
class _Review:
    """A review event of the history: its members and those of the set of weights before it."""

    effective: pd.Timestamp
    cutoff: pd.Timestamp
    members: frozenset[str]
    before: frozenset[str] | None


def compare(history: IndexHistory, published: pd.DataFrame, tolerance_days: int = 0) -> Comparison:
    """Compare ``history`` with published constituent changes or membership lists.

    Parameters
    ----------
    history
        An :class:`~indexlab.rules.IndexHistory` from :func:`~indexlab.rules.build_index`.
    published
        Either a table of changes, columns ``effective`` (or ``effective_date``), ``id`` and
        ``change`` (one of :data:`CHANGE_KINDS`), such as
        ``indexlab.datasets.published_changes("HSTECH")``; or, without a ``change`` column, full
        membership lists: ``effective`` (or ``effective_date``) and ``id``, one row per member
        and date. Other columns are ignored; an ``index`` column must hold one index only.
        Within a review of a changes table, a side (adds or deletes) with no rows and no
        ``*_unknown`` row means that side was empty.
    tolerance_days
        Calendar days by which a published effective date may differ from the history's
        review's ``effective_date``. The default, 0, matches exactly: the engine's calendar
        reproduces every effective date in docs/hang-seng-rules.md 1.6 and 2.2b on the bundled
        sample (11 Jun 2024, after the Tuen Ng holiday, included), so no tolerance is needed
        there. Pass a few days for a dataset whose trading calendar differs from Hong Kong's;
        each published review then matches the history's nearest review within that distance.

    Returns
    -------
    Comparison
        ``reviews``, ``names``, ``skipped`` and :meth:`Comparison.summary`.

    Notes
    -----
    Changes table: the engine's adds and deletes at a review are its membership after the
    review against the set of weights in force before it (as in ``IndexHistory.changes``), so
    a name the engine added earlier than HSIL shows as a missed add with the reason "selected".
    Membership lists: published changes are the differences between consecutive lists, and the
    engine's are the differences between its memberships at the two matched reviews, so both
    span the same interval even when the lists skip reviews.

    Raises
    ------
    DataError
        For a table with neither layout, an unknown ``change`` value, an add or delete without
        an id, a review marked ``none`` that also lists changes, several indices, a negative
        tolerance, or two published reviews matching the same history review.

    Examples
    --------
    >>> import pandas as pd, indexlab
    >>> from indexlab.rules.compare import compare
    >>> ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    >>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=20))
    >>> ch = hist.changes()
    >>> ch = ch[(ch["event"] == "review") & (ch["review_date"] > ch["review_date"].min())]
    >>> cmp = compare(hist, ch)                  # the engine's own changes: all matched
    >>> bool(cmp.summary(by="all")["hit_rate"].iloc[0] == 1.0)
    True
    """
    if not isinstance(published, pd.DataFrame):
        raise DataError(f"published must be a pandas DataFrame, got {type(published).__name__}")
    if not isinstance(tolerance_days, int | np.integer) or tolerance_days < 0:
        raise DataError(f"tolerance_days must be a non-negative integer, got {tolerance_days!r}")
    table, skipped, kind = _read_published(published)
    events = _review_events(history)
    dates = sorted(pd.Timestamp(d) for d in table["effective"].unique())
    matches = _match(dates, events, int(tolerance_days))
    if kind == "changes":
        rows = [_changes_row(d, table[table["effective"] == d], matches[d]) for d in dates]
    else:
        rows = _list_rows(dates, table, matches)
    rows = [_mark_partial(row, _partial_reviews(history)) for row in rows]
    names = [n for row in rows for n in _name_rows(history, row)]
    reviews = pd.DataFrame(rows, columns=_REVIEW_COLUMNS)
    for column in ("effective", "history_effective", "cutoff"):
        reviews[column] = pd.to_datetime(reviews[column])
    return Comparison(
        reviews=reviews,
        names=pd.DataFrame(names, columns=_NAME_COLUMNS),
        skipped=skipped,
        kind=kind,
        tolerance_days=int(tolerance_days),
    )


def _read_published(published: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Validate and normalise: (rows with an effective date, rows without one, kind)."""
    columns = set(published.columns)
    eff_col = "effective" if "effective" in columns else "effective_date"
    if eff_col not in columns or "id" not in columns:
        raise DataError(
            "published needs columns 'effective' (or 'effective_date') and 'id', plus 'change' "
            f"for a table of changes (without it: full membership lists); got {sorted(columns)}"
        )
    if "index" in columns:
        indices = sorted({str(x) for x in published["index"].dropna()})
        if len(indices) > 1:
            raise DataError(f"published holds several indices {indices}; pass one at a time")
    kind = "changes" if "change" in columns else "lists"
    try:
        effective = pd.to_datetime(published[eff_col]).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise DataError(f"published[{eff_col!r}] has a value that is not a date: {exc}") from exc
    ids = published["id"].map(_clean_id)
    frame = pd.DataFrame({"effective": effective, "id": ids}, index=published.index)
    if kind == "changes":
        change = published["change"].map(lambda x: str(x).strip().lower() if _present(x) else "")
        bad = sorted(set(change) - set(CHANGE_KINDS))
        if bad:
            raise DataError(f"published change values {bad} are not among {list(CHANGE_KINDS)}")
        frame["change"] = change
        needs_id = change.isin(["add", "delete"])
        if (needs_id & ids.isna()).any():
            row = frame[needs_id & ids.isna()].iloc[0]
            raise DataError(f"published {row['change']} on {_day(row['effective'])} has no id")
        if (~needs_id & ids.notna()).any():
            row = frame[~needs_id & ids.notna()].iloc[0]
            raise DataError(
                f"published change {row['change']!r} on {_day(row['effective'])} must have no id, "
                f"got {row['id']!r}"
            )
    elif ids.isna().any():
        row = frame[ids.isna()].iloc[0]
        raise DataError(
            f"published membership list of {_day(row['effective'])} has a row with no id"
        )
    dated = frame["effective"].notna()
    return frame[dated].reset_index(drop=True), published[~dated].copy(), kind


def _present(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and np.isnan(x)) and x is not pd.NA


def _clean_id(x: Any) -> str | None:
    if not _present(x):
        return None
    s = str(x).strip()
    return s or None


def _day(d: Any) -> str:
    return str(pd.Timestamp(d).date()) if pd.notna(d) else "an unknown date"


def _review_events(history: IndexHistory) -> list[_Review]:
    """The history's review events in order, each with the membership before it."""
    out: list[_Review] = []
    before: frozenset[str] | None = None
    groups = history.reviews.groupby(["effective_date", "review_date", "event"], sort=True)
    for (eff, rev, event), g in groups:
        members = frozenset(str(x) for x in g["id"])
        if event == "review":
            out.append(_Review(pd.Timestamp(eff), pd.Timestamp(rev), members, before))
        before = members
    return out


def _match(
    dates: list[pd.Timestamp], events: list[_Review], tolerance: int
) -> dict[pd.Timestamp, _Review | str]:
    """Each published date's history review, or the status saying why there is none."""
    out: dict[pd.Timestamp, _Review | str] = {}
    if not events:
        return {d: "not_covered" for d in dates}
    eff = np.array([e.effective.to_datetime64() for e in events], dtype="datetime64[D]")
    tol = np.timedelta64(tolerance, "D")
    taken: dict[int, pd.Timestamp] = {}
    for d in dates:
        day = np.datetime64(d.date(), "D")
        gap = np.abs(eff - day)
        k = int(np.argmin(gap))
        if gap[k] <= tol:
            if k in taken:
                raise DataError(
                    f"published reviews {_day(taken[k])} and {_day(d)} both match the history's "
                    f"review effective {_day(events[k].effective)}; lower tolerance_days"
                )
            taken[k] = d
            out[d] = events[k]
        elif day < eff[0] - tol or day > eff[-1] + tol:
            out[d] = "not_covered"
        else:
            out[d] = "unmatched"
    return out


def _ids(values: pd.Series) -> list[str]:
    return sorted({str(x) for x in values.dropna()})


def _row(
    effective: pd.Timestamp,
    status: str,
    event: _Review | None,
    pub: tuple[list[str], list[str]],
    known: tuple[bool, bool],
    engine: tuple[set[str], set[str]] | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "effective": effective,
        "status": status,
        "history_effective": event.effective if event is not None else pd.NaT,
        "cutoff": event.cutoff if event is not None else pd.NaT,
        "published_adds": pub[0],
        "published_deletes": pub[1],
        "adds_known": known[0],
        "deletes_known": known[1],
    }
    for k, side in enumerate(_SIDES):
        p = set(pub[k])
        e = engine[k] if engine is not None else set()
        row[f"matched_{side}"] = sorted(p & e)
        row[f"missed_{side}"] = sorted(p - e) if engine is not None else []
        row[f"extra_{side}"] = sorted(e - p) if known[k] else []
        row[f"unchecked_{side}"] = [] if known[k] else sorted(e - p)
        row[f"no_data_{side}"] = []
    return row


def _engine_changes(after: frozenset[str], before: frozenset[str]) -> tuple[set[str], set[str]]:
    return set(after - before), set(before - after)


def _changes_row(d: pd.Timestamp, rows: pd.DataFrame, match: _Review | str) -> dict[str, Any]:
    change = rows["change"]
    adds, deletes = _ids(rows.loc[change == "add", "id"]), _ids(rows.loc[change == "delete", "id"])
    if (change == "none").any() and (adds or deletes or change.str.endswith("_unknown").any()):
        raise DataError(f"published review {_day(d)} is marked 'none' but also lists changes")
    known = (not (change == "add_unknown").any(), not (change == "delete_unknown").any())
    if isinstance(match, str):
        return _row(d, match, None, (adds, deletes), known, None)
    if match.before is None:
        return _row(d, "first_review", match, (adds, deletes), known, None)
    engine = _engine_changes(match.members, match.before)
    return _row(d, "compared", match, (adds, deletes), known, engine)


def _list_rows(
    dates: list[pd.Timestamp], table: pd.DataFrame, matches: dict[pd.Timestamp, _Review | str]
) -> list[dict[str, Any]]:
    rows = []
    lists = {d: frozenset(_ids(table.loc[table["effective"] == d, "id"])) for d in dates}
    for j, d in enumerate(dates):
        match = matches[d]
        event = match if isinstance(match, _Review) else None
        if j == 0:
            rows.append(
                _row(d, "baseline" if event else str(match), event, ([], []), (True, True), None)
            )
            continue
        prev = dates[j - 1]
        pub = (sorted(lists[d] - lists[prev]), sorted(lists[prev] - lists[d]))
        prev_match = matches[prev]
        if event is None:
            rows.append(_row(d, str(match), None, pub, (True, True), None))
        elif not isinstance(prev_match, _Review):
            rows.append(_row(d, "baseline", event, pub, (True, True), None))
        else:
            engine = _engine_changes(event.members, prev_match.members)
            rows.append(_row(d, "compared", event, pub, (True, True), engine))
    return rows


def _partial_reviews(history: IndexHistory) -> dict[pd.Timestamp, set[str]]:
    """Cut-off -> universe names without data, for the reviews made on a partial universe."""
    table = getattr(history, "partial_reviews", None)
    if table is None or table.empty:
        return {}
    pairs = zip(table["review_date"], table["ids"], strict=True)
    return {pd.Timestamp(d): set(ids) for d, ids in pairs}


def _mark_partial(row: dict[str, Any], partial: dict[pd.Timestamp, set[str]]) -> dict[str, Any]:
    """A compared review made on a partial universe: its status says so, and the changes of
    names that had no data at its cut-off move to ``no_data`` (they cannot be judged)."""
    if row["status"] != "compared" or pd.Timestamp(row["cutoff"]) not in partial:
        return row
    blind = partial[pd.Timestamp(row["cutoff"])]
    out = dict(row, status="partial")
    for side in _SIDES:
        unjudged = set()
        for outcome in ("missed", "extra", "unchecked"):
            ids = out[f"{outcome}_{side}"]
            unjudged |= {i for i in ids if i in blind}
            out[f"{outcome}_{side}"] = [i for i in ids if i not in blind]
        out[f"no_data_{side}"] = sorted(unjudged)
    return out


def _name_rows(history: IndexHistory, row: dict[str, Any]) -> list[tuple[Any, ...]]:
    if row["status"] not in ("compared", "partial"):
        return []
    out = []
    cutoff = row["cutoff"]
    known = set(str(x) for x in history.ids)
    for side, change in zip(_SIDES, ("add", "delete"), strict=True):
        for outcome in _OUTCOMES:
            for i in row[f"{outcome}_{side}"]:
                if i in known:
                    reason = history.explain(i, cutoff)
                else:
                    reason = f"{i} is not in the dataset"
                out.append((row["effective"], cutoff, i, change, outcome, reason))
    return out


def compare_weights(history: IndexHistory, dataset: Any, published: pd.DataFrame) -> pd.DataFrame:
    """The history's weights around each published review next to the published ones.

    ``published`` has ``effective``, ``id`` and ``pre`` and/or ``post`` columns (fractions), such
    as ``indexlab.datasets.published_weights("HSTECH")``. For each of its effective dates the
    history must have a review taking effect that day: ``post_rebuilt`` is the weight the
    review set at the implementation close, ``pre_rebuilt`` the weight the previous set had
    drifted to by that close (price returns, as the provider computes them), both 0 for a name
    not held.

    Returns one row per published row: ``effective``, ``id``, ``name`` (when given),
    ``pre_published``, ``pre_rebuilt``, ``post_published``, ``post_rebuilt`` and ``carried``
    (the name's data end before the implementation day, so it is weighed at its last price).

    Raises
    ------
    DataError
        For a table without ``effective`` and ``id`` or without ``pre``/``post``, or an
        effective date the history has no review on.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.rules.compare import compare_weights
    >>> ds = indexlab.datasets.hk_tech()
    >>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH, start="2025-01-01")
    >>> t = compare_weights(hist, ds, indexlab.datasets.published_weights("HSTECH"))
    >>> t.query("id == '0700.HK'")["post_rebuilt"].round(4).tolist()   # capped at 8%
    [0.08, 0.08]
    """
    from indexlab.backtest import backtest

    if not isinstance(published, pd.DataFrame):
        raise DataError(f"published must be a pandas DataFrame, got {type(published).__name__}")
    missing = [c for c in ("effective", "id") if c not in published.columns]
    sides = [c for c in ("pre", "post") if c in published.columns]
    if missing or not sides:
        raise DataError(
            "published weights need 'effective', 'id' and 'pre' and/or 'post' columns; "
            f"got {list(published.columns)}"
        )
    table = published.copy()
    table["effective"] = pd.to_datetime(table["effective"])
    reviews = history.calendar
    impl_of = {
        pd.Timestamp(e): int(i)
        for e, i in zip(reviews["effective"], reviews["impl_idx"], strict=True)
    }
    unknown = sorted(set(table["effective"]) - set(impl_of))
    if unknown:
        raise DataError(
            f"the history has no review effective on {[str(d.date()) for d in unknown]}; its "
            f"reviews take effect on {[str(pd.Timestamp(d).date()) for d in reviews['effective']]}"
        )
    end = max(pd.Timestamp(dataset.dates[impl_of[d]]) for d in table["effective"])
    # A review implemented after some names' data end weighs them at their last price, as the
    # engine did; ``carried`` says where.
    res = backtest(
        dataset,
        {"index": history},
        benchmark=None,
        returns="price",
        end=end,
        carry_last_price=True,
    )
    w = res.weights
    last = dataset.coverage().set_index("id")["last_observation"]
    out = []
    for _, row in table.iterrows():
        day = pd.Timestamp(dataset.dates[impl_of[row["effective"]]])
        at = w[(w["date"] == day) & (w["id"] == row["id"])].set_index("kind")["weight"]
        item = {"effective": row["effective"], "id": row["id"]}
        if "name" in table.columns:
            item["name"] = row["name"]
        for side, kind in (("pre", "drifted"), ("post", "target")):
            if side in sides:
                item[f"{side}_published"] = row[side]
                item[f"{side}_rebuilt"] = float(at.get(kind, 0.0))
        seen = last.get(row["id"], pd.NaT)
        item["carried"] = bool(pd.notna(seen) and pd.Timestamp(seen) < day)
        out.append(item)
    return pd.DataFrame(out)
