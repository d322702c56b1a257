"""From cached series to a validated :class:`~indexlab.Dataset`, merged with the caller's own
securities master (classification, AI layer and score).

What the vendors serve becomes the panel: ``close`` (the price), ``total_return`` (the vendor's
dividend-adjusted level where it has one anchored at the first day, else built from the price
and the cash dividends: ``tr[t] = tr[t-1] * (close[t] + dividend[t]) / close[t-1]``), the share
count last reported on or before each day (split-adjusted to the price), turnover. What they do
not serve comes from the master or a stated default, and the master records which (``*_kind``
columns, ``price_source``, ``retrieved``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from indexlab.data import SECURITY_COLUMNS, Dataset
from indexlab.errors import DataError
from indexlab.sources._cache import Cache, Cached
from indexlab.sources._connector import canonical_id, market_of
from indexlab.sources._update import SOURCES, UpdateReport, _ids, update

#: Values for master columns the caller leaves out (industry has none: it must be given).
DEFAULTS: Mapping[str, Any] = {
    "delisting_date": None,
    "listing_type": "primary",
    "wvr": False,
    "connect_eligible": False,
    "ai_layer": "none",
    "ai_score": 0.0,
}
#: FX series (yfinance symbols) giving HKD per unit of a currency.
FX_SYMBOLS = {"CNY": "CNYHKD=X", "USD": "USDHKD=X"}


def total_return(rows: pd.DataFrame) -> np.ndarray:
    """A total-return level per row: the vendor's forward-anchored adjusted level, and where it
    has none (on a day or at all), the price with its cash dividends reinvested,
    ``tr[t] = tr[t-1] * (close[t] + dividend[t]) / close[t-1]``.

    Examples
    --------
    >>> import pandas as pd
    >>> from indexlab.sources._dataset import total_return
    >>> rows = pd.DataFrame({"close": [100.0, 98.0], "dividend": [0.0, 2.0],
    ...                      "adjusted_close": [float("nan")] * 2})
    >>> total_return(rows).tolist()   # 98 + 2 paid out: no loss
    [100.0, 100.0]
    """
    adjusted = rows["adjusted_close"].to_numpy(dtype=np.float64)
    close = rows["close"].to_numpy(dtype=np.float64)
    if len(close) == 0:
        return close
    div = np.nan_to_num(rows["dividend"].to_numpy(dtype=np.float64))
    growth = np.ones(len(close))
    by_price = (close[1:] + div[1:]) / close[:-1]
    by_level = adjusted[1:] / adjusted[:-1]
    growth[1:] = np.where(np.isfinite(by_level), by_level, by_price)
    first = adjusted[0] if np.isfinite(adjusted[0]) else close[0]
    return first * np.cumprod(growth)


def _split_adjusted_shares(rows: pd.DataFrame) -> np.ndarray:
    """Reported share counts scaled by every later split, so ``close * shares`` is the cap."""
    split = rows["split"].to_numpy(dtype=np.float64)
    ratio = np.where(np.isfinite(split) & (split > 0), split, 1.0)
    # The count on day t predates the splits after t (a split on t is already in it).
    later = np.cumprod(ratio[::-1])[::-1]
    later = np.append(later[1:], 1.0)
    return rows["shares_outstanding"].to_numpy(dtype=np.float64) * later


def _master(
    ids: list[str], cached: dict[str, Cached], securities: pd.DataFrame | None
) -> pd.DataFrame:
    given = (
        pd.DataFrame({"id": ids})
        if securities is None
        else pd.DataFrame(securities).assign(id=lambda f: f["id"].astype(str).map(canonical_id))
    )
    dup = given["id"].duplicated()
    if dup.any():
        raise DataError(
            f"securities: duplicate id {given.loc[dup, 'id'].iloc[0]!r}; each security needs "
            "exactly one row in the master"
        )
    given = given.set_index("id")
    rows = []
    for id in ids:
        c = cached[id]
        known = given.loc[id].to_dict() if id in given.index else {}
        known = {k: v for k, v in known.items() if not _missing(v)}
        first = pd.Timestamp(c.rows["date"].iloc[0])
        row: dict[str, Any] = {"id": id, **DEFAULTS, **known}
        row.setdefault("name", id)
        row.setdefault("market", market_of(id))
        row.setdefault("currency", c.currency or ("HKD" if market_of(id) == "HK" else "CNY"))
        if "listing_date" not in known:
            row["listing_date"] = first
            row["listing_date_kind"] = "first cached day"
        row["price_source"] = f"{c.source} {c.symbol}".strip()
        row["retrieved"] = pd.Timestamp(c.rows["retrieved"].max()).date().isoformat()
        row["shares_source"] = c.fields.get("shares_outstanding", "")
        row["shares_kind"] = _shares_kind(c.rows)
        if "free_float_factor" not in known:
            row["free_float_factor"] = 1.0
            row["free_float_kind"] = "assumed 1.0 (no vendor serves a Hang Seng free-float factor)"
        rows.append(row)
    sec = pd.DataFrame(rows)
    lacking = [
        id
        for id, ind in zip(sec["id"], sec.get("industry", [None] * len(sec)), strict=True)
        if _missing(ind)
    ]
    if lacking:
        raise DataError(
            f"securities: no industry for {lacking[:10]}"
            f"{' and more' if len(lacking) > 10 else ''}; vendors do not serve the Hang Seng "
            "industry: pass securities= with columns id and industry (and, as you have them, "
            f"name, ai_layer, ai_score, connect_eligible...): expected one column per "
            f"{list(SECURITY_COLUMNS)}"
        )
    return sec


def _shares_kind(rows: pd.DataFrame) -> str:
    """How the panel's share counts were had: reported, or held back before the first report."""
    known = rows["shares_outstanding"].notna().to_numpy()
    if not known.any():
        return "none served"
    if known[0]:
        return "reported"
    first = pd.Timestamp(rows["date"].iloc[int(np.argmax(known))]).date()
    return f"reported; before the first report ({first}) the first count is used"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def load_cached(
    ids: Iterable[str],
    source: str = "yfinance",
    *,
    securities: Any = None,
    classification: Any = None,
    benchmarks: Mapping[str, str] | None = None,
    fx: Any = None,
    cache_dir: Any = None,
) -> Dataset:
    """A validated :class:`~indexlab.Dataset` from the cache, merged with your master.

    Parameters
    ----------
    ids : iterable of str
        Securities to include (each must be cached: run :func:`update` first).
    source : {"yfinance", "akshare"}
        Whose cached series to read.
    securities : DataFrame, optional
        Your securities master: ``id`` plus any of the master columns (``industry`` is
        required: vendors do not serve the Hang Seng industry), ``free_float_factor`` and extra
        columns; missing values get :data:`DEFAULTS` and the ``listing_date`` the first cached
        day (``listing_date_kind`` says so).
    classification : DataFrame, optional
        Dated classification rows (``id``, ``valid_from``, ``ai_layer``, ``ai_score``...).
    benchmarks : mapping, optional
        Benchmark name -> cached id, e.g. ``{"HSI": "^HSI"}``.
    fx : DataFrame, optional
        Long ``date, currency, to_hkd``; by default the cached yfinance ``CNYHKD=X`` /
        ``USDHKD=X`` series for the currencies present.
    cache_dir : path, optional
        The cache folder.

    Returns
    -------
    Dataset
        The master gains ``price_source``, ``retrieved`` (last fetch), ``shares_source`` and
        ``*_kind`` columns saying what came from where.

    Examples
    --------
    >>> from indexlab import sources
    >>> ds = sources.load_cached(["0700.HK"], securities=my_master,  # doctest: +SKIP
    ...                          benchmarks={"HSI": "^HSI"})
    """
    if source not in SOURCES:
        raise DataError(f"source: expected one of {list(SOURCES)}, found {source!r}")
    cache = Cache(cache_dir)
    wanted = _ids(ids)
    cached: dict[str, Cached] = {}
    absent: list[str] = []
    for id in wanted:
        c = cache.read(source, id)
        if c is None or c.rows.empty:
            absent.append(id)
        else:
            cached[id] = c
    if absent:
        raise DataError(
            f"{source}: nothing cached for {absent} in {cache.root}; run `indexlab data update "
            f"--source {source} --ids {' '.join(absent)}` first"
        )
    given = None
    if securities is not None:
        given = pd.DataFrame(securities)
        if "id" not in given.columns:
            raise DataError(
                f"securities: expected an 'id' column, found columns {list(given.columns)}"
            )
    sec = _master(wanted, cached, given)
    panel = _panel(sec, cached)
    return Dataset.from_frames(
        sec,
        panel,
        fx=fx if fx is not None else _cached_fx(cache, sec, panel),
        benchmarks=_benchmarks(cache, source, benchmarks),
        classification=classification,
    )


def _panel(sec: pd.DataFrame, cached: dict[str, Cached]) -> pd.DataFrame:
    frames = []
    for _, s in sec.iterrows():
        rows = cached[s["id"]].rows
        # Rows outside the listing (a vendor's placeholder rows before it) are not data.
        keep = rows["date"] >= pd.Timestamp(s["listing_date"])
        if not _missing(s["delisting_date"]):
            keep &= rows["date"] <= pd.Timestamp(s["delisting_date"])
        rows = rows[keep].reset_index(drop=True)
        if rows.empty:
            continue
        shares = pd.Series(_split_adjusted_shares(rows)).ffill().bfill()
        frames.append(
            pd.DataFrame(
                {
                    "date": rows["date"].to_numpy(),
                    "id": s["id"],
                    "close": rows["close"].to_numpy(),
                    "total_return": total_return(rows),
                    "shares_outstanding": shares.to_numpy(),
                    "free_float_factor": float(s["free_float_factor"]),
                    "turnover_value": rows["turnover_value"].to_numpy(),
                    "turnover_shares": rows["turnover_shares"].to_numpy(),
                }
            )
        )
    if not frames:
        raise DataError("no cached rows on or after the listing dates of the securities")
    return pd.concat(frames).sort_values(["date", "id"], kind="stable").reset_index(drop=True)


def _cached_closes(cache: Cache, source: str, id: str, missing: str) -> pd.DataFrame:
    """``date`` and ``close`` of a cached series, or a :class:`DataError` that says what is
    missing (``missing``) and how to fetch it."""
    c = cache.read(source, id)
    if c is None or c.rows.empty:
        raise DataError(f"{missing}; run `indexlab data update --source {source} --ids {id}` first")
    return c.rows[["date", "close"]]


def _cached_fx(cache: Cache, sec: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame | None:
    needed = sorted(set(sec["currency"]) - {"HKD"})
    if not needed:
        return None
    parts = []
    for cur in needed:
        symbol = FX_SYMBOLS.get(cur)
        if symbol is None:
            raise DataError(
                f"fx: no HKD rate source known for {cur}; pass fx= (date, currency, to_hkd)"
            )
        rows = _cached_closes(
            cache,
            "yfinance",
            symbol,
            f"fx: no HKD rate cached for {cur} ({symbol}); fetch it or pass fx= (date, "
            "currency, to_hkd)",
        )
        parts.append(pd.DataFrame({"date": rows["date"], "currency": cur, "to_hkd": rows["close"]}))
    return pd.concat(parts, ignore_index=True)


def _benchmarks(
    cache: Cache, source: str, benchmarks: Mapping[str, str] | None
) -> pd.DataFrame | None:
    if not benchmarks:
        return None
    parts = []
    for name, id in benchmarks.items():
        rows = _cached_closes(cache, source, id, f"benchmarks: nothing cached for {name} ({id})")
        parts.append(pd.DataFrame({"date": rows["date"], "index": name, "level": rows["close"]}))
    return pd.concat(parts, ignore_index=True)


def fetch(
    ids: Iterable[str],
    source: str = "yfinance",
    *,
    until: Any = "today",
    benchmarks: Mapping[str, str] | None = None,
    securities: Any = None,
    classification: Any = None,
    cache_dir: Any = None,
    **update_options: Any,
) -> tuple[Dataset, UpdateReport]:
    """Update the cache for ``ids`` (and benchmarks, and FX for non-HKD names), then load it.

    Ids that failed to update are still loaded from what was cached before; ids with nothing
    cached raise :class:`~indexlab.DataError` naming them (the report says why).

    Examples
    --------
    >>> from indexlab import sources
    >>> ds, report = sources.fetch(["0700.HK", "9988.HK"], securities=my_master,  # doctest: +SKIP
    ...                            benchmarks={"HSI": "^HSI"})
    """
    wanted = _ids(ids)
    extra = list((benchmarks or {}).values())
    if source == "yfinance":
        extra += [
            FX_SYMBOLS[m] for m in ("CNY",) if any(market_of(i) in ("SH", "SZ") for i in wanted)
        ]
    report = update([*wanted, *extra], source, until=until, cache_dir=cache_dir, **update_options)
    try:
        ds = load_cached(
            wanted,
            source,
            securities=securities,
            classification=classification,
            benchmarks=benchmarks,
            cache_dir=cache_dir,
        )
    except DataError as err:
        failed = {s.id: s.detail for s in report.ids if s.status in ("failed", "no data")}
        raise DataError(f"{err} (update: {failed})" if failed else str(err)) from err
    return ds, report
