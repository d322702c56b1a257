"""A rule set written out in prose: the methodology document a product committee reads.

:func:`methodology` turns an :class:`~indexlab.rules.IndexRules` into Markdown or a
self-contained HTML page (inline CSS, no scripts, no external references) with the sections
Universe, Eligibility screens, Selection, Weighting and caps, Review calendar, and Assumptions
and sources. Every number is read from the rule set's fields, so a variant made with
``IndexRules.replace`` describes itself; the assumptions name the section of
docs/hang-seng-rules.md that each number comes from.

Examples
--------
>>> from indexlab import rules
>>> from indexlab.rules.methodology import methodology
>>> text = methodology(rules.HSTECH.replace(n=40, cap=0.1), as_of="2026-01-01")
>>> "target of 40 constituents" in text and "at most 10% of the index" in text
True
"""

from __future__ import annotations

import html as _html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from indexlab.errors import DataError
from indexlab.rules.engine import COVERAGE_GAP_DAYS, review_calendar
from indexlab.rules.model import IndexRules, Sleeve
from indexlab.rules.presets import HSTECH_INDUSTRIES
from indexlab.rules.presets import PRESETS as _PRESETS

__all__ = ["FORMATS", "PRESETS", "SECTIONS", "buffer_ranks", "methodology", "next_reviews"]

#: The output formats of :func:`methodology`.
FORMATS = ("markdown", "html")

#: The preset rule sets by name (the CLI resolves ``indexlab methodology NAME`` with it).
PRESETS = _PRESETS

#: Section headings, in document order (after the title and summary).
SECTIONS = (
    "Universe",
    "Eligibility screens",
    "Selection",
    "Weighting and caps",
    "Review calendar",
    "Assumptions and sources",
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MARKETS = {"HK": "Hong Kong (HKEX)", "SH": "Shanghai (SSE)", "SZ": "Shenzhen (SZSE)"}

# The technology themes behind the judged ``tech_theme`` column
# (python/indexlab/datasets/hk_tech/PROVENANCE.md, section 5).
THEMES = "internet, fintech, cloud, e-commerce and digital"
SUB_THEMES = (
    "internet platforms, online content, games, travel and education; e-commerce and online "
    "local services; online insurance, lending and brokerage; cloud, software, data centres and "
    "AI models; semiconductors, smart devices and electronics, components, network equipment, "
    "smart EVs and autonomous driving, robotics, IoT smart home and digital health"
)
OUTSIDE_THEMES = (
    "casinos, jewellers, sportswear, restaurants, railways, banks and insurers, pharma, "
    "property, utilities and battery-cell makers"
)

_SRC = "docs/hang-seng-rules.md"


# ---------------------------------------------------------------------------- numbers


def _round_half_away(x: float) -> int:
    """Round half away from zero, as Rust's ``f64::round`` in the review loop does."""
    f = math.floor(x)
    return int(f + 1 if x - f >= 0.5 else f)


def buffer_ranks(n: int, buffer: float) -> tuple[int, int]:
    """The buffer band of a selection block of ``n`` names: ``(lower, upper)``.

    A newcomer enters only if it ranks ``<= lower``; an incumbent stays while it ranks
    ``<= upper``. Computed as the review loop does: ``upper = round(n * (1 + buffer))``,
    ``lower = max(round(n * (1 - buffer)), 1)`` (halves rounded away from zero).

    Examples
    --------
    >>> from indexlab.rules.methodology import buffer_ranks
    >>> buffer_ranks(30, 0.2)
    (24, 36)
    >>> buffer_ranks(100, 0.2)
    (80, 120)
    """
    upper = _round_half_away(n * (1.0 + buffer))
    lower = max(_round_half_away(n * (1.0 - buffer)), 1)
    return lower, upper


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


def _num(x: float) -> str:
    return f"{x:.4g}"


def _hkd(x: float) -> str:
    if x >= 1e9:
        return f"HK${x / 1e9:.4g}bn"
    if x >= 1e6:
        return f"HK${x / 1e6:.4g}m"
    return f"HK${x:,.0f}"


def _ordinal(k: int) -> str:
    if 10 <= k % 100 <= 20:
        return f"{k}th"
    return f"{k}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th') }"


def _join(items: Any) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _frequency(k: int) -> str:
    return {1: "annually", 2: "semi-annually", 4: "quarterly", 12: "monthly"}.get(
        k, f"{k} times a year"
    )


# ---------------------------------------------------------------------------- calendar


def next_reviews(rules: IndexRules, as_of: Any = None, count: int = 4) -> pd.DataFrame:
    """The next ``count`` reviews implemented on or after ``as_of`` (default: today).

    Dates come from :func:`indexlab.rules.review_calendar` on a Monday-Friday business-day
    calendar (public holidays are not removed, so the index provider's holiday calendar can
    move a date by a day or more).

    Returns
    -------
    pandas.DataFrame
        Columns ``cutoff``, ``implementation`` and ``effective``.

    Examples
    --------
    >>> from indexlab import rules
    >>> from indexlab.rules.methodology import next_reviews
    >>> cal = next_reviews(rules.HSTECH, as_of="2026-01-01")
    >>> [str(d.date()) for d in cal.iloc[0]]
    ['2025-12-31', '2026-03-06', '2026-03-09']
    """
    day = np.datetime64(pd.Timestamp(pd.Timestamp.today() if as_of is None else as_of).date())
    start = (day.astype("datetime64[M]") - np.timedelta64(13, "M")).astype("datetime64[D]")
    days = np.arange(start, day + np.timedelta64(7 * 366, "D"))
    days = days[np.is_busday(days)]
    cal = review_calendar(days, rules)
    cal = cal[cal["implementation"] >= pd.Timestamp(day)]
    return cal[["cutoff", "implementation", "effective"]].head(count).reset_index(drop=True)


# ---------------------------------------------------------------------------- document model


@dataclass
class _Section:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        self.blocks.append(("ul", items))

    def h3(self, text: str) -> None:
        self.blocks.append(("h3", text))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (header, rows)))


def _key_words(s: Sleeve) -> str:
    window = (
        f" averaged over the {s.window_days} trading days up to the cut-off"
        if s.window_days > 0
        else " at the cut-off"
    )
    if s.key == "mcap":
        return f"full market capitalisation in HKD (all issued shares x price){window}"
    if s.key == "ff_mcap":
        return f"free-float-adjusted market capitalisation in HKD{window}"
    if s.key == "ai_tilted":
        return (
            f"free-float-adjusted market capitalisation in HKD{window}, multiplied by the AI "
            f"score (as known at the cut-off) to the power {_num(s.alpha)}"
        )
    column = s.key.removeprefix("column:")
    return f"the value of the data field `{column}` at the cut-off (largest first)"


def _category_words(category: str) -> str:
    if category == "wvr":
        return "weighted-voting-rights (WVR) companies"
    if category == "secondary":
        return "secondary listings"
    if category == "ai_application":
        return "AI-application names (`ai_layer` = application)"
    return f"names flagged by the data field `{category.removeprefix('column:')}`"


def _uses_ff_mcap(rules: IndexRules) -> bool:
    keys = {s.key for s in rules.selection.sleeves}
    return rules.weighting.scheme in ("ff_mcap", "tilted") or bool(keys & {"ff_mcap", "ai_tilted"})


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _preset_changes(rules: IndexRules) -> list[str]:
    """Fields in which ``rules`` differs from the preset of the same name."""
    base = PRESETS.get(rules.name)
    if base is None or base == rules:
        return []
    a, b = _flat(base.to_dict()), _flat(rules.to_dict())
    return [
        f"`{k}`: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if k != "description" and a.get(k) != b.get(k)
    ]


def _universe(rules: IndexRules) -> _Section:
    u = rules.universe
    sec = _Section("Universe")
    sec.p(
        "The universe is the set of securities the index can consider at all. Classification "
        "values are those known at each review's cut-off (point in time), and for fast entry "
        "those known on the new listing's first trading day."
    )
    items = [
        "Markets: "
        + (
            _join(MARKETS.get(m, m) for m in u.markets)
            if u.markets is not None
            else "every market in the dataset"
        )
        + ".",
        "Industries (Hang Seng industry classification): "
        + (_join(u.industries) if u.industries is not None else "all industries")
        + ".",
        "Listing types: "
        + (_join(u.listing_types) if u.listing_types is not None else "primary and secondary")
        + ".",
        "Stock Connect: "
        + (
            "only Stock Connect eligible securities (the dataset's `connect_eligible` flag, a "
            "proxy of the Southbound rules re-judged at each month end: 12-month average market "
            "cap of at least HK$5bn, WVR names after 203 days; A-shares eligible throughout)."
            if u.connect_eligible_only
            else "not required."
        ),
        "AI-chain layers: "
        + (
            _join(u.ai_layers) + " (names in layer `none` are excluded)"
            if u.ai_layers is not None
            else "any, including none"
        )
        + ".",
        "Minimum AI score: "
        + (
            f"`ai_score` >= {_num(u.min_ai_score)} (a judged score in [0, 1])"
            if u.min_ai_score > 0
            else "none"
        )
        + ".",
    ]
    if u.tech_theme:
        items.append(
            "Technology theme: required. A name qualifies when the dataset's `tech_theme` column, "
            "as known at the cut-off, is true. That column is judged per company from its "
            "business (never from index membership), dated, and given a one-line rationale. Its "
            f"themes are HSTECH's published five ({THEMES}) with the documented sub-themes "
            f"{SUB_THEMES}. Outside them: {OUTSIDE_THEMES}. A dataset without the column uses a "
            "proxy: an AI-chain layer other than `none`, or the Information Technology "
            "industry. The theme stands in for HSTECH's innovation screen (technology-enabled "
            "business, R&D at least 5% of revenue, or revenue growth of at least 10%), which "
            "needs R&D and revenue data the dataset does not hold."
        )
    else:
        items.append("Technology theme: not required.")
    sec.ul(items)
    return sec


def _eligibility(rules: IndexRules) -> _Section:
    el = rules.eligibility
    sec = _Section("Eligibility screens")
    sec.p(
        "Screens are applied at each review's cut-off to the securities in the universe. A "
        "security must be listed at the cut-off and not delisted by the implementation day."
    )
    items = []
    if el.min_listing_days > 0:
        items.append(
            f"Listing history: a newcomer must have been listed for at least "
            f"{el.min_listing_days} calendar days at the cut-off (about "
            f"{el.min_listing_days / 30.44:.1f} months); incumbents are not re-tested."
        )
    else:
        items.append("Listing history: no minimum.")
    if el.velocity_threshold > 0:
        formula = (
            "the median daily number of shares traded x the trading days in the month / the "
            "free-float shares at month end"
            if el.velocity_method == "median"
            else "the month's total shares traded / the free-float shares at month end"
        )
        recent = (
            f" and in each of the latest {el.velocity_recent} months"
            if el.velocity_recent > 0
            else " (no condition on the latest months)"
        )
        inc_recent = (
            f" and in each of the latest {el.incumbent_recent} months"
            if el.incumbent_recent > 0
            else " (no condition on the latest months)"
        )
        items.append(
            f"Turnover velocity: a month passes when the security's velocity, {formula}, is at "
            f"least {_pct(el.velocity_threshold)}. A newcomer must pass in at least "
            f"{el.velocity_required} of the latest {el.velocity_window} months{recent}; an "
            f"incumbent in at least {el.incumbent_required} of {el.velocity_window} months"
            f"{inc_recent}. A security listed for fewer than {el.velocity_window} months is "
            "allowed the same number of failures among the months it was listed."
        )
    else:
        items.append("Turnover velocity: not tested.")
    if el.min_ff_mcap_hkd > 0:
        items.append(
            "Free-float market capitalisation at the cut-off of at least "
            f"{_hkd(el.min_ff_mcap_hkd)}."
        )
    else:
        items.append("Free-float market capitalisation: no minimum.")
    if el.min_adt_hkd > 0:
        items.append(
            f"Liquidity: average daily turnover (traded value in HKD, days without trading "
            f"counting as zero) over the {el.adt_window_days} trading days up to the cut-off of "
            f"at least {_hkd(el.min_adt_hkd)}."
        )
    else:
        items.append("Average daily turnover: no minimum.")
    items.append(
        f"Suspension: a security without a trade for more than {el.max_suspension_days} trading "
        "days at the cut-off is ineligible."
    )
    items.append(
        "Coverage gap: a security whose price series ends without a recorded delisting is "
        "ineligible at every review whose cut-off is more than "
        f"{COVERAGE_GAP_DAYS} trading days past its last observation."
    )
    sec.ul(items)
    return sec


def _selection(rules: IndexRules) -> _Section:
    sel = rules.selection
    sec = _Section("Selection")
    sleeves = sel.sleeves
    if len(sleeves) == 1:
        sec.p(
            f"The index has a target of {sel.target} constituents: the eligible securities "
            f"ranked by {_key_words(sleeves[0])}."
        )
    else:
        parts = [f"{s.n} by {_key_words(s)}" for s in sleeves]
        sec.p(
            f"The index has a target of {sel.target} constituents, selected in "
            f"{len(sleeves)} blocks filled in order, each from the eligible securities not yet "
            f"selected: {'; '.join(parts)}."
        )
    start = None
    for phase in sel.earlier:
        sizes = " and ".join(str(x) for x in phase.sizes)
        since = f"from {start} " if start else ""
        sec.p(
            f"For the reviews effective {since}before {phase.until}, the blocks hold {sizes} "
            "names (a block of 0 selects nobody); the sizes above apply from then on, and the "
            "first review under them treats the constituents in force as incumbents."
        )
        start = phase.until
    items = []
    for k, s in enumerate(sleeves):
        lower, upper = buffer_ranks(s.n, sel.buffer)
        block = "" if len(sleeves) == 1 else f"Block {k + 1} ({s.n} names): "
        missing = (
            " Every universe security needs a value of the block's field at each review where "
            "the block selects; a missing one stops the review with an error naming the field "
            "and the securities."
            if s.missing == "error"
            else ""
        )
        items.append(
            f"{block}Buffer zone of {_pct(sel.buffer)} around {s.n}: newcomers need rank <= "
            f"{lower}; incumbents stay while rank <= {upper}. Remaining places go to the "
            f"best-ranked securities left; if more qualify than there are places, the "
            f"worst-ranked make way.{missing}"
        )
    if sel.fast_entry_top > 0:
        items.append(
            "Fast entry: a new listing that is in the universe on its first trading day and "
            "whose full market capitalisation at the close of that day would rank within the "
            f"top {sel.fast_entry_top} of the existing constituents is added after the close of "
            f"its {_ordinal(sel.fast_entry_days)} trading day, at its natural weight (at most "
            f"its cap) with the others scaled down. The count may then exceed {sel.target} "
            "until the next review."
        )
    else:
        items.append("Fast entry: none; new listings wait for a review.")
    if sel.max_per_industry > 0:
        items.append(
            f"Industry limit: at most {sel.max_per_industry} constituents per industry; a "
            "security beyond the limit is skipped for the next best-ranked."
        )
    else:
        items.append("Industry limit: none.")
    if sel.quota_column is not None:
        hi = "no maximum" if sel.quota_max is None else f"at most {sel.quota_max}"
        items.append(
            f"Quota: at least {sel.quota_min} and {hi} constituents flagged by the data field "
            f"`{sel.quota_column}`. Flagged names beyond the maximum are skipped; below the "
            "minimum, the worst-ranked unflagged constituents are swapped for the best-ranked "
            "eligible flagged names. A dataset without the field turns the quota off."
        )
    else:
        items.append("Quota: none.")
    sec.ul(items)
    return sec


def _weighting(rules: IndexRules) -> _Section:
    wt = rules.weighting
    sec = _Section("Weighting and caps")
    if wt.scheme == "ff_mcap":
        scheme = "free-float-adjusted market capitalisation in HKD"
    elif wt.scheme == "tilted":
        scheme = (
            "free-float-adjusted market capitalisation in HKD x max(AI score, "
            f"{_num(wt.min_score)}) to the power {_num(wt.alpha)}"
        )
    else:
        scheme = "equal weights"
    min_names = math.ceil(1.0 / wt.cap - 1e-12)
    items = [
        f"Scheme: {scheme}, at the closing prices of the implementation day, so capped names "
        "sit exactly at their cap when the new weights take effect.",
        f"Cap: each constituent holds at most {_pct(wt.cap)} of the index at a review. It needs "
        f"at least {min_names} constituents (number of names x cap >= 100%); fewer is "
        "infeasible and the review fails with an error.",
    ]
    if wt.category_caps:
        caps = [f"{_category_words(c.category)} at most {_pct(c.cap)}" for c in wt.category_caps]
        items.append(
            "Category caps (lower than the general cap for some names): " + "; ".join(caps) + "."
        )
    else:
        items.append("Category caps: none.")
    items += [
        "Capping convention (docs/conventions.md): with weighting bases m_i > 0 and caps c_i, "
        "w_i = min(c_i, k x m_i) with k chosen so that the weights sum to 1, exactly where "
        "iterative redistribution of the excess converges. The Hang Seng-style capping factor "
        "CF_i is the capped weight over the uncapped weight, scaled so that the largest is 1; "
        "it lies in (0, 1].",
        "Caps apply only at reviews: weights drift with prices between reviews and can exceed "
        "the cap until the next one.",
        "Between reviews: a constituent that delists is removed at the close of its last "
        "trading day and its weight is shared pro rata among the others; a long-suspended "
        "constituent stays until the next review, where the suspension screen removes it.",
    ]
    sec.ul(items)
    return sec


def _calendar(rules: IndexRules, as_of: Any) -> _Section:
    cal = rules.calendar
    sec = _Section("Review calendar")
    cut = sorted(cal.cutoff_months)
    impl_months = [(m - 1 + cal.months_to_implementation) % 12 + 1 for m in cut]
    sec.p(
        f"Reviews are held {_frequency(len(cut))}. The data cut-off is the last trading day of "
        f"{_join(MONTHS[m - 1] for m in cut)}. Changes are implemented after the close on the "
        f"first {WEEKDAYS[cal.weekday]} of the month {cal.months_to_implementation} months "
        f"after the cut-off month ({_join(MONTHS[m - 1] for m in impl_months)}), rolled forward "
        "to the next trading day if the market is closed, and take effect on the next trading "
        "day."
    )
    nxt = next_reviews(rules, as_of)
    day = pd.Timestamp(pd.Timestamp.today() if as_of is None else as_of).date()
    sec.p(
        f"The next {len(nxt)} reviews implemented on or after {day}, on a Monday-Friday "
        "business-day calendar (public holidays are not removed, so the exchange's holiday "
        "calendar can move a date):"
    )
    sec.table(
        ["data cut-off", "implementation (after the close)", "effective"],
        [[f"{d:%a %d %b %Y}" for d in row] for row in nxt.itertuples(index=False)],
    )
    return sec


def _assumptions(rules: IndexRules) -> list[str]:
    u, el, sel, wt, cal = (
        rules.universe,
        rules.eligibility,
        rules.selection,
        rules.weighting,
        rules.calendar,
    )
    out: list[str] = []
    if el.velocity_threshold > 0:
        out.append(
            f"Turnover velocity of {_pct(el.velocity_threshold)} a month, the "
            f"{el.velocity_method} velocity formula and the month counts ({el.velocity_required}"
            f" of {el.velocity_window} and the latest {el.velocity_recent} for newcomers, "
            f"{el.incumbent_required} of {el.velocity_window} for incumbents): UNVERIFIED; HSIL's "
            f"General Guide 5.6.3 was not readable ({_SRC} 1.2 and 2.3)."
        )
    if sel.buffer > 0:
        lower, upper = buffer_ranks(sel.n, sel.buffer)
        out.append(
            f"Buffer zone of {_pct(sel.buffer)} (ranks {lower} and {upper} for {sel.n} names): "
            f"an INFERENCE from sibling HSIL indices; the HSTECH and HSI buffers were not found "
            f"({_SRC} 1.3)."
        )
    evidence = (
        f"HSI uses 3 months since May 2021 ([B], {_SRC} 2.3); HSTECH's rule was not found, and "
        f"its reviews added Haier Smart Home 8 days and Horizon Robotics 68 days after listing "
        f"({_SRC} 1.6), so any value for HSTECH is an assumption."
    )
    if el.min_listing_days > 0:
        out.append(f"Listing history of {el.min_listing_days} calendar days: {evidence}")
    else:
        out.append(
            "No listing-history requirement (a new listing meets the turnover velocity test "
            f"over the months since it listed): {evidence}"
        )
    out.append(
        f"Suspension limit of {el.max_suspension_days} trading days: a documented project "
        f"choice; HSIL's rule was not found (not covered by {_SRC})."
    )
    out.append(
        f"Coverage-gap rule ({COVERAGE_GAP_DAYS} trading days): a data convention of indexlab "
        "(docs/conventions.md, Coverage, suspension and delisting), not an HSIL rule."
    )
    if el.min_ff_mcap_hkd > 0:
        out.append(
            f"Minimum free-float market cap of {_hkd(el.min_ff_mcap_hkd)}: a design choice, no "
            f"HSIL source ({_SRC})."
        )
    if sel.fast_entry_top > 0:
        out.append(
            f"Fast entry (top {sel.fast_entry_top}, after the {_ordinal(sel.fast_entry_days)} "
            f"trading day): HSTECH's rule is top 10 after the 10th trading day ([B], {_SRC} "
            f"1.4); for HSI it is UNVERIFIED ({_SRC} 2.3); whether the count temporarily "
            f"exceeds the target and is reset at the next review is UNVERIFIED ({_SRC} 1.4)."
        )
    if sel.extra:
        out.append(
            f"Composite selection in {len(sel.sleeves)} blocks: after the 2026 HSTECH "
            f"consultation (40 by market cap and 10 by revenue growth); the final split was not "
            f"found and is a parameter ({_SRC} 1.8)."
        )
    if sel.max_per_industry > 0:
        out.append(
            f"Industry limit of {sel.max_per_industry}: HSI may limit the names per industry "
            f"group ([C], to verify, {_SRC} 2.3); the number is an assumption."
        )
    if sel.quota_column is not None:
        out.append(
            f"Quota on `{sel.quota_column}` ({sel.quota_min} to "
            f"{'no maximum' if sel.quota_max is None else sel.quota_max}): HSI requires 20 to 25 "
            f"Hong Kong companies ([B], {_SRC} 2.3); which companies count is judged in the "
            "dataset."
        )
    keys = {s.key for s in sel.sleeves}
    if "mcap" in keys:
        out.append(
            f"Ranking by full market cap at the cut-off: HSIL ranks by market capitalisation "
            f"([A], {_SRC} 1.3); full rather than free-float cap is our reading."
        )
    if "ai_tilted" in keys or wt.scheme == "tilted" or u.ai_layers is not None:
        out.append(
            f"AI layers, AI scores and the AI tilt: a project design; no Hang Seng AI index was "
            f"found ({_SRC} 3.1)."
        )
    cap_src = (
        f"HSTECH's 8% ([A], {_SRC} 1.5) and HSI's since June 2021 ([B], {_SRC} 2.1)"
        if math.isclose(wt.cap, 0.08)
        else f"a design choice; HSTECH and HSI use 8% ({_SRC} 1.5, 2.1)"
    )
    out.append(
        f"Cap of {_pct(wt.cap)}: {cap_src}. The capping-factor formula wording is UNVERIFIED "
        f"but standard practice, and capping at reviews only is from the observed pre/post "
        f"weights ([B], {_SRC} 1.5)."
    )
    for c in wt.category_caps:
        if c.category == "ai_application":
            src = f"after CSI's HK AI theme indices, 5% for AI-application names ([B], {_SRC} 3.2)"
        elif c.category in ("wvr", "secondary"):
            src = f"HSI's 5% WVR/secondary cap of Aug 2020, removed in June 2021 ({_SRC} 2.1)"
        else:
            src = "a design choice"
        out.append(f"Category cap of {_pct(c.cap)} for {_category_words(c.category)}: {src}.")
    if _uses_ff_mcap(rules):
        out.append(
            "Free float: WVR shares and depositary-held shares count as non-free-float through "
            "the dataset's free-float factor; this is HSI's rule ([A]) and UNVERIFIED for HSTECH "
            f"({_SRC} 1.7)."
        )
    if u.tech_theme:
        out.append(
            "The judged technology theme replaces HSTECH's innovation screen (R&D >= 5% or "
            f"revenue growth >= 10%, [B], {_SRC} 1.1); its sub-themes are the dataset's "
            "documented choice (hk_tech PROVENANCE.md, section 5). The Greater China "
            f"requirement ({_SRC} 1.1) is not tested."
        )
    if u.industries is not None and set(u.industries) == set(HSTECH_INDUSTRIES):
        out.append(f"The five HSICS industries are HSTECH's ([B], {_SRC} 1.1).")
    if u.connect_eligible_only:
        out.append(
            "Stock Connect eligibility is a proxy of the Southbound rules (HK$5bn test on the "
            f"12-month average market cap, [C] for the averaging, {_SRC} 5.5); current Shenzhen "
            "Northbound thresholds are UNVERIFIED."
        )
    elif u.tech_theme:
        out.append(
            f"No Stock Connect requirement: HSTECH is believed not to require it (UNVERIFIED, "
            f"{_SRC} 5.5)."
        )
    out.append(
        f"Review calendar (first {WEEKDAYS[cal.weekday]}, {cal.months_to_implementation} months "
        f"after the cut-off): derived from the observed HSTECH and HSI reviews ([A/B], {_SRC} "
        f"1.6), not a published rule; the roll to the next trading day is from {_SRC} 2.3 "
        "([B])."
    )
    return out


def _sources(rules: IndexRules) -> _Section:
    sec = _Section("Assumptions and sources")
    sec.p(
        f"Numbers that {_SRC} marks UNVERIFIED or INFERENCE, and the project's own choices, "
        "are assumptions: configurable defaults that `IndexRules.replace` changes, never "
        "constants of the engine. Each names the section of the rules file it comes from."
    )
    sec.ul(_assumptions(rules))
    sec.h3("The rule set's own description")
    changes = _preset_changes(rules)
    if changes:
        sec.p(
            f"This rule set differs from the {rules.name} preset in "
            + "; ".join(changes)
            + ". The description below was written for the preset; where it differs, the "
            "fields above apply."
        )
    sec.p(rules.description or "(no description)")
    return sec


def _summary(rules: IndexRules) -> str:
    u, sel, wt, cal = rules.universe, rules.selection, rules.weighting, rules.calendar
    where = _join(MARKETS.get(m, m) for m in u.markets) if u.markets is not None else "all markets"
    what = []
    if u.tech_theme:
        what.append("technology-theme")
    if u.ai_layers is not None:
        what.append("AI-chain")
    kind = " ".join(what) + " securities" if what else "securities"
    if len(sel.sleeves) == 1:
        chosen = f"ranked by {_key_words(sel.sleeves[0])}"
    else:
        chosen = "selected in blocks: " + _join(f"{s.n} by {_key_words(s)}" for s in sel.sleeves)
    band = (
        f"a buffer zone of {_pct(sel.buffer)} around the target count"
        if sel.buffer > 0
        else "no buffer zone"
    )
    weights = {"ff_mcap": "free-float market cap", "tilted": "AI-tilted free-float market cap"}
    cats = (
        " (lower for " + _join(_category_words(c.category) for c in wt.category_caps) + ")"
        if wt.category_caps
        else ""
    )
    months = _join(MONTHS[m - 1] for m in sorted(cal.cutoff_months))
    since = f" (from the review effective {sel.earlier[-1].until})" if sel.earlier else ""
    before = "".join(
        f" Before {p.until}, the blocks held {_join(str(x) for x in p.sizes)} names."
        for p in sel.earlier
    )
    return (
        f"{rules.name} holds {sel.target} {kind}{since} listed in {where} that pass the "
        f"eligibility screens, {chosen}, with {band}.{before} Constituents are weighted by "
        f"{weights.get(wt.scheme, 'equal weights')} with a cap of {_pct(wt.cap)} per "
        f"name{cats}, and the index is reviewed {_frequency(len(cal.cutoff_months))} with data "
        f"cut-offs at the end of {months}. Every number below is read from the rule set's "
        "fields; the assumptions behind them are listed in the last section."
    )


def _document(rules: IndexRules, as_of: Any) -> tuple[str, str, list[_Section]]:
    sections = [
        _universe(rules),
        _eligibility(rules),
        _selection(rules),
        _weighting(rules),
        _calendar(rules, as_of),
        _sources(rules),
    ]
    return f"{rules.name} index methodology", _summary(rules), sections


# ---------------------------------------------------------------------------- rendering


def _markdown(title: str, summary: str, sections: list[_Section]) -> str:
    lines = [f"# {title}", "", summary, ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for kind, content in s.blocks:
            if kind == "p":
                lines += [content, ""]
            elif kind == "h3":
                lines += [f"### {content}", ""]
            elif kind == "ul":
                lines += [f"- {item}" for item in content] + [""]
            else:
                header, rows = content
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 0 auto; max-width: 900px; padding: 1.5em; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1em; margin-top: 1.2em; }
p.summary { color: #444; }
nav a { margin-right: 1em; color: #1f77b4; text-decoration: none; }
li { margin-bottom: 0.4em; }
code { background: #f5f5f5; padding: 0 0.2em; font-size: 0.95em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
th { background: #f5f5f5; }
"""

_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    return _CODE.sub(r"<code>\1</code>", _html.escape(text, quote=False))


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _html_page(title: str, summary: str, sections: list[_Section]) -> str:
    esc = _html.escape
    nav = "".join(f'<a href="#{_anchor(s.title)}">{esc(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        parts = [f'<section id="{_anchor(s.title)}"><h2>{esc(s.title)}</h2>']
        for kind, content in s.blocks:
            if kind == "p":
                parts.append(f"<p>{_inline(content)}</p>")
            elif kind == "h3":
                parts.append(f"<h3>{_inline(content)}</h3>")
            elif kind == "ul":
                parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in content) + "</ul>")
            else:
                header, rows = content
                head = "".join(f"<th>{esc(h)}</th>" for h in header)
                cells = "".join(
                    "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        parts.append("</section>")
        body.append("".join(parts))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="summary">{_inline(summary)}</p>'
        f"<nav>{nav}</nav>{''.join(body)}</body></html>\n"
    )


def methodology(rules: IndexRules, format: str = "markdown", *, as_of: Any = None) -> str:
    """The rule set as a methodology document, in Markdown or as a self-contained HTML page.

    Parameters
    ----------
    rules
        The rule set to describe; every number is read from its fields.
    format
        ``"markdown"`` or ``"html"`` (one page, inline CSS, no scripts, no external references).
    as_of
        The date from which the next four reviews are listed (default: today).

    Returns
    -------
    str
        The document: a title and a one-paragraph summary, then the sections of
        :data:`SECTIONS`.

    Raises
    ------
    DataError
        For an unknown format or something that is not an :class:`IndexRules`.

    Examples
    --------
    >>> from indexlab import rules
    >>> from indexlab.rules.methodology import methodology
    >>> md = methodology(rules.HSTECH, as_of="2026-01-01")
    >>> md.splitlines()[0]
    '# HSTECH index methodology'
    >>> "newcomers need rank <= 24; incumbents stay while rank <= 36" in md
    True
    >>> methodology(rules.HSTECH, "html", as_of="2026-01-01").startswith("<!DOCTYPE html>")
    True
    """
    if not isinstance(rules, IndexRules):
        raise DataError(f"rules must be an IndexRules, got {type(rules).__name__}")
    if format not in FORMATS:
        raise DataError(f"format must be one of {FORMATS}, got {format!r}")
    title, summary, sections = _document(rules, as_of)
    if format == "html":
        return _html_page(title, summary, sections)
    return _markdown(title, summary, sections)
