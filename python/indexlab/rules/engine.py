"""``build_index``: run a rule set over a dataset, review by review, in the Rust core.

Python prepares plain arrays (market caps in HKD, monthly velocity, listing days, universe
masks, the review calendar); :func:`indexlab._core.run_reviews` runs every review in order,
point in time, with the previous constituents feeding the buffer rule.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab import _core
from indexlab.data import PANEL_FIELDS, Dataset
from indexlab.errors import DataError, DataWarning
from indexlab.market import Market, carry_inside
from indexlab.rules.model import IndexRules, Sleeve

__all__ = ["IndexHistory", "PreparedData", "build_index", "review_calendar"]

FloatArray = npt.NDArray[np.float64]
_NONE = np.iinfo(np.int64).max
STATUS = {
    1: "out_of_universe",
    2: "not_listed",
    3: "suspended",
    4: "seasoning",
    5: "velocity",
    6: "min_ff_mcap",
    7: "min_turnover",
    8: "no_rank_key",
    9: "not_selected",
    10: "industry_limit",
    11: "quota_limit",
    12: "selected",
    13: "no_data",
}
#: A series that ends without a recorded delisting is a coverage gap: the name is ineligible at
#: reviews whose cut-off is more than this many trading days past its last observation
#: (docs/conventions.md, "Coverage, suspension and delisting").
COVERAGE_GAP_DAYS = 10
REASONS = ("rank", "buffer", "fast_entry", "quota")
EVENTS = ("review", "fast_entry", "delisting")


class PreparedData:
    """Per-dataset arrays shared by every rule set (computed once, lazily, then cached).

    :func:`build_index` caches one per dataset; build it yourself to run many variants.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        ds = dataset
        self.n_days, self.n_sec = len(ds.dates), len(ds.ids)
        self.ids: list[str] = [str(x) for x in ds.ids]
        self.day_labels: list[str] = [str(d) for d in ds.dates]
        fx = np.ascontiguousarray(ds.fx.to_numpy(dtype=np.float64))
        columns = {str(c): k for k, c in enumerate(ds.fx.columns)}
        currency = np.array(
            [-1 if c == "HKD" else columns.get(str(c), -2) for c in ds.securities["currency"]],
            dtype=np.int64,
        )
        ff_mcap, mcap, first_idx = _core.market_arrays(
            ds.field("close").ravel(),
            ds.field("shares_outstanding").ravel(),
            ds.field("free_float_factor").ravel(),
            fx.ravel(),
            fx.shape[1],
            currency,
        )
        self.ff_mcap = ff_mcap.reshape(self.n_days, self.n_sec)
        self.mcap = mcap.reshape(self.n_days, self.n_sec)
        self.first_idx = first_idx
        self._last_trade: dict[tuple[int, ...], npt.NDArray[np.int64]] = {}
        sec = ds.securities
        self.listing_day = sec["listing_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
        delist = sec["delisting_date"].to_numpy().astype("datetime64[D]")
        pos = np.searchsorted(ds.dates, delist, side="right") - 1
        self.delisting_idx = np.where(np.isnat(delist), _NONE, pos).astype(np.int64)
        months = ds.dates.astype("datetime64[M]").astype(np.int64)
        self.month = (months - months[0]).astype(np.int64)
        self.industry_codes, self.industries = pd.factorize(sec["industry"])
        self._velocity: dict[str, tuple[int, FloatArray]] = {}
        self._cum: dict[str, tuple[FloatArray, FloatArray]] = {}
        self._classified: dict[tuple[int, ...], pd.DataFrame] = {}
        self._entry: pd.DataFrame | None = None
        seen = ~np.isnan(ds.field("close"))
        has = seen.any(axis=0)
        #: Last day index with a close per name (-1 if none).
        self.last_obs = np.where(has, self.n_days - 1 - np.argmax(seen[::-1], axis=0), -1)

    def no_data(self, cut: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """``(R x N)``: the name's series ended (no recorded delisting) more than
        :data:`COVERAGE_GAP_DAYS` trading days before each cut-off."""
        ended = (cut[:, None] - self.last_obs[None, :]) > COVERAGE_GAP_DAYS
        started = self.first_idx[None, :] <= cut[:, None]
        return ended & started & (self.delisting_idx == _NONE)[None, :]

    def classified(self, days: npt.NDArray[np.int64]) -> pd.DataFrame:
        """The master as known at each day index in ``days``: ``len(days) x N`` rows (day-major),
        each classification field from the last dated row on or before that day."""
        key = tuple(int(x) for x in days)
        if key not in self._classified:
            n = self.n_sec
            positions = np.tile(np.arange(n), len(days))
            on = np.repeat(self.dataset.dates[days], n)
            self._classified[key] = _classified_rows(self.dataset, positions, on)
        return self._classified[key]

    def classified_on_entry(self) -> pd.DataFrame:
        """The master as known on each name's first trading day (what fast entry sees)."""
        if self._entry is None:
            first = np.clip(self.first_idx, 0, self.n_days - 1)
            positions = np.arange(self.n_sec)
            self._entry = _classified_rows(self.dataset, positions, self.dataset.dates[first])
        return self._entry

    def velocity(self, method: str) -> tuple[int, FloatArray]:
        """``(months, (months x N) velocity)`` for a method ('median' or 'sum')."""
        if method not in self._velocity:
            ds = self.dataset
            self._velocity[method] = _core.monthly_velocity(
                ds.field("turnover_shares").ravel(),
                ds.field("shares_outstanding").ravel(),
                ds.field("free_float_factor").ravel(),
                self.month,
                self.n_sec,
                method,
            )
        return self._velocity[method]

    def last_trade(self, at: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``(R x N)`` last day with a close on or before each day in ``at`` (-1 if none)."""
        key = tuple(int(x) for x in at)
        if key not in self._last_trade:
            flat = _core.last_trade_at(self.dataset.field("close").ravel(), self.n_sec, at)
            self._last_trade[key] = flat.reshape(len(at), self.n_sec)
        return self._last_trade[key]

    def trailing_mean(self, name: str, t: npt.NDArray[np.int64], window: int) -> FloatArray:
        """Mean of a (forward-filled) array over the ``window`` days up to each day in ``t``."""
        if name not in self._cum:
            if name == "adt":
                ds = self.dataset
                base = np.nan_to_num(ds.field("turnover_value") * ds.fx_to_hkd())
            else:
                base = getattr(self, name)
            valid = ~np.isnan(base)
            zero = np.zeros((1, self.n_sec))
            cs = np.vstack([zero, np.cumsum(np.where(valid, base, 0.0), axis=0)])
            cn = np.vstack([zero, np.cumsum(valid, axis=0, dtype=np.float64)])
            self._cum[name] = (cs, cn)
        cs, cn = self._cum[name]
        lo = np.maximum(t + 1 - window, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            if name == "adt":
                return (cs[t + 1] - cs[lo]) / (t + 1 - lo)[:, None]
            return (cs[t + 1] - cs[lo]) / (cn[t + 1] - cn[lo])


def _classified_rows(
    ds: Dataset, positions: npt.NDArray[np.int64], days: npt.NDArray[np.datetime64]
) -> pd.DataFrame:
    """Rows ``positions`` of the securities master, each dated field as known on ``days``.

    A name whose first dated row starts later than the day keeps that first row (it describes
    the business at listing, not a later judgement).
    """
    sec = ds.securities
    frame = sec.iloc[positions].reset_index(drop=True)
    hist = ds.classification
    if hist is None or hist.empty:
        return frame
    query = pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "day": days.astype("datetime64[s]"),
            "row": np.arange(len(frame)),
        }
    ).sort_values("day", kind="stable")
    found = pd.merge_asof(
        query,
        hist.sort_values("valid_from", kind="stable"),
        left_on="day",
        right_on="valid_from",
        by="id",
    )
    found = found.sort_values("row").reset_index(drop=True)
    first = hist.groupby("id", sort=False).head(1).set_index("id")
    for column in [c for c in hist.columns if c not in ("id", "valid_from")]:
        if column not in frame.columns:
            continue
        before = found["id"].map(first[column])
        values = found[column].where(found["valid_from"].notna(), before)
        values = values.where(values.notna(), frame[column])
        frame[column] = values.astype(frame[column].dtype).to_numpy()
    return frame


_CACHE: dict[int, tuple[weakref.ref[Dataset], PreparedData]] = {}


def _prepared(data: Dataset | PreparedData) -> PreparedData:
    if isinstance(data, PreparedData):
        return data
    if not isinstance(data, Dataset):
        raise DataError(f"build_index needs an indexlab.Dataset, got {type(data).__name__}")
    hit = _CACHE.get(id(data))
    if hit is not None and hit[0]() is data:
        return hit[1]
    prep = PreparedData(data)
    key = id(data)
    cache = _CACHE  # bound now: module globals may be gone when the callback runs at exit

    def forget(_: object, k: int = key) -> None:
        cache.pop(k, None)

    _CACHE[key] = (weakref.ref(data, forget), prep)
    return prep


def _first_weekday(year: int, month: int, weekday: int) -> np.datetime64:
    first = pd.Timestamp(year=year, month=month, day=1)
    return np.datetime64((first + pd.Timedelta(days=(weekday - first.weekday()) % 7)).date(), "D")


def review_calendar(
    dates: npt.NDArray[np.datetime64], rules: IndexRules, start: Any = None, end: Any = None
) -> pd.DataFrame:
    """The reviews a rule set holds over a trading calendar.

    Returns a frame with ``cutoff`` (last trading day of each cut-off month), ``implementation``
    (first ``weekday`` of the month ``months_to_implementation`` later, rolled forward to a
    trading day) and ``effective`` (the next trading day; a weekday estimate past the data),
    plus their day indices (``len(dates)`` when past the data). Only complete cut-off months
    (a later month exists in the data) count; ``start``/``end`` bound the cut-off dates.

    Examples
    --------
    >>> import numpy as np
    >>> from indexlab import rules
    >>> days = np.arange(np.datetime64("2024-12-02"), np.datetime64("2025-03-15"))
    >>> days = days[np.is_busday(days)]
    >>> cal = rules.review_calendar(days, rules.HSTECH)
    >>> [str(cal.implementation[0].date()), str(cal.effective[0].date())]
    ['2025-03-07', '2025-03-10']
    """
    cal = rules.calendar
    months = dates.astype("datetime64[M]")
    last_of_month = np.flatnonzero(np.r_[months[1:] != months[:-1], False])
    rows = []
    t = len(dates)
    for k in last_of_month:
        m = months[k]
        month_no = int(str(m)[5:7])
        if month_no not in cal.cutoff_months:
            continue
        cut = dates[k]
        if start is not None and cut < np.datetime64(pd.Timestamp(start).date(), "D"):
            continue
        if end is not None and cut > np.datetime64(pd.Timestamp(end).date(), "D"):
            continue
        target = m + np.timedelta64(cal.months_to_implementation, "M")
        year, mon = int(str(target)[:4]), int(str(target)[5:7])
        impl_day = _first_weekday(year, mon, cal.weekday)
        i = int(np.searchsorted(dates, impl_day, side="left"))
        if i + 1 >= t:
            i = t
            eff_day = np.busday_offset(impl_day, 1, roll="forward")
            impl = impl_day
        else:
            impl, eff_day = dates[i], dates[i + 1]
        rows.append((cut, impl, eff_day, k, i, min(i + 1, t) if i < t else t))
    frame = pd.DataFrame(
        rows,
        columns=["cutoff", "implementation", "effective", "cutoff_idx", "impl_idx", "eff_idx"],
    )
    for c in ("cutoff", "implementation", "effective"):
        frame[c] = pd.to_datetime(frame[c])
    # Only the last review may be pending (implemented after the data ends).
    pending = frame["impl_idx"] >= t
    if pending.sum() > 1:
        frame = frame.loc[~pending | (pending.cumsum() == 1)].reset_index(drop=True)
    return frame


def _universe_mask(sec: pd.DataFrame, rules: IndexRules) -> npt.NDArray[np.bool_]:
    u = rules.universe
    ok = np.ones(len(sec), dtype=bool)
    if u.markets is not None:
        ok &= sec["market"].isin(u.markets).to_numpy()
    if u.industries is not None:
        ok &= sec["industry"].isin(u.industries).to_numpy()
    if u.listing_types is not None:
        ok &= sec["listing_type"].isin(u.listing_types).to_numpy()
    if u.connect_eligible_only:
        ok &= sec["connect_eligible"].to_numpy(dtype=bool)
    if u.ai_layers is not None:
        ok &= sec["ai_layer"].isin(u.ai_layers).to_numpy()
    if u.min_ai_score > 0:
        ok &= sec["ai_score"].to_numpy(dtype=np.float64) >= u.min_ai_score
    if u.tech_theme:
        ok &= _tech_theme(sec)
    return ok


def _tech_theme(sec: pd.DataFrame) -> npt.NDArray[np.bool_]:
    if "tech_theme" in sec.columns:
        return sec["tech_theme"].fillna(False).to_numpy(dtype=bool)
    # Without a judged theme column, an AI-chain layer or the IT industry stands in for it
    # (never a whole industry such as Consumer Discretionary, which holds casinos and jewellers).
    proxy = sec["ai_layer"].ne("none") | sec["industry"].eq("Information Technology")
    return proxy.to_numpy(dtype=bool)


def _category(sec: pd.DataFrame, category: str) -> npt.NDArray[np.bool_]:
    if category == "wvr":
        return sec["wvr"].to_numpy(dtype=bool)
    if category == "secondary":
        return sec["listing_type"].eq("secondary").to_numpy(dtype=bool)
    if category == "ai_application":
        return sec["ai_layer"].eq("application").to_numpy(dtype=bool)
    column = category.removeprefix("column:")
    if column not in sec.columns:
        raise DataError(f"category cap column {column!r} is not in the securities master")
    return sec[column].fillna(False).to_numpy(dtype=bool)


def _rank_key(prep: PreparedData, sleeve: Sleeve, cut: npt.NDArray[np.int64]) -> FloatArray:
    sec = prep.dataset.securities
    if sleeve.key.startswith("column:"):
        column = sleeve.key.removeprefix("column:")
        fund = prep.dataset.fundamentals
        if fund is not None and column in fund.columns and column not in ("id", "known_from"):
            return prep.dataset.fundamental(column, cut)
        if column in PANEL_FIELDS:
            # Carried over suspensions, never past the name's last observation.
            m = Market.of(prep.dataset)
            values = carry_inside(np.array(prep.dataset.field(column)), m.first_obs, m.last_obs)
            return values[cut]
        if column not in sec.columns and sleeve.missing == "error":
            # Not in this dataset at all: needed only where the sleeve selects, and then
            # the missing-field check names it and the names lacking it.
            return np.full((len(cut), prep.n_sec), np.nan)
        if column not in sec.columns:
            raise DataError(
                f"rank key column {column!r} is neither a panel field {list(PANEL_FIELDS)} "
                "nor a securities column"
            )
        values = pd.to_numeric(sec[column], errors="coerce").to_numpy(dtype=np.float64)
        return np.broadcast_to(values, (len(cut), prep.n_sec)).copy()
    base_name = "mcap" if sleeve.key == "mcap" else "ff_mcap"
    if sleeve.window_days > 0:
        base = prep.trailing_mean(base_name, cut, sleeve.window_days)
    else:
        base = getattr(prep, base_name)[cut]
    if sleeve.key == "ai_tilted":
        score = prep.classified(cut)["ai_score"].to_numpy(dtype=np.float64)
        base = base * np.power(score.reshape(len(cut), prep.n_sec), sleeve.alpha)
    return np.ascontiguousarray(base)


def _require_keys(
    prep: PreparedData,
    sel: Any,
    cal: pd.DataFrame,
    keys: list[FloatArray],
    seen: npt.NDArray[np.bool_],
    sizes: npt.NDArray[np.int64],
) -> None:
    """A sleeve with ``missing="error"`` needs a key value for every universe name (with data)
    at each review where it selects; otherwise name the field and the names lacking it."""
    n = prep.n_sec
    for s, sleeve in enumerate(sel.sleeves):
        if sleeve.missing != "error":
            continue
        lacking = np.isnan(keys[s].reshape(-1, n)) & seen & (sizes[:, s] > 0)[:, None]
        rows = np.flatnonzero(lacking.any(axis=1))
        if rows.size:
            r = int(rows[0])
            ids = prep.dataset.ids[lacking[r]].tolist()
            shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
            raise DataError(
                f"selection sleeve {s} ranks by {sleeve.key!r}, but at the review with cut-off "
                f"{cal['cutoff'].iloc[r].date()} {len(ids)} universe name(s) lack the field "
                f"{sleeve.key.removeprefix('column:')!r}: {shown}. Add it with "
                "Dataset.with_fundamentals, or set the sleeve's missing='skip' to rank only "
                "the names that have it."
            )


@dataclass
class _Inputs:
    sizes: npt.NDArray[np.int64]  # (R x S): each sleeve's size at each review
    calendar: pd.DataFrame
    universe: npt.NDArray[np.bool_]  # (R x N): classification known at each cut-off
    entry_universe: npt.NDArray[np.bool_]  # (N,): on each name's first trading day
    no_data: npt.NDArray[np.bool_]  # (R x N)
    classified: pd.DataFrame  # R x N rows, day-major
    keys: list[FloatArray]
    adt: FloatArray
    days_since_trade: npt.NDArray[np.int64]
    quota_flag: npt.NDArray[np.bool_]
    quota_active: bool
    name_cap: FloatArray
    extra: dict[str, Any] = field(default_factory=dict)


def _inputs(prep: PreparedData, rules: IndexRules, start: Any, end: Any) -> _Inputs:
    sec = prep.dataset.securities
    cal = review_calendar(prep.dataset.dates, rules, start, end)
    if cal.empty:
        raise DataError(
            f"no review cut-off between {start} and {end} in the data "
            f"({prep.day_labels[0]}..{prep.day_labels[-1]}); cut-off months are "
            f"{list(rules.calendar.cutoff_months)}"
        )
    cut = cal["cutoff_idx"].to_numpy(dtype=np.int64)
    sel, el, wt = rules.selection, rules.eligibility, rules.weighting
    keys = [_rank_key(prep, s, cut).ravel() for s in sel.sleeves]
    if el.min_adt_hkd > 0:
        adt = np.ascontiguousarray(prep.trailing_mean("adt", cut, el.adt_window_days)).ravel()
    else:
        adt = np.empty(0)
    lt = prep.last_trade(cut)
    since = np.where(lt < 0, _NONE // 2, cut[:, None] - lt).astype(np.int64).ravel()
    quota_active = sel.quota_column is not None and sel.quota_column in sec.columns
    if quota_active:
        quota = sec[sel.quota_column].fillna(False).to_numpy(dtype=bool)
    else:
        quota = np.zeros(prep.n_sec, dtype=bool)
    caps = np.full(prep.n_sec, wt.cap)
    for cc in wt.category_caps:
        caps = np.where(_category(sec, cc.category), np.minimum(caps, cc.cap), caps)
    classified = prep.classified(cut)
    universe = _universe_mask(classified, rules).reshape(len(cut), prep.n_sec)
    entry = _universe_mask(prep.classified_on_entry(), rules)
    sizes = np.array([sel.sizes_at(eff) for eff in cal["effective"]], dtype=np.int64)
    no_data = prep.no_data(cut)
    _require_keys(prep, sel, cal, keys, universe & ~no_data, sizes)
    return _Inputs(
        sizes,
        cal,
        universe,
        entry,
        no_data,
        classified,
        keys,
        adt,
        since,
        quota,
        quota_active,
        caps,
    )


def build_index(
    dataset: Dataset | PreparedData,
    rules: IndexRules,
    start: Any = None,
    end: Any = None,
    partial_universe: bool = False,
    warn: bool = True,
) -> IndexHistory:
    """Run ``rules`` over ``dataset``: every review in order, point in time.

    Parameters
    ----------
    dataset
        The market (or a :class:`PreparedData` built from it, to reuse arrays across variants).
    rules
        The methodology, e.g. ``indexlab.rules.HSTECH``.
    start, end
        Optional bounds on the review cut-off dates. When the dataset knows the last date
        through which its universe is complete (``Dataset.universe_complete_until``), ``end``
        defaults to that date: later reviews would choose from the names that happen to have
        data.
    partial_universe
        Run reviews whose cut-off falls after the complete-universe date anyway. A
        :class:`DataWarning` then names, per review, the universe names without data, and
        ``IndexHistory.partial_reviews`` lists them.
    warn
        Issue that warning (callers that report ``partial_reviews`` themselves pass false).

    Returns
    -------
    IndexHistory
        Constituents, weights and diagnostics per review and between-review event.

    Raises
    ------
    DataError
        When ``end`` lies after the complete-universe date and ``partial_universe`` is false.
    InfeasibleError
        When a review has no eligible names (the message names the review and how many names
        each screen removed) or its caps cannot reach 100%.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab import rules
    >>> ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    >>> hist = indexlab.build_index(ds, rules.HSTECH)
    >>> bool(hist.reviews.groupby("effective_date")["weight"].sum().round(12).eq(1).all())
    True
    """
    if not isinstance(rules, IndexRules):
        raise DataError(f"rules must be an IndexRules, got {type(rules).__name__}")
    prep = _prepared(dataset)
    end = _review_end(prep.dataset, end, partial_universe)
    inp = _inputs(prep, rules, start, end)
    el, sel, wt = rules.eligibility, rules.selection, rules.weighting
    n_months, velocity = prep.velocity(el.velocity_method)
    r_count = len(inp.calendar)
    if wt.scheme == "tilted":
        score = inp.classified["ai_score"].to_numpy(dtype=np.float64)
        weight_base = np.power(np.maximum(score, wt.min_score), wt.alpha)
    else:
        weight_base = np.ones(r_count * prep.n_sec)
    cal = inp.calendar
    cut = cal["cutoff_idx"].to_numpy(dtype=np.int64)
    arrays = {
        "ids": prep.ids,
        "days": prep.day_labels,
        "ff_mcap": prep.ff_mcap.ravel(),
        "mcap": prep.mcap.ravel(),
        "listing_day": prep.listing_day,
        "first_idx": prep.first_idx,
        "delisting_idx": prep.delisting_idx,
        "universe": np.ascontiguousarray(inp.universe.ravel()),
        "entry_universe": inp.entry_universe,
        "no_data": np.ascontiguousarray(inp.no_data.ravel()),
        "industry": prep.industry_codes.astype(np.int64),
        "quota_flag": inp.quota_flag,
        "name_cap": inp.name_cap,
        "weight_base": np.ascontiguousarray(weight_base, dtype=np.float64),
        "cutoff_idx": cut,
        "impl_idx": cal["impl_idx"].to_numpy(dtype=np.int64),
        "cutoff_day": prep.dataset.dates[cut].astype(np.int64),
        "cutoff_month": prep.month[cut],
        "velocity": velocity,
        "days_since_trade": inp.days_since_trade,
        "adt": inp.adt,
        "keys": inp.keys,
    }
    quota_on = inp.quota_active
    params = {
        "n_days": prep.n_days,
        "n_months": n_months,
        "sleeve_sizes": [s.n for s in sel.sleeves],
        # Sizes per review only when the selection changes at a date.
        "sizes_by_review": inp.sizes.ravel().tolist() if sel.earlier else [],
        "buffer": sel.buffer,
        "min_listing_days": el.min_listing_days,
        "velocity_threshold": el.velocity_threshold,
        "velocity_window": el.velocity_window,
        "velocity_required": el.velocity_required,
        "velocity_recent": el.velocity_recent,
        "incumbent_required": el.incumbent_required,
        "incumbent_recent": el.incumbent_recent,
        "min_ff_mcap": el.min_ff_mcap_hkd,
        "min_adt": el.min_adt_hkd,
        "max_suspension_days": el.max_suspension_days,
        "fast_entry_top": sel.fast_entry_top,
        "fast_entry_days": sel.fast_entry_days,
        "max_per_industry": sel.max_per_industry,
        "quota_min": sel.quota_min if quota_on else 0,
        "quota_max": (sel.quota_max if sel.quota_max is not None else 2**62) if quota_on else 2**62,
        "cap": wt.cap,
        "equal_weight": wt.scheme == "equal",
    }
    out = _core.run_reviews(arrays, params)
    hist = IndexHistory._from_core(prep, rules, inp, out)
    _note_partial_reviews(prep.dataset, hist, inp, warn)
    return hist


def _review_end(ds: Dataset, end: Any, partial_universe: bool) -> Any:
    """Bound the reviews to the complete-universe date unless the caller opts out."""
    complete = ds.universe_complete_until
    if complete is None or partial_universe:
        return end
    if end is None:
        return pd.Timestamp(str(complete))
    if np.datetime64(pd.Timestamp(end).date(), "D") > complete:
        raise DataError(
            f"end={pd.Timestamp(end).date()} is after {complete}, the last date through which "
            "this dataset's universe is complete; later reviews would choose only from the "
            "names that have data. Pass partial_universe=True to run them anyway (each such "
            "review then lists the names it could not see)."
        )
    return end


def _note_partial_reviews(ds: Dataset, hist: IndexHistory, inp: _Inputs, warn: bool) -> None:
    """Record (and warn about) reviews made on a partial universe."""
    complete = ds.universe_complete_until
    cal = hist.calendar
    rows = []
    if complete is not None:
        late = np.flatnonzero(
            cal["cutoff"].to_numpy() > pd.Timestamp(str(complete)).to_datetime64()
        )
        for r in late:
            blind = inp.universe[r] & inp.no_data[r]
            rows.append((cal["cutoff"].iloc[r], int(blind.sum()), hist.ids[blind].tolist()))
    hist.partial_reviews = pd.DataFrame(rows, columns=["review_date", "names_without_data", "ids"])
    if rows and warn:
        worst = max(rows, key=lambda x: x[1])
        warnings.warn(
            f"{len(rows)} review(s) after {complete} ran on a partial universe (the data after "
            f"that date cover a subset of names): at the {worst[0].date()} cut-off "
            f"{worst[1]} universe names had no data. IndexHistory.partial_reviews lists them.",
            DataWarning,
            stacklevel=3,
        )


class IndexHistory:
    """The result of :func:`build_index`.

    ``reviews``: one row per constituent per set of weights (a review, or a fast entry or a
    delisting between reviews), columns ``review_date`` (the cut-off of the review in force),
    ``effective_date``, ``event``, ``id``, ``weight`` (summing to 1 per effective date),
    ``capping_factor``, ``rank`` and ``reason``.
    """

    def __init__(
        self,
        rules: IndexRules,
        reviews: pd.DataFrame,
        calendar: pd.DataFrame,
        ids: npt.NDArray[np.str_],
        last_date: np.datetime64,
        diagnostics: dict[str, Any],
    ) -> None:
        self.rules = rules
        self.reviews = reviews
        self.calendar = calendar
        self.ids = ids
        self.last_date = last_date
        self._diag = diagnostics
        #: Reviews run after the complete-universe date: ``review_date``,
        #: ``names_without_data`` and their ``ids`` (empty when none).
        self.partial_reviews = pd.DataFrame(columns=["review_date", "names_without_data", "ids"])

    @classmethod
    def _from_core(
        cls, prep: PreparedData, rules: IndexRules, inp: _Inputs, out: dict[str, Any]
    ) -> IndexHistory:
        cal = inp.calendar
        dates = prep.dataset.dates
        ev_ref = out["event_ref_idx"]
        ev_review = out["event_review"]
        ev_kind = out["event_kind"]
        eff = []
        for k, ref in enumerate(ev_ref):
            r = int(ev_review[k])
            if ev_kind[k] == 0:
                eff.append(cal["effective"].iloc[r])
            else:
                eff.append(pd.Timestamp(dates[ref + 1]))
        eff_dates = pd.to_datetime(pd.Series(eff))
        e = out["row_event"]
        ids = prep.dataset.ids
        reviews = pd.DataFrame(
            {
                "review_date": cal["cutoff"].to_numpy()[ev_review[e]],
                "effective_date": eff_dates.to_numpy()[e],
                "event": np.array(EVENTS)[ev_kind[e]],
                "id": ids[out["row_sec"]],
                "weight": out["row_weight"],
                "capping_factor": out["row_cf"],
                "rank": out["row_rank"],
                "reason": np.array(REASONS)[out["row_reason"]],
            }
        )
        r_count = len(cal)
        diag = {
            "status": out["status"].reshape(r_count, prep.n_sec),
            "rank": out["rank"].reshape(r_count, prep.n_sec),
            "vel_pass": out["vel_pass"].reshape(r_count, prep.n_sec),
            "vel_avail": out["vel_avail"].reshape(r_count, prep.n_sec),
            "keys": [k.reshape(r_count, prep.n_sec) for k in inp.keys],
            "universe": inp.universe,
            "days_since_trade": inp.days_since_trade.reshape(r_count, prep.n_sec),
            "adt": inp.adt.reshape(r_count, prep.n_sec) if inp.adt.size else None,
            "ff_mcap": prep.ff_mcap[cal["cutoff_idx"].to_numpy()],
            "listing_day": prep.listing_day,
            "securities": prep.dataset.securities,
            "classified": inp.classified,
            "last_obs": prep.last_obs,
            "quota_active": inp.quota_active,
            "dates": dates,
        }
        return cls(rules, reviews, cal, ids, dates[-1], diag)

    # ------------------------------------------------------------------ views

    def weights_matrix(
        self, include_pending: bool = False, when: str = "set"
    ) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.str_], FloatArray]:
        """``(rebalance dates, ids, (R x N) weights)``, ready for :func:`indexlab.backtest`.

        Row ``j`` holds the weights set at the close of ``dates[j]``: a review's implementation
        day (HSIL rebalances after that day's close), which is the backtest's rebalance-day
        convention (docs/conventions.md, backtest levels). They are in force from the next trading
        day, the effective date; ``when="effective"`` returns those dates instead. ``ids`` are
        all the dataset's ids (zero weight when out). Weights whose effective date lies past the
        data are left out unless ``include_pending``.

        Examples
        --------
        >>> import indexlab
        >>> ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
        >>> dates, ids, w = indexlab.build_index(ds, indexlab.rules.HSTECH).weights_matrix()
        >>> bool(abs(w.sum(axis=1) - 1).max() < 1e-12)
        True
        """
        if when not in ("effective", "set"):
            raise DataError(f"when must be 'effective' or 'set', got {when!r}")
        frame = self.reviews
        if not include_pending:
            frame = frame[frame["effective_date"] <= pd.Timestamp(self.last_date)]
        eff = np.unique(frame["effective_date"].to_numpy().astype("datetime64[D]"))
        w = np.zeros((len(eff), len(self.ids)))
        rows = np.searchsorted(eff, frame["effective_date"].to_numpy().astype("datetime64[D]"))
        cols = pd.Index(self.ids).get_indexer(frame["id"])
        w[rows, cols] = frame["weight"].to_numpy()
        if when == "set":
            dates = self._diag["dates"]
            prev = np.searchsorted(dates, eff, side="left") - 1
            eff = np.where(prev < len(dates) - 1, dates[np.maximum(prev, 0)], eff)
        return eff, self.ids.copy(), w

    def changes(self) -> pd.DataFrame:
        """Adds and deletes per set of weights: ``effective_date``, ``review_date``, ``event``,
        ``id``, ``change`` (``"add"``/``"delete"``)."""
        out = []
        prev: set[str] = set()
        for (eff, rev, event), g in self.reviews.groupby(
            ["effective_date", "review_date", "event"], sort=True
        ):
            now = set(g["id"])
            for i in sorted(now - prev):
                out.append((eff, rev, event, i, "add"))
            for i in sorted(prev - now):
                out.append((eff, rev, event, i, "delete"))
            prev = now
        return pd.DataFrame(out, columns=["effective_date", "review_date", "event", "id", "change"])

    def screening(self, effective: Any) -> pd.DataFrame:
        """Every security at the review taking effect on ``effective``: ``in_universe`` (the
        universe filter as known at the cut-off), ``status`` (the first screen it failed, or
        ``selected`` / ``not_selected``: see :meth:`explain`) and ``rank`` (by the first
        selection block's key among the eligible, 0 when not ranked), indexed by ``id``.

        Examples
        --------
        >>> import indexlab
        >>> ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
        >>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=20))
        >>> s = hist.screening(hist.calendar["effective"].iloc[1])
        >>> int((s["status"] == "selected").sum())
        20
        """
        day = pd.Timestamp(effective)
        found = np.flatnonzero(pd.to_datetime(self.calendar["effective"]) == day)
        if not found.size:
            raise DataError(
                f"no review takes effect on {day.date()}; reviews take effect on "
                f"{[str(pd.Timestamp(d).date()) for d in self.calendar['effective']]}"
            )
        r = int(found[0])
        d = self._diag
        return pd.DataFrame(
            {
                "in_universe": d["universe"][r],
                "status": [STATUS[int(c)] for c in d["status"][r]],
                "rank": d["rank"][r],
            },
            index=pd.Index(self.ids, name="id"),
        )

    def explain(self, id: str, date: Any) -> str:
        """Why ``id`` is in or out at the last review whose cut-off is on or before ``date``.

        Names the first screen the security failed, its value and the threshold.
        """
        cal = self.calendar
        day = pd.Timestamp(date)
        r = int(np.searchsorted(cal["cutoff"].to_numpy(), np.datetime64(day), side="right")) - 1
        if r < 0:
            raise DataError(f"no review with a cut-off on or before {day.date()}")
        pos = np.flatnonzero(self.ids == id)
        if pos.size == 0:
            raise DataError(f"unknown id {id!r}")
        i = int(pos[0])
        d = self._diag
        rules = self.rules
        el, sel = rules.eligibility, rules.selection
        cut = cal["cutoff"].iloc[r]
        eff = cal["effective"].iloc[r].date()
        head = f"{id} at the review with cut-off {cut.date()} (effective {eff}): "
        code = STATUS[int(d["status"][r, i])]
        rank = int(d["rank"][r, i])
        key = d["keys"][0][r, i]
        if code == "selected":
            row = self.reviews[
                (self.reviews["review_date"] == cut)
                & (self.reviews["id"] == id)
                & (self.reviews["event"] == "review")
            ]
            reason = row["reason"].iloc[0] if len(row) else "rank"
            return head + f"selected (reason {reason}), rank {rank} by {sel.key} ({key:.6g})"
        if code == "out_of_universe":
            return head + "outside the universe: " + self._universe_failure(r, i)
        if code == "not_listed":
            return head + "not listed at the cut-off (or delisted by the implementation day)"
        if code == "no_data":
            last = int(d["last_obs"][i])
            return head + (
                f"no data after {d['dates'][last]} (a coverage gap: the series ends with no "
                f"recorded delisting, more than {COVERAGE_GAP_DAYS} trading days before the "
                "cut-off)"
            )
        if code == "suspended":
            return head + (
                f"suspended: {int(d['days_since_trade'][r, i])} trading days without a trade, "
                f"more than max_suspension_days = {el.max_suspension_days}"
            )
        if code == "seasoning":
            listed = int(np.datetime64(cut.date(), "D").astype(np.int64) - d["listing_day"][i])
            return head + (
                f"listing history {listed} days < min_listing_days = {el.min_listing_days}"
            )
        if code == "velocity":
            p, a = int(d["vel_pass"][r, i]), int(d["vel_avail"][r, i])
            return head + (
                f"turnover velocity test failed: {p} of {a} available months at >= "
                f"{el.velocity_threshold:.4%} (window {el.velocity_window}, at most "
                f"{el.velocity_window - el.velocity_required} failures; newcomers must pass the "
                f"latest {el.velocity_recent} months)"
            )
        if code == "min_ff_mcap":
            return head + (
                f"free-float market cap HK${d['ff_mcap'][r, i]:,.0f} < min_ff_mcap_hkd = "
                f"HK${el.min_ff_mcap_hkd:,.0f}"
            )
        if code == "min_turnover":
            return head + (
                f"average daily turnover HK${d['adt'][r, i]:,.0f} over {el.adt_window_days} "
                f"days < min_adt_hkd = HK${el.min_adt_hkd:,.0f}"
            )
        if code == "no_rank_key":
            return head + f"no value of the rank key {sel.key!r} at the cut-off"
        sizes = sel.sizes_at(self.calendar["effective"].iloc[r])
        n, target = sizes[0], sum(sizes)
        upper, lower = round(n * (1 + sel.buffer)), max(round(n * (1 - sel.buffer)), 1)
        if code == "industry_limit":
            return head + f"rank {rank}, left out by max_per_industry = {sel.max_per_industry}"
        if code == "quota_limit":
            return head + f"rank {rank}, left out by quota_max = {sel.quota_max}"
        before = self.reviews[self.reviews["effective_date"] <= cut]
        last = before[before["effective_date"] == before["effective_date"].max()]
        if id in set(last["id"]) and 0 < rank <= upper:
            return head + (
                f"incumbent inside the buffer band (rank {rank} <= {upper} by {sel.key}, "
                f"{key:.6g}) but more names qualified than the target {target}: the "
                "worst-ranked made way"
            )
        return head + (
            f"eligible but not selected: rank {rank} by {sel.key} ({key:.6g}); newcomers need "
            f"rank <= {lower}, incumbents stay to rank {upper}, target {target}"
        )

    def _universe_failure(self, r: int, i: int) -> str:
        n = len(self.ids)
        s = self._diag["classified"].iloc[r * n + i]
        u = self.rules.universe
        checks = [
            (
                u.markets is not None and s["market"] not in u.markets,
                f"market {s['market']} not in {u.markets}",
            ),
            (
                u.industries is not None and s["industry"] not in u.industries,
                f"industry {s['industry']} not in {u.industries}",
            ),
            (
                u.listing_types is not None and s["listing_type"] not in u.listing_types,
                f"listing type {s['listing_type']} not in {u.listing_types}",
            ),
            (
                u.connect_eligible_only and not bool(s["connect_eligible"]),
                "not Stock Connect eligible",
            ),
            (
                u.ai_layers is not None and s["ai_layer"] not in u.ai_layers,
                f"AI layer {s['ai_layer']} not in {u.ai_layers}",
            ),
            (float(s["ai_score"]) < u.min_ai_score, f"ai_score {s['ai_score']} < {u.min_ai_score}"),
        ]
        for failed, msg in checks:
            if failed:
                return msg
        reason = s.get("tech_theme_rationale")
        tail = f": {reason}" if isinstance(reason, str) and reason else ""
        return (
            "not a technology-theme name (tech_theme false as known at the cut-off, or, without "
            f"that column, the proxy: ai_layer none and industry not IT){tail}"
        )

    def to_rules_report(self) -> str:
        """Markdown: the rules (TOML) and the review log (adds and deletes per event)."""
        lines = [f"# {self.rules.name}", "", self.rules.description, "", "## Rules", "", "```toml"]
        lines += [self.rules.to_toml().rstrip(), "```", ""]
        if self.rules.selection.quota_column and not self._diag["quota_active"]:
            lines += [
                f"Note: quota column {self.rules.selection.quota_column!r} is not in the data: "
                "quota off.",
                "",
            ]
        lines += [
            "## Review log",
            "",
            "| effective | cut-off | event | names | added | deleted |",
            "|---|---|---|---|---|---|",
        ]
        ch = self.changes()
        for (eff, rev, event), g in self.reviews.groupby(
            ["effective_date", "review_date", "event"], sort=True
        ):
            c = ch[ch["effective_date"] == eff]
            add = ", ".join(c.loc[c["change"] == "add", "id"])
            dele = ", ".join(c.loc[c["change"] == "delete", "id"])
            lines.append(f"| {eff.date()} | {rev.date()} | {event} | {len(g)} | {add} | {dele} |")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ published record

    # Imported here (the return type of compare) so that the module's imports stay untouched.
    from indexlab.rules.compare import Comparison as _Comparison

    def compare(self, published: pd.DataFrame, tolerance_days: int = 0) -> _Comparison:
        """Compare with published changes or membership lists, review by review.

        Delegates to :func:`indexlab.rules.compare.compare` (see it for the table layouts,
        matching by effective date and the outcomes).

        Examples
        --------
        >>> import indexlab
        >>> from indexlab import rules
        >>> ds = indexlab.datasets.hk_tech()
        >>> hist = indexlab.build_index(ds, rules.HSTECH, start="2023-01-01")
        >>> cmp = hist.compare(indexlab.datasets.published_changes("HSTECH"))
        >>> cmp.summary(by="year").index.tolist()       # the years of the published reviews
        [2021, 2023, 2024, 2025, 2026]
        >>> cmp.reviews.set_index("effective").loc["2026-06-08", "status"]   # after the data
        'not_covered'
        """
        from indexlab.rules.compare import compare

        return compare(self, published, tolerance_days=tolerance_days)
