"""Index rules as data: small frozen dataclasses that round-trip through TOML and JSON.

An :class:`IndexRules` is a universe filter, eligibility screens, a selection rule, a weighting
scheme and a review calendar. Every number that docs/hang-seng-rules.md marks UNVERIFIED is a
parameter with a documented default, never a constant in the engine.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from itertools import product
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from indexlab.errors import DataError

__all__ = [
    "Calendar",
    "CategoryCap",
    "Eligibility",
    "IndexRules",
    "RuleFieldError",
    "Selection",
    "SelectionPhase",
    "Sleeve",
    "Universe",
    "Weighting",
    "grid",
]

T = TypeVar("T")

RANK_KEYS = ("ff_mcap", "mcap", "ai_tilted")
WEIGHT_SCHEMES = ("ff_mcap", "tilted", "equal")
CATEGORIES = ("wvr", "secondary", "ai_application")


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise DataError(msg)


#: Largest whole number a count or a day field may hold (the core reads them as 32-bit).
_MAX_INT = 2**31 - 1


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


class RuleFieldError(DataError):
    """A rules field holds a value of the wrong type or range; ``field`` is its dotted path
    (``"selection.n"``), for callers that report where the problem is (the API's ``where``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _field_check(ok: bool, field: str, label: str, expected: str, v: Any) -> None:
    if not ok:
        raise RuleFieldError(field, f"rules field '{label}': expected {expected}, found {v!r}")


def _checked_value(kind: str, field: str, v: Any, label: str | None = None) -> Any:
    """``v`` checked against a field's annotation ``kind`` (and normalised: ``30.0`` -> ``30``,
    lists -> tuples), or a :class:`RuleFieldError` that names the field and the value."""
    label = field if label is None else label
    optional = kind.endswith(" | None")
    base = kind.removesuffix(" | None")
    if optional and v is None:
        return None
    if base == "bool":
        _field_check(isinstance(v, (bool, np.bool_)), field, label, "true or false", v)
        return bool(v)
    if base == "int":
        whole = isinstance(v, (int, np.integer)) or (
            isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer()
        )
        _field_check(_is_real(v) and whole, field, label, "an integer", v)
        _field_check(abs(v) <= _MAX_INT, field, label, f"an integer of at most {_MAX_INT}", v)
        return int(v)
    if base == "float":
        ok = _is_real(v) and abs(v) <= sys.float_info.max
        _field_check(ok, field, label, "a finite number", v)
        return float(v)
    if base == "str":
        _field_check(isinstance(v, str), field, label, "a string", v)
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            _field_check(False, field, label, "valid Unicode text (no lone surrogates)", v)
        return v
    if base.startswith("tuple[") and base.endswith(", ...]"):
        item = base[len("tuple[") : -len(", ...]")]
        _field_check(isinstance(v, (tuple, list)), field, label, "a list", v)
        if item in ("int", "float", "str", "bool"):
            return tuple(_checked_value(item, field, x, f"{label}[{k}]") for k, x in enumerate(v))
        return tuple(v)
    return v


def _validate_types(obj: Any, section: str) -> None:
    """Check and normalise every field of a frozen rules dataclass against its annotation:
    ``n=30.5``, ``n=inf``, ``cap=True``, a NaN ``alpha`` or text for a number are refused."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        checked = _checked_value(str(f.type), f"{section}.{f.name}", value)
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


@dataclass(frozen=True)
class Universe:
    """Which securities can be considered at all (static attributes of the securities master).

    ``None`` means "no restriction". ``tech_theme`` keeps only technology-theme names: the
    ``tech_theme`` boolean column of the securities master when present, otherwise the proxy
    "``ai_layer`` is not ``none``, or the industry is Information Technology or Consumer
    Discretionary" (HSTECH's innovation screen needs R&D and revenue data the dataset lacks).
    """

    markets: tuple[str, ...] | None = None
    industries: tuple[str, ...] | None = None
    listing_types: tuple[str, ...] | None = None
    connect_eligible_only: bool = False
    ai_layers: tuple[str, ...] | None = None
    min_ai_score: float = 0.0
    tech_theme: bool = False

    def __post_init__(self) -> None:
        _validate_types(self, "universe")
        _check(
            0.0 <= self.min_ai_score <= 1.0,
            f"min_ai_score must be in [0, 1], got {self.min_ai_score}",
        )


@dataclass(frozen=True)
class Eligibility:
    """Screens evaluated at each review's cut-off.

    Defaults (hang-seng-rules.md 1.2, all UNVERIFIED): monthly velocity >= 0.1%, passed in
    10 of the last 12 months and in each of the latest 3 months by newcomers; incumbents need
    10 of 12 (``incumbent_recent = 0``: no recent-month condition). Velocity is the median daily
    traded shares x trading days in the month / free-float shares at month end
    (``velocity_method = "median"``) or the month's summed traded shares / free-float shares
    (``"sum"``). A name listed for fewer months than the window is allowed the same number of
    failures (``window - required``) among the months it was listed. ``velocity_threshold = 0``
    turns the test off. ``min_listing_days``: calendar days from listing to the cut-off, applied
    to newcomers only (HSI: 3 months since May 2021, hang-seng-rules.md 2.3).
    ``max_suspension_days``: a name not traded for more than this many trading days at the
    cut-off is ineligible (our documented choice; HSIL's rule was not found).
    """

    min_listing_days: int = 90
    velocity_threshold: float = 0.001
    velocity_method: str = "median"
    velocity_window: int = 12
    velocity_required: int = 10
    velocity_recent: int = 3
    incumbent_required: int = 10
    incumbent_recent: int = 0
    min_ff_mcap_hkd: float = 0.0
    min_adt_hkd: float = 0.0
    adt_window_days: int = 126
    max_suspension_days: int = 60

    def __post_init__(self) -> None:
        _validate_types(self, "eligibility")
        _check(
            self.velocity_method in ("median", "sum"),
            f"velocity_method must be 'median' or 'sum', got {self.velocity_method!r}",
        )
        _check(self.velocity_window >= 1, "velocity_window must be >= 1")
        for name in ("velocity_required", "incumbent_required"):
            v = getattr(self, name)
            _check(
                0 <= v <= self.velocity_window, f"{name} must be in [0, velocity_window], got {v}"
            )
        _check(self.velocity_threshold >= 0.0, "velocity_threshold must be >= 0")
        _check(self.adt_window_days >= 1, "adt_window_days must be >= 1")
        _check(self.max_suspension_days >= 0, "max_suspension_days must be >= 0")
        for name in (
            "min_listing_days",
            "velocity_recent",
            "incumbent_recent",
            "min_ff_mcap_hkd",
            "min_adt_hkd",
        ):
            v = getattr(self, name)
            _field_check(v >= 0, f"eligibility.{name}", f"eligibility.{name}", "a number >= 0", v)


@dataclass(frozen=True)
class Sleeve:
    """One block of a composite selection: ``n`` names ranked by ``key``.

    ``key``: ``"ff_mcap"`` (free-float market cap, HKD), ``"mcap"`` (full market cap),
    ``"ai_tilted"`` (free-float market cap x ai_score ** alpha) or ``"column:<name>"`` (a
    point-in-time fundamental of ``Dataset.fundamentals`` such as ``revenue_growth``, a panel
    field, or a numeric securities column). ``window_days > 0`` averages the market cap over
    that many trading days up to the cut-off. ``missing``: what a universe name without a key
    value does at a review where the sleeve selects: ``"skip"`` (it cannot be chosen by this
    sleeve) or ``"error"`` (a :class:`DataError` naming the field and every name lacking it).
    """

    key: str = "mcap"
    n: int = 10
    window_days: int = 0
    alpha: float = 1.0
    missing: str = "skip"

    def __post_init__(self) -> None:
        _validate_types(self, "selection.extra")
        _check(
            self.key in RANK_KEYS or self.key.startswith("column:"),
            f"rank key must be one of {RANK_KEYS} or 'column:<name>', got {self.key!r}",
        )
        _check(
            self.missing in ("skip", "error"),
            f"missing must be 'skip' or 'error', got {self.missing!r}",
        )
        _check(self.n >= 1, f"a selection needs n >= 1, got {self.n}")
        _check(self.window_days >= 0, "window_days must be >= 0")


@dataclass(frozen=True)
class SelectionPhase:
    """Sleeve sizes in force for the reviews effective before ``until`` (ISO date): one size per
    sleeve of the selection, 0 to leave a sleeve out. A rule change at a date (HSTECH's 30 names
    by market cap, then 40 by market cap + 10 by revenue growth from 7 Dec 2026) is one
    selection with its later sizes and an earlier phase, so one history runs across the change
    and the first review under the new sizes sees the old constituents as incumbents."""

    until: str
    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        _validate_types(self, "selection.earlier")
        try:
            day = pd.Timestamp(self.until)
        except (ValueError, TypeError):
            day = pd.NaT
        _check(not pd.isna(day), f"selection.earlier: until must be a date, got {self.until!r}")
        _check(
            all(x >= 0 for x in self.sizes) and sum(self.sizes) >= 1,
            f"selection.earlier: sizes must be >= 0 with at least one name, got {self.sizes}",
        )


@dataclass(frozen=True)
class Selection:
    """Ranking and selection at each review.

    ``buffer`` (default 0.2, an INFERENCE from sibling HSIL indices, hang-seng-rules.md 1.3): an
    incumbent stays while it ranks <= round(n * (1 + buffer)); a newcomer enters only if it ranks
    <= round(n * (1 - buffer)); remaining places go to the best-ranked names left, and if too many
    qualify the worst-ranked are dropped. Fast entry (hang-seng-rules.md 1.4): a new listing whose
    first-day full market cap would rank within the top ``fast_entry_top`` constituents is added
    after the close of its ``fast_entry_days``-th trading day (0 disables it); the count may
    exceed ``n`` until the next review. ``quota_column`` (a boolean securities column, e.g.
    ``hk_company``) with ``quota_min``/``quota_max`` bounds the number of flagged names; a missing
    column turns the quota off. ``extra`` adds composite-selection sleeves filled after the first
    (e.g. 40 by market cap + 10 by revenue growth, the 2026 HSTECH consultation).
    """

    n: int = 30
    key: str = "mcap"
    window_days: int = 0
    alpha: float = 1.0
    buffer: float = 0.2
    fast_entry_top: int = 10
    fast_entry_days: int = 10
    max_per_industry: int = 0
    quota_column: str | None = None
    quota_min: int = 0
    quota_max: int | None = None
    extra: tuple[Sleeve, ...] = ()
    earlier: tuple[SelectionPhase, ...] = ()

    def __post_init__(self) -> None:
        _validate_types(self, "selection")
        for k, phase in enumerate(self.earlier):
            _field_check(
                isinstance(phase, SelectionPhase),
                "selection.earlier",
                f"selection.earlier[{k}]",
                "a SelectionPhase",
                phase,
            )
            _check(
                len(phase.sizes) == 1 + len(self.extra),
                f"selection.earlier[{k}] gives {len(phase.sizes)} sizes for "
                f"{1 + len(self.extra)} sleeves",
            )
        ends = [pd.Timestamp(p.until) for p in self.earlier]
        _check(ends == sorted(set(ends)), "selection.earlier must be in increasing date order")
        for k, sleeve in enumerate(self.extra):
            _field_check(
                isinstance(sleeve, Sleeve),
                "selection.extra",
                f"selection.extra[{k}]",
                "a Sleeve",
                sleeve,
            )
        Sleeve(self.key, self.n, self.window_days, self.alpha)
        _check(0.0 <= self.buffer < 1.0, f"buffer must be in [0, 1), got {self.buffer}")
        _check(
            self.fast_entry_top >= 0 and self.fast_entry_days >= 1,
            "fast_entry_top must be >= 0 and fast_entry_days >= 1",
        )
        _check(self.max_per_industry >= 0, "max_per_industry must be >= 0 (0 = no limit)")
        qmax = self.quota_max if self.quota_max is not None else 10**9
        _check(
            0 <= self.quota_min <= qmax,
            f"need 0 <= quota_min <= quota_max, got {self.quota_min} and {self.quota_max}",
        )

    @property
    def sleeves(self) -> tuple[Sleeve, ...]:
        """All selection blocks, the main one first."""
        return (Sleeve(self.key, self.n, self.window_days, self.alpha), *self.extra)

    @property
    def target(self) -> int:
        """Target number of constituents."""
        return sum(s.n for s in self.sleeves)

    def sizes_at(self, effective: Any) -> tuple[int, ...]:
        """The sleeve sizes for a review effective on ``effective``."""
        day = pd.Timestamp(effective)
        for phase in self.earlier:
            if day < pd.Timestamp(phase.until):
                return phase.sizes
        return tuple(s.n for s in self.sleeves)


@dataclass(frozen=True)
class CategoryCap:
    """A cap for one category of names: ``"wvr"``, ``"secondary"``, ``"ai_application"`` or
    ``"column:<boolean securities column>"``."""

    category: str
    cap: float

    def __post_init__(self) -> None:
        _validate_types(self, "weighting.category_caps")
        _check(
            self.category in CATEGORIES or self.category.startswith("column:"),
            f"category must be one of {CATEGORIES} or 'column:<name>', got {self.category!r}",
        )
        _check(0.0 < self.cap <= 1.0, f"category cap must be in (0, 1], got {self.cap}")


@dataclass(frozen=True)
class Weighting:
    """Weights set at each review (capping only at reviews; weights drift in between).

    ``scheme``: ``"ff_mcap"``, ``"tilted"`` (free-float market cap x max(ai_score, min_score) **
    alpha) or ``"equal"``. ``cap`` applies to every name; ``category_caps`` lower it for some.
    Weights use the closing prices of the implementation day (the last close before the
    effective date), so capped names sit exactly at the cap when the new weights take effect.
    """

    scheme: str = "ff_mcap"
    alpha: float = 1.0
    cap: float = 0.08
    category_caps: tuple[CategoryCap, ...] = ()
    min_score: float = 0.01

    def __post_init__(self) -> None:
        _validate_types(self, "weighting")
        for k, cc in enumerate(self.category_caps):
            _field_check(
                isinstance(cc, CategoryCap),
                "weighting.category_caps",
                f"weighting.category_caps[{k}]",
                "a CategoryCap",
                cc,
            )
        _check(
            self.scheme in WEIGHT_SCHEMES,
            f"scheme must be one of {WEIGHT_SCHEMES}, got {self.scheme!r}",
        )
        _check(0.0 < self.cap <= 1.0, f"cap must be in (0, 1], got {self.cap}")
        _check(self.min_score > 0.0, "min_score must be > 0")


@dataclass(frozen=True)
class Calendar:
    """The quarterly review calendar, derived from the reviews in hang-seng-rules.md 1.6.

    Cut-off: the last trading day of each month in ``cutoff_months``. Implementation: after the
    close of the first Friday (``weekday`` 4) of the month ``months_to_implementation`` after the
    cut-off month (31 Dec 2024 -> Fri 7 Mar 2025; 31 Mar 2025 -> Fri 6 Jun 2025; 30 Sep 2025 ->
    Fri 5 Dec 2025; 30 Jun 2023 -> Fri 1 Sep 2023), rolled to the next trading day if the market
    is closed. Effective: the next trading day (Mon 10 Mar, 9 Jun, 8 Dec 2025; 4 Sep 2023).
    """

    cutoff_months: tuple[int, ...] = (3, 6, 9, 12)
    months_to_implementation: int = 3
    weekday: int = 4

    def __post_init__(self) -> None:
        _validate_types(self, "calendar")
        _check(
            all(1 <= m <= 12 for m in self.cutoff_months) and len(self.cutoff_months) > 0,
            "cutoff_months must be month numbers 1..12",
        )
        _check(
            1 <= self.months_to_implementation <= 11, "months_to_implementation must be in 1..11"
        )
        _check(0 <= self.weekday <= 6, "weekday must be 0 (Monday) .. 6 (Sunday)")


_NESTED = {
    "universe": Universe,
    "eligibility": Eligibility,
    "selection": Selection,
    "weighting": Weighting,
    "calendar": Calendar,
}
_SHORT = {
    "cap": "weighting.cap",
    "n": "selection.n",
    "buffer": "selection.buffer",
    "alpha": "weighting.alpha",
}


@dataclass(frozen=True)
class IndexRules:
    """A complete index methodology, as data.

    Between reviews (documented choices): a constituent that delists is removed at the close of
    its last trading day and its weight is shared pro rata among the others; a long-suspended
    constituent stays until the next review, where the suspension screen removes it.

    Examples
    --------
    >>> from indexlab import rules
    >>> r = rules.HSTECH.replace(**{"weighting.cap": 0.1, "selection.n": 40})
    >>> (r.weighting.cap, r.selection.n)
    (0.1, 40)
    >>> rules.IndexRules.from_toml(r.to_toml()) == r
    True
    """

    name: str = "custom"
    description: str = ""
    universe: Universe = field(default_factory=Universe)
    eligibility: Eligibility = field(default_factory=Eligibility)
    selection: Selection = field(default_factory=Selection)
    weighting: Weighting = field(default_factory=Weighting)
    calendar: Calendar = field(default_factory=Calendar)

    def __post_init__(self) -> None:
        _validate_types(self, "rules")
        for name, cls in _NESTED.items():
            _check(isinstance(getattr(self, name), cls), f"{name} must be a {cls.__name__}")

    # ------------------------------------------------------------------ variants

    def replace(self, **changes: Any) -> IndexRules:
        """A copy with changes: nested (``weighting=Weighting(...)`` or a dict of fields),
        dotted (``**{"weighting.cap": 0.1}``) or short (``cap``, ``n``, ``buffer``, ``alpha``).

        Examples
        --------
        >>> from indexlab import rules
        >>> rules.HSTECH.replace(cap=0.1).weighting.cap
        0.1
        """
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            key = _SHORT.get(key, key)
            if "." in key:
                section, _, attr = key.partition(".")
                _check(
                    section in _NESTED,
                    f"unknown rules section {section!r} in {key!r}; sections are {list(_NESTED)}",
                )
                nested.setdefault(section, {})[attr] = value
            elif key in _NESTED and isinstance(value, Mapping):
                nested.setdefault(key, {}).update(value)
            else:
                _check(key in {f.name for f in fields(self)}, f"unknown rules field {key!r}")
                top[key] = value
        for section, attrs in nested.items():
            base = top.get(section, getattr(self, section))
            known = {f.name for f in fields(base)}
            bad = sorted(set(attrs) - known)
            _check(
                not bad,
                f"unknown field(s) {bad} in rules section {section!r}; fields are {sorted(known)}",
            )
            top[section] = _from_dict(type(base), {**_to_dict(base), **_plain(attrs)})
        return dataclasses.replace(self, **top)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples, ``None`` kept)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexRules:
        """Inverse of :meth:`to_dict` (missing keys take their defaults)."""
        return _from_dict(cls, data)

    def to_json(self) -> str:
        """JSON text; :meth:`from_json` reads it back."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> IndexRules:
        return cls.from_dict(json.loads(text))

    def to_toml(self) -> str:
        """TOML text (``None`` values are omitted: they are the defaults)."""
        return _toml(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> IndexRules:
        return cls.from_dict(tomllib.loads(text))

    # ------------------------------------------------------------------ documents

    def methodology(self, format: str = "markdown") -> str:
        """The rules in prose, as Markdown or a self-contained HTML page
        (see :func:`indexlab.rules.methodology.methodology`).

        Examples
        --------
        >>> from indexlab import rules
        >>> rules.HSTECH.replace(n=40).methodology().splitlines()[0]
        '# HSTECH index methodology'
        """
        from indexlab.rules.methodology import methodology

        return methodology(self, format)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _to_dict(obj: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}


_ITEM_TYPES: dict[tuple[type, str], type] = {
    (Selection, "extra"): Sleeve,
    (Selection, "earlier"): SelectionPhase,
    (Weighting, "category_caps"): CategoryCap,
}


def _from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    _check(
        isinstance(data, Mapping),
        f"{cls.__name__} must be given as a table/dict, got {type(data).__name__}",
    )
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    bad = sorted(set(data) - set(known))
    _check(not bad, f"unknown field(s) {bad} for {cls.__name__}; fields are {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if cls is IndexRules and name in _NESTED:
            kwargs[name] = (
                value if isinstance(value, _NESTED[name]) else _from_dict(_NESTED[name], value)
            )
        elif (cls, name) in _ITEM_TYPES:
            item = _ITEM_TYPES[(cls, name)]
            kwargs[name] = tuple(v if isinstance(v, item) else _from_dict(item, v) for v in value)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise DataError(f"bad {cls.__name__} fields: {exc}") from None


def _toml_string(v: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, everything
    else (an emoji, CJK text) written as itself in UTF-8 (TOML has no surrogate-pair escapes,
    so ``json.dumps`` output does not always read back)."""
    out = []
    for ch in v:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        _check(math.isfinite(v), f"cannot write the non-finite number {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise DataError(f"cannot write {v!r} to TOML")


def _toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A tiny TOML writer for nested tables, arrays of tables and scalars/arrays."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(x, Mapping) for x in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    out = "\n".join(lines)
    for key, value in tables:
        name = f"{prefix}{key}"
        out += f"\n\n[{name}]\n" + _toml(value, f"{name}.")
    for key, items in arrays:
        name = f"{prefix}{key}"
        for item in items:
            out += f"\n\n[[{name}]]\n" + _toml(item, f"{name}.")
    return out.strip("\n") + "\n"


def grid(base: IndexRules, **axes: list[Any]) -> Iterator[IndexRules]:
    """Every combination of parameter values, as rule variants (keys as in :meth:`replace`).

    Examples
    --------
    >>> from indexlab import rules
    >>> variants = list(rules.grid(rules.HSTECH, cap=[0.08, 0.1], n=[25, 30, 35]))
    >>> len(variants)
    6
    """
    keys = list(axes)
    for values in product(*(axes[k] for k in keys)):
        yield base.replace(**dict(zip(keys, values, strict=True)))
