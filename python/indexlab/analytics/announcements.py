"""Change announcements: what an index provider publishes after each review.

For every set of weights an :class:`~indexlab.IndexHistory` holds (a review, a fast entry or a
delisting): the names added and deleted with the reason each changed (from
:meth:`IndexHistory.explain <indexlab.rules.IndexHistory.explain>`), the dates, the pro-forma
weights and capping factors of every constituent, and the one-way turnover
``sum |w_new - w_drifted| / 2`` (the previous weights drifted by total return to the
implementation day's close; undrifted when that day is past the data).

Dates: the cut-off, implementation and effective days are the history's review calendar. The
data hold no announcement dates, so a review's is estimated as ``ANNOUNCEMENT_LEAD_DAYS``
calendar days before implementation: the shortest lead among the HSTECH reviews listed in
docs/hang-seng-rules.md 1.6 (results on a Friday two or three weeks before the implementation
Friday). Fast entries and delistings are announced as they arise: no date is estimated.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from indexlab.analytics._common import check_dataset, drift
from indexlab.data import Dataset
from indexlab.errors import DataError
from indexlab.market import Market
from indexlab.rules.engine import IndexHistory

__all__ = ["ANNOUNCEMENT_LEAD_DAYS", "Announcement", "announcement", "change_table"]

ANNOUNCEMENT_LEAD_DAYS = 14

_EVENT_TITLES = {
    "review": "Results of the index review",
    "fast_entry": "Fast entry of a new listing",
    "delisting": "Removal of a delisted constituent",
}


@dataclass(frozen=True)
class Announcement:
    """One notice: the dates, ``changes`` (``change``, ``id``, ``name``, ``reason``), every
    constituent's pro-forma ``weight`` and ``capping_factor`` (``constituents``, with ``rank``,
    ``selection`` and ``new``) and the one-way turnover."""

    index: str
    event: str
    review_date: pd.Timestamp
    announcement_date: pd.Timestamp | None
    implementation_date: pd.Timestamp
    effective_date: pd.Timestamp
    changes: pd.DataFrame
    constituents: pd.DataFrame
    one_way_turnover: float
    count_before: int
    notes: tuple[str, ...] = ()

    def _dates(self) -> list[str]:
        ann = (
            f"{self.announcement_date:%d %B %Y} (estimated: {ANNOUNCEMENT_LEAD_DAYS} days "
            "before implementation)"
            if self.announcement_date is not None
            else "as the event arose (no date estimated)"
        )
        return [
            f"Data cut-off: {self.review_date:%d %B %Y}",
            f"Announcement: {ann}",
            f"Implementation: after the close of {self.implementation_date:%A %d %B %Y}",
            f"Effective: {self.effective_date:%A %d %B %Y}",
            f"Number of constituents: {self.count_before} before, {len(self.constituents)} after",
            f"One-way turnover: {self.one_way_turnover:.2%}",
        ]

    def to_markdown(self, weights: bool = True) -> str:
        """The notice in Markdown: dates, changes with reasons and (with ``weights``) the
        pro-forma weights and capping factors."""
        lines = [f"# {self.index}: {_EVENT_TITLES.get(self.event, self.event)}", ""]
        lines += [f"- {d}" for d in self._dates()] + [""]
        lines += ["## Constituent changes", ""]
        if self.changes.empty:
            lines += ["No change.", ""]
        else:
            lines += ["| change | code | name | reason |", "|---|---|---|---|"]
            for r in self.changes.itertuples(index=False):
                lines.append(f"| {r.change} | {r.id} | {r.name} | {r.reason} |")
            lines.append("")
        if weights:
            lines += ["## Pro-forma constituents", ""]
            lines += ["| code | name | weight | capping factor | new |", "|---|---|---|---|---|"]
            for r in self.constituents.itertuples(index=False):
                lines.append(
                    f"| {r.id} | {r.name} | {r.weight:.2%} | {r.capping_factor:.4f} | "
                    f"{'yes' if r.new else ''} |"
                )
            lines.append("")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self) -> str:
        """The notice as ONE self-contained HTML page (inline CSS, no scripts or links)."""
        from indexlab.report.page import CSS

        esc = _html.escape
        title = f"{self.index}: {_EVENT_TITLES.get(self.event, self.event)}"
        dates = "".join(f"<li>{esc(d)}</li>" for d in self._dates())
        if self.changes.empty:
            changes = "<p>No change.</p>"
        else:
            rows = "".join(
                f"<tr><td>{esc(r.change)}</td><td>{esc(r.id)}</td><td>{esc(str(r.name))}</td>"
                f'<td class="text">{esc(r.reason)}</td></tr>'
                for r in self.changes.itertuples(index=False)
            )
            changes = (
                '<table class="metrics" id="changes-table"><thead><tr><th>change</th>'
                "<th>code</th><th>name</th><th>reason</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>"
            )
        rows = "".join(
            f"<tr><td>{esc(r.id)}</td><td>{esc(str(r.name))}</td><td>{r.weight:.2%}</td>"
            f"<td>{r.capping_factor:.4f}</td><td>{'yes' if r.new else ''}</td></tr>"
            for r in self.constituents.itertuples(index=False)
        )
        weights = (
            '<table class="metrics" id="constituents-table"><thead><tr><th>code</th>'
            "<th>name</th><th>weight</th><th>capping factor</th><th>new</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
        notes = "".join(f'<p class="note">{esc(n)}</p>' for n in self.notes)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{CSS} td.text {{ text-align: left; }}</style>"
            f"</head><body><h1>{esc(title)}</h1><ul>{dates}</ul>"
            f'<section id="changes"><h2>Constituent changes</h2>{changes}</section>'
            f'<section id="constituents"><h2>Pro-forma constituents</h2>{weights}</section>'
            f"{notes}</body></html>\n"
        )


def _events(history: IndexHistory) -> pd.DataFrame:
    keys = ["effective_date", "review_date", "event"]
    return history.reviews[keys].drop_duplicates().sort_values(keys, kind="stable")


def _event_dates(
    ds: Dataset, history: IndexHistory, eff: pd.Timestamp, rev: pd.Timestamp, event: str
) -> tuple[pd.Timestamp | None, pd.Timestamp, int | None]:
    """(announcement, implementation, implementation day index or None past the data)."""
    cal = history.calendar
    if event == "review":
        row = cal[cal["cutoff"] == rev].iloc[0]
        impl = pd.Timestamp(row["implementation"])
        ann = impl - pd.Timedelta(days=ANNOUNCEMENT_LEAD_DAYS)
    else:
        pos = int(np.searchsorted(ds.dates, np.datetime64(eff.date(), "D"), side="left")) - 1
        impl, ann = pd.Timestamp(ds.dates[max(pos, 0)]), None
    t = int(np.searchsorted(ds.dates, np.datetime64(impl.date(), "D"), side="left"))
    at = t if t < len(ds.dates) and ds.dates[t] == np.datetime64(impl.date(), "D") else None
    return ann, impl, at


def _reason(history: IndexHistory, ds: Dataset, sid: str, rev: Any, event: str, change: str) -> str:
    sec = ds.securities.set_index("id")
    if event == "fast_entry" and change == "add":
        return f"fast entry: a new listing ({pd.Timestamp(sec.at[sid, 'listing_date']).date()})"
    if event == "delisting" and change == "delete":
        return f"delisted ({pd.Timestamp(sec.at[sid, 'delisting_date']).date()})"
    text = history.explain(sid, rev)
    return text.split(": ", 1)[1] if ": " in text else text


def announcement(dataset: Dataset, history: IndexHistory, review: Any = None) -> Announcement:
    """The notice of one set of weights of ``history``.

    Parameters
    ----------
    dataset
        The dataset the history was built on.
    history
        An :class:`~indexlab.IndexHistory`.
    review
        The event: its cut-off or its effective date; default the latest.

    Raises
    ------
    DataError
        ``review`` matches no cut-off or effective date of the history (the message lists the
        latest), or ``history`` is not an ``IndexHistory``.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.analytics import announcement
    >>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    >>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=15))
    >>> notice = announcement(ds, hist)
    >>> bool(notice.constituents["weight"].sum().round(12) == 1.0)
    True
    >>> notice.to_markdown().splitlines()[0]
    '# HSTECH: Results of the index review'
    """
    ds = check_dataset(dataset)
    if not isinstance(history, IndexHistory):
        raise DataError(f"history must be an IndexHistory, got {type(history).__name__}")
    events = _events(history).reset_index(drop=True)
    if events.empty:
        raise DataError("history has no reviews")
    if review is None:
        k = len(events) - 1
    else:
        try:
            day = pd.Timestamp(review)
        except (TypeError, ValueError):
            raise DataError(f"review must be a date, got {review!r}") from None
        hit = np.flatnonzero(
            (events["effective_date"] == day).to_numpy() | (events["review_date"] == day).to_numpy()
        )
        if hit.size == 0:
            latest = ", ".join(f"{d:%Y-%m-%d}" for d in events["review_date"].unique()[-4:])
            raise DataError(
                f"review {day.date()} is not a cut-off or effective date of the history; the "
                f"latest cut-offs are {latest}"
            )
        k = int(hit[-1])
    return _notice(ds, history, events, k)


def _notice(ds: Dataset, history: IndexHistory, events: pd.DataFrame, k: int) -> Announcement:
    eff, rev, event = events.iloc[k][["effective_date", "review_date", "event"]]
    eff, rev = pd.Timestamp(eff), pd.Timestamp(rev)
    frame = history.reviews
    key = (
        (frame["effective_date"] == eff) & (frame["review_date"] == rev) & (frame["event"] == event)
    )
    now = frame[key]
    if k > 0:
        p_eff, p_rev, p_event = events.iloc[k - 1][["effective_date", "review_date", "event"]]
        prev = frame[
            (frame["effective_date"] == p_eff)
            & (frame["review_date"] == p_rev)
            & (frame["event"] == p_event)
        ]
    else:
        prev = frame.iloc[:0]
    ann, impl, t = _event_dates(ds, history, eff, rev, event)
    universe = pd.Index(ds.ids)
    w_new = np.zeros(len(universe))
    w_new[universe.get_indexer(now["id"])] = now["weight"].to_numpy()
    w_old = np.zeros(len(universe))
    w_old[universe.get_indexer(prev["id"])] = prev["weight"].to_numpy()
    notes = []
    if k > 0:
        _, _, p_t = _event_dates(ds, history, pd.Timestamp(p_eff), pd.Timestamp(p_rev), p_event)
        if t is not None and p_t is not None:
            tr = Market.of(ds).total_return_hkd(carry_last_price=True)
            w_old = drift(w_old, tr[p_t], tr[t])
        else:
            notes.append(
                "The implementation day is past the data: turnover is measured against the "
                "previous weights without drift."
            )
    turnover = float(np.abs(w_new - w_old).sum() / 2.0) if k > 0 else 1.0
    if k == 0:
        notes.append("The first set of weights: the index is built from cash (turnover 100%).")
    names = ds.securities.set_index("id")["name"]
    added = sorted(set(now["id"]) - set(prev["id"])) if k > 0 else []
    deleted = sorted(set(prev["id"]) - set(now["id"]))
    changes = pd.DataFrame(
        [
            (c, sid, names.get(sid, sid), _reason(history, ds, sid, rev, str(event), c))
            for c, ids in (("add", added), ("delete", deleted))
            for sid in ids
        ],
        columns=["change", "id", "name", "reason"],
    )
    constituents = pd.DataFrame(
        {
            "id": now["id"].to_numpy(),
            "name": now["id"].map(names).to_numpy(),
            "weight": now["weight"].to_numpy(),
            "capping_factor": now["capping_factor"].to_numpy(),
            "rank": now["rank"].to_numpy(),
            "selection": now["reason"].to_numpy(),
            "new": now["id"].isin(added).to_numpy(),
        }
    ).sort_values("weight", ascending=False, kind="stable")
    return Announcement(
        index=history.rules.name,
        event=str(event),
        review_date=rev,
        announcement_date=ann,
        implementation_date=impl,
        effective_date=eff,
        changes=changes,
        constituents=constituents.reset_index(drop=True),
        one_way_turnover=turnover,
        count_before=len(prev),
        notes=tuple(notes),
    )


def change_table(dataset: Dataset, history: IndexHistory) -> pd.DataFrame:
    """Every add and delete of ``history``, one row each, with the dates, the reason and the
    event's one-way turnover: ``review_date``, ``event``, ``announcement_date``,
    ``implementation_date``, ``effective_date``, ``change``, ``id``, ``name``, ``reason``,
    ``one_way_turnover``.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.analytics import change_table
    >>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    >>> table = change_table(ds, indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=15)))
    >>> sorted(set(table["change"]))
    ['add', 'delete']
    """
    ds = check_dataset(dataset)
    if not isinstance(history, IndexHistory):
        raise DataError(f"history must be an IndexHistory, got {type(history).__name__}")
    events = _events(history).reset_index(drop=True)
    rows = []
    for k in range(1, len(events)):
        n = _notice(ds, history, events, k)
        for r in n.changes.itertuples(index=False):
            rows.append(
                (
                    n.review_date,
                    n.event,
                    n.announcement_date,
                    n.implementation_date,
                    n.effective_date,
                    r.change,
                    r.id,
                    r.name,
                    r.reason,
                    n.one_way_turnover,
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "review_date",
            "event",
            "announcement_date",
            "implementation_date",
            "effective_date",
            "change",
            "id",
            "name",
            "reason",
            "one_way_turnover",
        ],
    )
