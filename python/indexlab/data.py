"""The data layer: a securities master plus a daily panel, validated once at the boundary.

A :class:`Dataset` holds

* ``securities``: one row per security (docs/conventions.md, data model: ``id``, ``name``,
  ``market``, ``currency``, ``listing_date``, ``delisting_date``, ``industry``,
  ``listing_type``, ``wvr``, ``connect_eligible``, ``ai_layer``, ``ai_score``; extra columns
  are kept),
* a daily panel stored wide, one ``(T, N)`` float64 array per field (``close``,
  ``total_return``, ``shares_outstanding``, ``free_float_factor``, ``turnover_value``,
  ``turnover_shares``), NaN where a name is not listed or did not trade,
* ``fx``: HKD per unit of each non-HKD currency, per date,
* ``benchmarks``: index levels (e.g. HSI, HSTECH) per date.

Everything downstream takes numpy arrays aligned on ``(dates, ids)``; :meth:`Dataset.until` gives
the point-in-time view at a date (nothing after it is visible, future delistings included).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab.errors import DataError, DataWarning

__all__ = [
    "AI_LAYERS",
    "CLASSIFICATION_FIELDS",
    "CURRENCIES",
    "INDUSTRIES",
    "LISTING_TYPES",
    "MARKETS",
    "PANEL_FIELDS",
    "SECURITY_COLUMNS",
    "Dataset",
    "load",
]

SECURITY_COLUMNS = (
    "id",
    "name",
    "market",
    "currency",
    "listing_date",
    "delisting_date",
    "industry",
    "listing_type",
    "wvr",
    "connect_eligible",
    "ai_layer",
    "ai_score",
)
PANEL_FIELDS = (
    "close",
    "total_return",
    "shares_outstanding",
    "free_float_factor",
    "turnover_value",
    "turnover_shares",
)
MARKETS = frozenset({"HK", "SH", "SZ"})
CURRENCIES = frozenset({"HKD", "CNY", "USD"})
AI_LAYERS = ("compute", "infrastructure", "cloud", "model", "application", "none")
LISTING_TYPES = frozenset({"primary", "secondary"})
#: Hang Seng Industry Classification System industries, in HSICS order.
INDUSTRIES = (
    "Energy",
    "Materials",
    "Industrials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Healthcare",
    "Telecommunications",
    "Utilities",
    "Financials",
    "Properties & Construction",
    "Information Technology",
    "Conglomerates",
)
_DATE_COLUMNS = ("listing_date", "delisting_date")
#: Classification fields that can change over time (stored with the date they hold from).
CLASSIFICATION_FIELDS = (
    "tech_theme",
    "ai_layer",
    "ai_score",
    "listing_type",
    "wvr",
    "hk_company",
    "connect_eligible",
)
_BOOL_COLUMNS = ("wvr", "connect_eligible")

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- validation helpers


def _to_pandas(frame: Any, what: str) -> pd.DataFrame:
    """Accept pandas or polars (anything with ``to_pandas``) without importing polars."""
    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    raise DataError(f"{what} must be a pandas or polars DataFrame, got {type(frame).__name__}")


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} is missing required column(s) {missing}; it has {list(frame.columns)}"
        )


def _to_days(values: Any, column: str, what: str) -> npt.NDArray[np.datetime64]:
    try:
        return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} column '{column}' has values that are not dates: {exc}") from None


def _day(d: Any) -> str:
    return str(np.asarray(d).astype("datetime64[D]"))


def _check_member(frame: pd.DataFrame, column: str, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    bad = ~frame[column].isin(allowed)
    if bad.any():
        row = frame.loc[bad].iloc[0]
        raise DataError(
            f"securities column '{column}': security {row['id']!r} has unknown value "
            f"{row[column]!r}; expected one of {sorted(allowed)}"
        )


#: Text a boolean column may hold, and what it means.
_BOOL_TEXT = {"True": True, "true": True, "1": True, "False": False, "false": False, "0": False}


def _as_bool(frame: pd.DataFrame, column: str, what: str, where: Any) -> pd.Series:
    """A boolean column: real booleans, 0/1 integers or the text in :data:`_BOOL_TEXT`.

    ``astype(bool)`` would read the text ``'False'`` (and NaN) as True; anything else is a
    :class:`DataError` naming the row (``where(row_position)``) and the value.
    """
    values = frame[column]
    if values.dtype == np.bool_:
        return values
    out = np.empty(len(values), dtype=bool)
    for k, v in enumerate(values.to_numpy(dtype=object)):
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, str) and v in _BOOL_TEXT:
            out[k] = _BOOL_TEXT[v]
        elif isinstance(v, (int, np.integer)) and v in (0, 1):
            out[k] = bool(v)
        else:
            raise DataError(
                f"{what} column '{column}': {where(k)} has {v!r}; expected True or False "
                f"(or the text {sorted(_BOOL_TEXT)})"
            )
    return pd.Series(out, index=values.index, name=column)


def _is_number(v: Any) -> bool:
    """A real number (not a boolean), or a missing value (None, NaN, pd.NA)."""
    if v is None or v is pd.NA:
        return True
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def _numeric_values(values: Any) -> tuple[FloatArray, int | None]:
    """``values`` as float64 (missing -> NaN) and the flat position of the first cell that is not
    a number (text, a boolean, an object), or ``None``. ``pd.to_numeric(errors="coerce")`` would
    turn such a cell into NaN, a missing value, without a word."""
    if isinstance(values, (pd.Series, pd.Index)):
        if values.dtype.kind in "iuf":
            return values.to_numpy(dtype=np.float64, na_value=np.nan), None
        arr = values.to_numpy(dtype=object)
    else:
        arr = np.asarray(values)
        if arr.dtype.kind in "iuf":
            return arr.astype(np.float64, copy=False), None
        arr = arr.astype(object)
    flat = arr.ravel()
    ok = np.fromiter((_is_number(v) for v in flat), dtype=bool, count=flat.size)
    if not ok.all():
        return np.full(arr.shape, np.nan), int(np.flatnonzero(~ok)[0])
    cleaned = np.array([np.nan if v is None or v is pd.NA else v for v in flat], dtype=np.float64)
    return cleaned.reshape(arr.shape), None


def _validate_securities(securities: pd.DataFrame) -> pd.DataFrame:
    _require_columns(securities, SECURITY_COLUMNS, "securities")
    sec = securities.reset_index(drop=True).copy()
    sec["id"] = sec["id"].astype(str)
    dup = sec["id"].duplicated()
    if dup.any():
        raise DataError(
            f"securities: duplicate id {sec.loc[dup, 'id'].iloc[0]!r}; each security needs "
            "exactly one row in the master"
        )
    for column in _DATE_COLUMNS:
        sec[column] = pd.to_datetime(sec[column]).astype("datetime64[s]")
    if sec["listing_date"].isna().any():
        bad = sec.loc[sec["listing_date"].isna(), "id"].iloc[0]
        raise DataError(f"securities: security {bad!r} has no listing_date")
    late = sec["delisting_date"].notna() & (sec["delisting_date"] < sec["listing_date"])
    if late.any():
        row = sec.loc[late].iloc[0]
        raise DataError(
            f"securities: security {row['id']!r} is delisted ({row['delisting_date'].date()}) "
            f"before it is listed ({row['listing_date'].date()})"
        )
    _check_member(sec, "market", MARKETS)
    _check_member(sec, "currency", CURRENCIES)
    _check_member(sec, "ai_layer", AI_LAYERS)
    _check_member(sec, "listing_type", LISTING_TYPES)
    _check_member(sec, "industry", INDUSTRIES)
    for column in (*_BOOL_COLUMNS, "tech_theme", "hk_company"):
        if column in sec.columns:
            sec[column] = _as_bool(
                sec, column, "securities", lambda k: f"security {sec['id'].iloc[k]!r}"
            )
    score = pd.to_numeric(sec["ai_score"], errors="coerce").to_numpy(dtype=np.float64)
    bad_score = ~((score >= 0.0) & (score <= 1.0))
    if bad_score.any():
        i = int(np.flatnonzero(bad_score)[0])
        raise DataError(
            f"securities column 'ai_score': security {sec['id'].iloc[i]!r} has "
            f"{sec['ai_score'].iloc[i]!r}; ai_score must be a number in [0, 1]"
        )
    sec["ai_score"] = score
    return sec


def _first_bad(mask: npt.NDArray[np.bool_]) -> tuple[int, int]:
    t, i = np.argwhere(mask)[0]
    return int(t), int(i)


def _validate_fields(
    sec: pd.DataFrame, dates: npt.NDArray[np.datetime64], fields: Mapping[str, FloatArray]
) -> None:
    ids = sec["id"].to_numpy()
    shape = (len(dates), len(ids))

    def where(t: int, i: int) -> str:
        return f"security {ids[i]!r} on {_day(dates[t])}"

    for name in PANEL_FIELDS:
        if fields[name].shape != shape:
            raise DataError(
                f"panel field '{name}' has shape {fields[name].shape}, expected "
                f"(dates, securities) = {shape}"
            )
    for name in PANEL_FIELDS:
        bad = np.isinf(fields[name])
        if bad.any():
            t, i = _first_bad(bad)
            raise DataError(
                f"panel column '{name}': {where(t, i)} is {fields[name][t, i]}; values must be "
                "finite numbers (NaN marks a missing value)"
            )
    positive = {
        "close": "prices must be > 0",
        "total_return": "total-return values must be > 0",
        "shares_outstanding": "share counts must be > 0",
    }
    for name, rule in positive.items():
        bad = fields[name] <= 0.0
        if bad.any():
            t, i = _first_bad(bad)
            raise DataError(f"panel column '{name}': {where(t, i)} is {fields[name][t, i]}; {rule}")
    ff = fields["free_float_factor"]
    bad = (ff <= 0.0) | (ff > 1.0)
    if bad.any():
        t, i = _first_bad(bad)
        raise DataError(
            f"panel column 'free_float_factor': {where(t, i)} is {ff[t, i]}; "
            "the free-float factor must be in (0, 1]"
        )
    for name in ("turnover_value", "turnover_shares"):
        bad = fields[name] < 0.0
        if bad.any():
            t, i = _first_bad(bad)
            raise DataError(f"panel column '{name}': {where(t, i)} is negative")
    listed = _listed_mask(sec, dates)
    present = np.zeros(shape, dtype=bool)
    for name in PANEL_FIELDS:
        present |= ~np.isnan(fields[name])
    outside = present & ~listed
    if outside.any():
        t, i = _first_bad(outside)
        row = sec.iloc[i]
        if dates[t] < np.datetime64(row["listing_date"], "D"):
            reason = f"before its listing date {row['listing_date'].date()}"
        else:
            reason = f"after its delisting date {row['delisting_date'].date()}"
        raise DataError(f"panel has data for {where(t, i)}, {reason}")


def _listed_mask(sec: pd.DataFrame, dates: npt.NDArray[np.datetime64]) -> npt.NDArray[np.bool_]:
    """(T, N): listed on that date (on or after listing, on or before delisting)."""
    listing = sec["listing_date"].to_numpy().astype("datetime64[D]")
    delisting = sec["delisting_date"].to_numpy().astype("datetime64[D]")
    end = np.where(np.isnat(delisting), np.datetime64("9999-12-31", "D"), delisting)
    return (dates[:, None] >= listing[None, :]) & (dates[:, None] <= end[None, :])


def _validate_dates(dates: npt.NDArray[np.datetime64], what: str) -> None:
    if len(dates) == 0:
        raise DataError(f"{what} has no dates")
    step = np.diff(dates)
    bad = step <= np.timedelta64(0, "D")
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        kind = "duplicate" if step[t] == np.timedelta64(0, "D") else "unsorted"
        raise DataError(
            f"{what} dates must be strictly increasing: {kind} date {_day(dates[t + 1])} "
            f"at position {t + 1} follows {_day(dates[t])}"
        )


def _validate_classification(frame: Any, sec: pd.DataFrame) -> pd.DataFrame | None:
    """Dated classification rows: known ids, a date each, known fields, valid values."""
    if frame is None:
        return None
    hist = _dated_rows(frame, sec, "valid_from", "classification")
    hist["valid_from"] = hist["valid_from"].astype("datetime64[s]")
    fields = [c for c in CLASSIFICATION_FIELDS if c in hist.columns]
    if not fields:
        raise DataError(
            f"classification has none of the dated fields {list(CLASSIFICATION_FIELDS)}"
        )
    if "ai_layer" in fields:
        _check_member(hist, "ai_layer", AI_LAYERS)
    if "listing_type" in fields:
        _check_member(hist, "listing_type", LISTING_TYPES)
    for column in ("tech_theme", "wvr", "hk_company", "connect_eligible"):
        if column in fields:
            hist[column] = _as_bool(
                hist,
                column,
                "classification",
                lambda k: f"security {hist['id'].iloc[k]!r} from "
                f"{hist['valid_from'].iloc[k].date()}",
            )
    if "ai_score" in fields:
        score = pd.to_numeric(hist["ai_score"], errors="coerce").to_numpy(dtype=np.float64)
        if not ((score >= 0.0) & (score <= 1.0)).all():
            i = int(np.flatnonzero(~((score >= 0.0) & (score <= 1.0)))[0])
            raise DataError(
                f"classification column 'ai_score': security {hist['id'].iloc[i]!r} has "
                f"{hist['ai_score'].iloc[i]!r} from {hist['valid_from'].iloc[i].date()}; "
                "ai_score must be a number in [0, 1]"
            )
        hist["ai_score"] = score
    return _one_row_per_day(hist, "valid_from", "classification")


def _dated_rows(frame: Any, sec: pd.DataFrame, date_col: str, what: str) -> pd.DataFrame:
    """A dated per-security table (``id``, ``date_col``, fields): known ids, a date each."""
    table = _to_pandas(frame, what).reset_index(drop=True).copy()
    _require_columns(table, ("id", date_col), what)
    table["id"] = table["id"].astype(str)
    unknown = ~table["id"].isin(sec["id"])
    if unknown.any():
        raise DataError(
            f"{what} has id {table.loc[unknown, 'id'].iloc[0]!r}, which is not in the "
            "securities master"
        )
    table[date_col] = pd.to_datetime(table[date_col], errors="coerce", format="mixed")
    if table[date_col].isna().any():
        bad = table.loc[table[date_col].isna(), "id"].iloc[0]
        raise DataError(f"{what}: a row of security {bad!r} has no readable {date_col} date")
    return table


def _one_row_per_day(table: pd.DataFrame, date_col: str, what: str) -> pd.DataFrame:
    """``table`` sorted by id and date, or a :class:`DataError` naming a repeated pair."""
    dup = table.duplicated(["id", date_col])
    if dup.any():
        row = table.loc[dup].iloc[0]
        raise DataError(f"{what}: two rows for security {row['id']!r} from {row[date_col].date()}")
    return table.sort_values(["id", date_col]).reset_index(drop=True)


_FUND_KEYS = ("id", "known_from")


def _validate_fundamentals(frame: Any, ds: Dataset) -> pd.DataFrame:
    """Dated fundamentals: known ids, a date each, numeric fields, one row per id and date."""
    table = _dated_rows(frame, ds.securities, "known_from", "fundamentals")
    names = [c for c in table.columns if c not in _FUND_KEYS]
    if not names:
        raise DataError("fundamentals has no field column besides id and known_from")
    for name in names:
        values = pd.to_numeric(table[name], errors="coerce")
        bad_rows = values.isna() & table[name].notna() | np.isinf(values.fillna(0.0))
        if bad_rows.any():
            k = int(np.flatnonzero(bad_rows.to_numpy())[0])
            raise DataError(
                f"fundamentals column {name!r}: security {table['id'].iloc[k]!r} from "
                f"{table['known_from'].iloc[k].date()} is {table[name].iloc[k]!r}; expected a "
                "finite number (NaN for unknown)"
            )
        table[name] = values.astype(np.float64)
    return _one_row_per_day(table, "known_from", "fundamentals")


def _wide_series(
    frame: pd.DataFrame | None,
    key: str,
    value: str,
    what: str,
    dates: npt.NDArray[np.datetime64],
    carry_past_end: bool,
) -> pd.DataFrame:
    """Long (date, key, value) -> wide (dates x keys), forward-filled from the past only.

    FX rates carry forward past their last fix (the last known rate); index levels do not.
    """
    if frame is None:
        return pd.DataFrame(index=pd.DatetimeIndex(dates.astype("datetime64[ns]"), name="date"))
    frame = _to_pandas(frame, what)
    _require_columns(frame, ("date", key, value), what)
    frame = frame.assign(date=_to_days(frame["date"], "date", what).astype("datetime64[ns]"))
    dup = frame.duplicated(["date", key])
    if dup.any():
        row = frame.loc[dup].iloc[0]
        raise DataError(f"{what}: duplicate ({row['date'].date()}, {row[key]!r}) rows")
    numbers, bad = _numeric_values(frame[value])
    vals = pd.Series(numbers, index=frame.index)
    good = np.isfinite(numbers) & (numbers > 0)
    if bad is not None or not good.all():
        row = frame.iloc[bad] if bad is not None else frame.loc[~good].iloc[0]
        raise DataError(
            f"{what} column '{value}': {row[key]!r} on {row['date'].date()} is "
            f"{row[value]!r}; it must be a finite number > 0"
        )
    wide = frame.assign(**{value: vals}).pivot(index="date", columns=key, values=value)
    wide = wide.sort_index()
    target = pd.DatetimeIndex(dates.astype("datetime64[ns]"), name="date")
    aligned = wide.reindex(wide.index.union(target)).ffill().reindex(target)
    if not carry_past_end:
        # An index level after the series' last observation is unknown, not unchanged.
        for column in aligned.columns:
            aligned.loc[aligned.index > wide[column].last_valid_index(), column] = np.nan
    aligned.columns.name = None
    return aligned


# --------------------------------------------------------------------------------- the dataset


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated securities master and daily panel, aligned on ``(dates, ids)``.

    Build one with :meth:`from_frames` (long panel), :meth:`from_arrays` (wide arrays) or
    :func:`load` (a folder of Parquet or CSV files). Instances are immutable.

    Examples
    --------
    >>> import indexlab
    >>> ds = indexlab.datasets.synthetic(n_securities=20, years=1, seed=1)
    >>> ds.field("close").shape == (len(ds.dates), len(ds.ids))
    True
    """

    securities: pd.DataFrame
    dates: npt.NDArray[np.datetime64]
    fields: Mapping[str, FloatArray]
    fx: pd.DataFrame = field(repr=False)
    benchmarks: pd.DataFrame = field(repr=False)
    #: Point-in-time classification: ``id``, ``valid_from`` and the fields that changed (see
    #: :data:`CLASSIFICATION_FIELDS`); ``None`` when the master is static.
    classification: pd.DataFrame | None = field(default=None, repr=False)
    #: Last date through which the universe is complete (later dates cover a subset of names).
    universe_complete_until: np.datetime64 | None = field(default=None)
    #: Point-in-time fundamentals (e.g. ``revenue_growth``): ``id``, ``known_from`` (the day the
    #: figure became public) and one numeric column per field; ``None`` when there are none.
    #: Set with :meth:`with_fundamentals`; read with :meth:`fundamental`.
    fundamentals: pd.DataFrame | None = field(default=None, repr=False)

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_arrays(
        cls,
        securities: Any,
        dates: Any,
        fields: Mapping[str, Any],
        fx: Any = None,
        benchmarks: Any = None,
        classification: Any = None,
        universe_complete_until: Any = None,
    ) -> Dataset:
        """Build from wide ``(T, N)`` arrays whose columns follow ``securities.id``.

        ``fx`` and ``benchmarks`` are long frames: (``date``, ``currency``, ``to_hkd``) and
        (``date``, ``index``, ``level``). ``classification`` (optional) holds dated values of
        classification fields (``id``, ``valid_from``, any of :data:`CLASSIFICATION_FIELDS`);
        ``universe_complete_until`` (optional) is the last date through which every security
        of the universe has data.
        """
        sec = _validate_securities(_to_pandas(securities, "securities"))
        day_index = _to_days(dates, "date", "panel")
        _validate_dates(day_index, "panel")
        missing = [f for f in PANEL_FIELDS if f not in fields]
        if missing:
            raise DataError(f"panel is missing required field(s) {missing}")
        arrays: dict[str, FloatArray] = {}
        ids = sec["id"].to_numpy()
        for name in PANEL_FIELDS:
            values, bad = _numeric_values(fields[name])
            if bad is not None:
                t, i = np.unravel_index(bad, values.shape) if values.ndim == 2 else (bad, 0)
                cell = np.asarray(fields[name], dtype=object).ravel()[bad]
                place = (
                    f"security {ids[i]!r} on {_day(day_index[t])}"
                    if values.ndim == 2 and i < len(ids) and t < len(day_index)
                    else f"position {bad}"
                )
                raise DataError(
                    f"panel column '{name}': {place} is {cell!r}; expected a number "
                    "(NaN for a missing value)"
                )
            # A private copy: freezing it must not freeze the caller's own array.
            arr = np.array(values, dtype=np.float64, order="C", copy=True)
            arr.setflags(write=False)
            arrays[name] = arr
        _validate_fields(sec, day_index, arrays)
        fx_wide = _wide_series(fx, "currency", "to_hkd", "fx", day_index, carry_past_end=True)
        _check_fx_covers(sec, day_index, arrays, fx_wide)
        bench = _wide_series(
            benchmarks, "index", "level", "benchmarks", day_index, carry_past_end=False
        )
        history = _validate_classification(classification, sec)
        complete = None
        if universe_complete_until is not None:
            complete = np.datetime64(pd.Timestamp(universe_complete_until).date(), "D")
        return cls(sec, day_index, arrays, fx_wide, bench, history, complete)

    @classmethod
    def from_frames(
        cls,
        securities: Any,
        panel: Any,
        fx: Any = None,
        benchmarks: Any = None,
        classification: Any = None,
        universe_complete_until: Any = None,
    ) -> Dataset:
        """Build from a securities master and a long panel (``date``, ``id``, fields...).

        Accepts pandas or polars frames. The panel must be sorted by date.

        Examples
        --------
        >>> import pandas as pd, indexlab
        >>> sec = pd.DataFrame({"id": ["0700.HK"], "name": ["Tencent"], "market": ["HK"],
        ...     "currency": ["HKD"], "listing_date": ["2004-06-16"], "delisting_date": [None],
        ...     "industry": ["Information Technology"], "listing_type": ["primary"],
        ...     "wvr": [False], "connect_eligible": [True], "ai_layer": ["application"],
        ...     "ai_score": [0.3]})
        >>> panel = pd.DataFrame({"date": ["2025-01-02", "2025-01-03"], "id": "0700.HK",
        ...     "close": [410.0, 412.0], "total_return": [410.0, 412.0],
        ...     "shares_outstanding": 9.2e9, "free_float_factor": 0.7,
        ...     "turnover_value": 8e9, "turnover_shares": 2e7})
        >>> indexlab.Dataset.from_frames(sec, panel).field("close").ravel().tolist()
        [410.0, 412.0]
        """
        sec = _validate_securities(_to_pandas(securities, "securities"))
        pan = _to_pandas(panel, "panel")
        _require_columns(pan, ("date", "id", *PANEL_FIELDS), "panel")
        days = _to_days(pan["date"], "date", "panel")
        if len(days) == 0:
            raise DataError("panel has no rows")
        back = np.flatnonzero(np.diff(days) < np.timedelta64(0, "D"))
        if back.size:
            r = int(back[0]) + 1
            raise DataError(
                f"panel dates are not sorted: row {r} ({_day(days[r])}) comes after row "
                f"{r - 1} ({_day(days[r - 1])}); sort the panel by date first"
            )
        ids = pan["id"].astype(str).to_numpy()
        position = pd.Index(sec["id"]).get_indexer(ids)
        if (position < 0).any():
            k = int(np.flatnonzero(position < 0)[0])
            raise DataError(
                f"panel has id {ids[k]!r} (on {_day(days[k])}) that is not in the securities master"
            )
        dates, row = np.unique(days, return_inverse=True)
        key = row.astype(np.int64) * len(sec) + position
        dup = np.flatnonzero(pd.Series(key).duplicated().to_numpy())
        if dup.size:
            k = int(dup[0])
            raise DataError(
                f"panel has duplicate rows for ({_day(days[k])}, {ids[k]!r}); each (date, id) "
                "must appear once"
            )
        fields: dict[str, FloatArray] = {}
        for name in PANEL_FIELDS:
            values, bad = _numeric_values(pan[name])
            if bad is not None:
                raise DataError(
                    f"panel column '{name}': security {ids[bad]!r} on {_day(days[bad])} is "
                    f"{pan[name].iloc[bad]!r}; expected a number (NaN for a missing value)"
                )
            wide = np.full((len(dates), len(sec)), np.nan)
            wide[row, position] = values
            fields[name] = wide
        return cls.from_arrays(
            sec,
            dates,
            fields,
            fx=fx,
            benchmarks=benchmarks,
            classification=classification,
            universe_complete_until=universe_complete_until,
        )

    # ---------------------------------------------------------------- accessors

    @property
    def ids(self) -> npt.NDArray[np.str_]:
        """Security ids, in column order of every panel array."""
        return self.securities["id"].to_numpy(dtype=str)

    def field(self, name: str) -> FloatArray:
        """A panel field as a read-only ``(T, N)`` array (NaN = not listed or not traded)."""
        try:
            return self.fields[name]
        except KeyError:
            raise DataError(
                f"unknown panel field {name!r}; fields are {list(PANEL_FIELDS)}"
            ) from None

    def frame(self, name: str) -> pd.DataFrame:
        """A panel field as a DataFrame (dates x ids)."""
        return pd.DataFrame(
            self.field(name),
            index=pd.DatetimeIndex(self.dates.astype("datetime64[ns]"), name="date"),
            columns=pd.Index(self.ids, name="id"),
        )

    def fx_to_hkd(self) -> FloatArray:
        """``(T, N)`` HKD per unit of each security's currency (1 for HKD names)."""
        out = np.ones((len(self.dates), len(self.ids)))
        for currency, cols in self.securities.groupby("currency").indices.items():
            if currency != "HKD":
                out[:, cols] = self.fx[currency].to_numpy(dtype=np.float64)[:, None]
        return out

    def market_cap(self, free_float: bool = True, hkd: bool = True) -> FloatArray:
        """``(T, N)`` market cap: close x shares (x free-float factor) (x FX to HKD)."""
        cap = self.field("close") * self.field("shares_outstanding")
        if free_float:
            cap = cap * self.field("free_float_factor")
        if hkd:
            cap = cap * self.fx_to_hkd()
        return cap

    def date_index(self, date: Any) -> int:
        """Position of the last panel date on or before ``date`` (point in time)."""
        day = np.datetime64(pd.Timestamp(date).date(), "D")
        pos = int(np.searchsorted(self.dates, day, side="right")) - 1
        if pos < 0:
            raise DataError(f"{_day(day)} is before the first panel date {_day(self.dates[0])}")
        return pos

    def warn_past_end(self, date: Any, what: str) -> None:
        """Warn (:class:`DataWarning`) when ``date`` lies after the last panel date."""
        day = np.datetime64(pd.Timestamp(date).date(), "D")
        if day > self.dates[-1]:
            warnings.warn(
                f"{what}: {_day(day)} is after the data's last date {_day(self.dates[-1])}; "
                f"the result stops at {_day(self.dates[-1])}",
                DataWarning,
                stacklevel=3,
            )

    def securities_at(self, date: Any) -> pd.DataFrame:
        """The securities master as known at ``date``: each dated classification field
        (:data:`CLASSIFICATION_FIELDS`) takes its value from the last row on or before ``date``.

        A name whose first dated row starts later (it was not listed yet) keeps that first row:
        it describes the business at listing, not a later judgement.

        Examples
        --------
        >>> import indexlab
        >>> ds = indexlab.datasets.hk_tech()
        >>> float(ds.securities_at("2023-01-02").set_index("id").loc["9888.HK", "ai_score"])
        0.35
        """
        sec = self.securities.copy()
        hist = self.classification
        if hist is None or hist.empty:
            return sec
        day = pd.Timestamp(pd.Timestamp(date).date())
        known = hist[hist["valid_from"] <= day]
        first = hist.groupby("id", sort=False).head(1)
        rows = pd.concat([first[~first["id"].isin(known["id"])], known])
        latest = rows.groupby("id", sort=False).tail(1).set_index("id")
        for column in CLASSIFICATION_FIELDS:
            if column in latest.columns:
                mapped = sec["id"].map(latest[column])
                sec[column] = mapped.where(mapped.notna(), sec.get(column))
                if column in _BOOL_COLUMNS or column in ("tech_theme", "hk_company"):
                    sec[column] = sec[column].astype(bool)
                elif column == "ai_score":
                    sec[column] = sec[column].astype(np.float64)
        return sec

    def coverage(self) -> pd.DataFrame:
        """Each security's first and last observation (a close), listing and delisting dates,
        and how its series ends: ``delisted``, ``to data end`` or ``coverage gap``.

        A series that stops before the data's last date with no recorded delisting is a gap in
        the data, not a suspension: reviews more than 10 trading days past its last observation
        treat the name as ineligible, and a backtest holding it past then raises
        :class:`DataError` unless it opts into carrying the last price.
        """
        close = self.field("close")
        seen = ~np.isnan(close)
        has = seen.any(axis=0)
        first = np.where(has, np.argmax(seen, axis=0), -1)
        last = np.where(has, len(self.dates) - 1 - np.argmax(seen[::-1], axis=0), -1)
        out = pd.DataFrame({"id": self.ids})
        nat = np.datetime64("NaT", "D")
        out["first_observation"] = np.where(has, self.dates[np.maximum(first, 0)], nat)
        out["last_observation"] = np.where(has, self.dates[np.maximum(last, 0)], nat)
        out["listing_date"] = self.securities["listing_date"].to_numpy()
        out["delisting_date"] = self.securities["delisting_date"].to_numpy()
        delisted = self.securities["delisting_date"].notna().to_numpy()
        ends = np.where(
            delisted,
            "delisted",
            np.where(last == len(self.dates) - 1, "to data end", "coverage gap"),
        )
        out["ends"] = ends
        out["observations"] = seen.sum(axis=0)
        return out

    def with_fundamentals(self, frame: Any) -> Dataset:
        """A copy of the dataset with point-in-time fundamentals.

        ``frame`` (pandas or polars) has ``id``, ``known_from`` (the date the figure became
        public: a results announcement, not the period end) and one numeric column per field,
        e.g. ``revenue_growth`` (trailing revenue growth as a fraction, 0.14 = +14%). A value
        holds from ``known_from`` until the next row of the same id. Rules read a field through
        a selection sleeve keyed ``"column:<field>"``.

        Examples
        --------
        >>> import pandas as pd, indexlab
        >>> ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=1)
        >>> f = pd.DataFrame({"id": [ds.ids[0]], "known_from": [ds.dates[10]],
        ...                   "revenue_growth": [0.25]})
        >>> g = ds.with_fundamentals(f)
        >>> g.fundamental("revenue_growth", [9, 10])[:, 0].tolist()
        [nan, 0.25]
        """
        return replace(self, fundamentals=_validate_fundamentals(frame, self))

    def fundamental(self, name: str, days: Any) -> FloatArray:
        """``(len(days), N)`` values of fundamental ``name`` as known on each day index of
        ``days`` (NaN before a name's first figure, or when it has none).

        Raises :class:`DataError` when the dataset holds no such fundamental.
        """
        table = self.fundamentals
        if table is None or name not in table.columns or name in ("id", "known_from"):
            have = [] if table is None else [c for c in table.columns if c not in _FUND_KEYS]
            raise DataError(
                f"the dataset has no fundamental {name!r} (fundamentals: {have}); add it with "
                "Dataset.with_fundamentals"
            )
        idx = np.asarray(days, dtype=np.int64)
        out = np.full((len(idx), len(self.ids)), np.nan)
        rows = table.dropna(subset=[name])
        if rows.empty or not len(idx):
            return out
        position = pd.Index(self.ids).get_indexer(rows["id"])
        known = rows["known_from"].to_numpy().astype("datetime64[D]")
        values = rows[name].to_numpy(dtype=np.float64)
        order = np.lexsort((known, position))
        for k, t in enumerate(idx):
            day = self.dates[t]
            seen = order[known[order] <= day]
            # The last row per id (rows are sorted by id, then date).
            last = np.full(len(self.ids), -1)
            last[position[seen]] = seen
            found = last >= 0
            out[k, found] = values[last[found]]
        return out

    def until(self, date: Any) -> Dataset:
        """The point-in-time view at ``date``: nothing after it is visible.

        Securities listed later are dropped and delisting dates after ``date`` are hidden
        (a future delisting is look-ahead), as are panel rows, FX and benchmark levels after it.
        Classification fields take the values known at ``date`` (:meth:`securities_at`). A date
        after the data's end warns (:class:`DataWarning`) and gives the whole dataset.
        """
        self.warn_past_end(date, "until")
        return self._view_at(date)

    def _view_at(self, date: Any) -> Dataset:
        """:meth:`until` without the warning (callers that already warned)."""
        t = self.date_index(date)
        day = self.dates[t]
        listing = self.securities["listing_date"].to_numpy().astype("datetime64[D]")
        keep = np.flatnonzero(listing <= day)
        sec = self.securities_at(day).iloc[keep].reset_index(drop=True).copy()
        future = sec["delisting_date"].to_numpy().astype("datetime64[D]") > day
        sec.loc[future, "delisting_date"] = pd.NaT
        if "data_end" in sec.columns:
            sec["data_end"] = pd.to_datetime(sec["data_end"]).clip(upper=pd.Timestamp(day))
        fields = {k: v[: t + 1][:, keep] for k, v in self.fields.items()}
        hist = self.classification
        if hist is not None:
            stamp = pd.Timestamp(str(day))
            hist = hist[(hist["valid_from"] <= stamp) & hist["id"].isin(sec["id"])]
            hist = hist.reset_index(drop=True)
        fund = self.fundamentals
        if fund is not None:
            stamp = pd.Timestamp(str(day))
            fund = fund[(fund["known_from"] <= stamp) & fund["id"].isin(sec["id"])]
            fund = fund.reset_index(drop=True)
        return Dataset(
            sec,
            self.dates[: t + 1],
            fields,
            self.fx.iloc[: t + 1],
            self.benchmarks.iloc[: t + 1],
            hist,
            self.universe_complete_until,
            fund,
        )

    def snapshot(self, date: Any = None) -> pd.DataFrame:
        """One row per security listed at ``date`` (default: the last date), point in time.

        Columns: the master fields plus ``close`` (last traded close on or before the date),
        ``free_float_mcap_hkd``, ``last_trade`` and ``days_listed``. A date after the data's end
        warns (:class:`DataWarning`).
        """
        if date is not None:
            self.warn_past_end(date, "snapshot")
        view = self if date is None else self._view_at(date)
        t = len(view.dates) - 1
        close = view.field("close")
        traded = ~np.isnan(close)
        last = np.where(traded.any(axis=0), t - np.argmax(traded[::-1], axis=0), -1)
        rows = np.arange(close.shape[1])
        ok = last >= 0
        snap = view.securities.copy()
        safe_last = np.maximum(last, 0)
        snap["close"] = np.where(ok, close[safe_last, rows], np.nan)
        snap["free_float_mcap_hkd"] = np.where(ok, view.market_cap()[safe_last, rows], np.nan)
        snap["last_trade"] = np.where(ok, view.dates[safe_last], np.datetime64("NaT"))
        listing = snap["listing_date"].to_numpy().astype("datetime64[D]")
        snap["days_listed"] = (view.dates[t] - listing).astype(np.int64)
        delisted = snap["delisting_date"].notna()
        return snap.loc[~delisted].reset_index(drop=True)

    def panel(self) -> pd.DataFrame:
        """The panel in long format (``date``, ``id``, fields), rows where any field is set."""
        t, n = len(self.dates), len(self.ids)
        present = np.zeros((t, n), dtype=bool)
        for name in PANEL_FIELDS:
            present |= ~np.isnan(self.fields[name])
        rows, cols = np.nonzero(present)
        out = pd.DataFrame(
            {"date": self.dates[rows].astype("datetime64[ns]"), "id": self.ids[cols]}
        )
        for name in PANEL_FIELDS:
            out[name] = self.fields[name][rows, cols]
        return out

    def __repr__(self) -> str:
        first, last = _day(self.dates[0]), _day(self.dates[-1])
        return f"Dataset({len(self.ids)} securities, {len(self.dates)} dates {first}..{last})"

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the dataset to a folder of Parquet files that :func:`load` reads back.

        An existing folder that is not empty is refused (:class:`DataError`) unless
        ``overwrite=True``, so a typo cannot replace another dataset.
        """
        out = Path(path)
        if out.exists() and not out.is_dir():
            raise DataError(f"cannot save the dataset to {out}: it exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise DataError(
                f"{out} already exists and is not empty; pass overwrite=True to replace "
                "the dataset files in it"
            )
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create the folder {out}: {exc}") from None
        self.securities.to_parquet(out / "securities.parquet", index=False)
        self.panel().to_parquet(out / "panel.parquet", index=False)
        _long(self.fx, "currency", "to_hkd").to_parquet(out / "fx.parquet", index=False)
        _long(self.benchmarks, "index", "level").to_parquet(out / "benchmarks.parquet", index=False)
        if self.classification is not None:
            self.classification.to_parquet(out / "classification.parquet", index=False)
        if self.fundamentals is not None:
            self.fundamentals.to_parquet(out / "fundamentals.parquet", index=False)
        if self.universe_complete_until is not None:
            meta = {"universe_complete_until": _day(self.universe_complete_until)}
            (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        return out


def _long(wide: pd.DataFrame, key: str, value: str) -> pd.DataFrame:
    if wide.shape[1] == 0:
        return pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), key: [], value: []})
    out = wide.rename_axis(index="date", columns=key).stack().rename(value).reset_index()
    return out.dropna(subset=[value])


def _check_fx_covers(
    sec: pd.DataFrame,
    dates: npt.NDArray[np.datetime64],
    fields: Mapping[str, FloatArray],
    fx: pd.DataFrame,
) -> None:
    """Every non-HKD name with a price needs an FX rate known on that date."""
    for currency, cols in sec.groupby("currency").indices.items():
        if currency == "HKD":
            continue
        priced = ~np.isnan(fields["close"][:, cols]).all(axis=1)
        if currency not in fx.columns:
            raise DataError(
                f"fx has no {currency}->HKD rate, needed by security {sec['id'].iloc[cols[0]]!r}"
            )
        rate = fx[currency].to_numpy(dtype=np.float64)
        gap = priced & np.isnan(rate)
        if gap.any():
            t = int(np.flatnonzero(gap)[0])
            raise DataError(
                f"fx has no {currency}->HKD rate on or before {_day(dates[t])}, when "
                f"{currency} securities have prices"
            )


#: Columns that hold identifiers: read from CSV as text, so '0700' and '000001' keep their
#: leading zeros.
_ID_COLUMNS = {"id": str, "index": str, "currency": str}


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=_ID_COLUMNS)


def _read_table(folder: Path, stem: str, required: bool) -> pd.DataFrame | None:
    for suffix, reader in ((".parquet", pd.read_parquet), (".csv", _read_csv)):
        path = folder / f"{stem}{suffix}"
        if path.exists():
            try:
                return reader(path)
            except Exception as exc:  # the parsers' own errors (Arrow, CSV, OS) vary
                raise DataError(f"{path} is not a readable {suffix[1:]} table: {exc}") from None
    if required:
        raise DataError(f"{folder} has no {stem}.parquet or {stem}.csv")
    return None


def load(path: str | Path) -> Dataset:
    """Load a dataset from a folder of Parquet or CSV files.

    The folder holds ``securities``, ``panel`` and optionally ``fx``, ``benchmarks``,
    ``classification`` and ``fundamentals``, each as ``.parquet`` or ``.csv``, and
    ``meta.json`` (what :meth:`Dataset.save` writes).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    securities = _read_table(folder, "securities", required=True)
    panel = _read_table(folder, "panel", required=True)
    fx = _read_table(folder, "fx", required=False)
    benchmarks = _read_table(folder, "benchmarks", required=False)
    classification = _read_table(folder, "classification", required=False)
    fundamentals = _read_table(folder, "fundamentals", required=False)
    complete = None
    meta_path = folder / "meta.json"
    if meta_path.exists():
        try:
            complete = json.loads(meta_path.read_text()).get("universe_complete_until")
        except (OSError, ValueError) as exc:
            raise DataError(f"{meta_path} is not readable JSON: {exc}") from None
    ds = Dataset.from_frames(
        securities,
        panel,
        fx=fx,
        benchmarks=benchmarks,
        classification=classification,
        universe_complete_until=complete,
    )
    return ds if fundamentals is None else ds.with_fundamentals(fundamentals)
