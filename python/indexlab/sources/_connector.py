"""What every connector returns, how ids map to markets, and how failures are classified.

A connector fetches one id's daily rows for a date range and returns a :class:`Fetched`: the
rows in the cache's columns (:data:`COLUMNS`), the currency, the vendor's symbol and, per field,
the library call it came from. Everything else (the cache, retries, rate limits, the report,
the :class:`~indexlab.Dataset`) is shared by all sources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from indexlab.errors import DataError

#: Cached columns besides ``date`` and ``retrieved``. ``close`` is the price (split-adjusted,
#: dividends not reinvested); ``dividend`` the cash dividend per share on its ex-date;
#: ``split`` the split ratio on its ex-date (NaN or 0 where none); ``adjusted_close`` a
#: vendor's dividend-adjusted level anchored at the first day (so later fetches never rescale
#: it), NaN where the vendor only has back-adjusted levels; ``shares_outstanding`` the share
#: count last reported on or before the date, as reported (not split-adjusted).
COLUMNS = (
    "close",
    "dividend",
    "split",
    "adjusted_close",
    "turnover_shares",
    "turnover_value",
    "shares_outstanding",
)

_SECURITY = re.compile(r"^(?P<code>[0-9A-Z]{1,8})\.(?P<suffix>HK|SH|SS|SZ)$")


def market_of(id: str) -> str | None:
    """The market (HK, SH, SZ) of a security id, or None for an index or an FX rate.

    Examples
    --------
    >>> from indexlab.sources._connector import market_of
    >>> [market_of(i) for i in ("0700.HK", "688256.SH", "688256.SS", "300308.SZ", "^HSI")]
    ['HK', 'SH', 'SH', 'SZ', None]
    """
    m = _SECURITY.match(id.upper())
    if m is None:
        return None
    return {"HK": "HK", "SH": "SH", "SS": "SH", "SZ": "SZ"}[m.group("suffix")]


def canonical_id(id: str) -> str:
    """indexlab's spelling of an id: ``688256.SS`` (Yahoo's) becomes ``688256.SH``."""
    text = id.strip()
    if not text:
        raise DataError("an id is empty: expected a code such as 0700.HK, 688256.SH or ^HSI")
    upper = text.upper()
    return upper[:-3] + ".SH" if upper.endswith(".SS") else text


def calendar_of(id: str) -> str | None:
    """The exchange calendar an id trades on: XHKG, XSHG, or None for an FX rate."""
    from indexlab.sources._calendar import MARKET_CALENDARS

    market = market_of(id)
    if market is not None:
        return MARKET_CALENDARS[market]
    return None if id.upper().endswith("=X") else "XHKG"


@dataclass(frozen=True)
class Fetched:
    """One id's rows from one call of a connector."""

    #: ``date`` (tz-naive days, increasing, unique) plus any of :data:`COLUMNS`.
    rows: pd.DataFrame
    #: The currency the vendor reports (None where it does not say).
    currency: str | None
    #: The vendor's own symbol for the id (``688256.SS``, ``00700``).
    symbol: str
    #: Per field, the library call it came from.
    fields: Mapping[str, str] = field(default_factory=dict)
    #: Things the caller should know (``no share count from the vendor``).
    notes: tuple[str, ...] = ()


class Connector(Protocol):
    """A data source: fetch one id's daily rows for ``start .. end`` (both included)."""

    name: str

    def fetch(self, id: str, start: pd.Timestamp, end: pd.Timestamp, timeout: float) -> Fetched:
        """Rows for ``start .. end``; raise on network failure, return no rows for no data."""
        ...


class NetworkError(Exception):
    """A request that failed on the way (no connection, timeout, rate limit, server error)."""

    def __init__(self, message: str, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


_NETWORK_WORDS = ("connection", "timeout", "timed out", "resolve", "ratelimit", "rate limit")


def is_network_error(err: BaseException) -> bool:
    """True for an error raised on the way to the vendor rather than by its answer.

    Vendor libraries raise their HTTP client's errors (requests, curl_cffi) or their own
    rate-limit errors; they are told apart by type where the standard library knows them and by
    name otherwise, so no HTTP client has to be imported here.
    """
    if isinstance(err, NetworkError | ConnectionError | TimeoutError):
        return True
    names = " ".join(c.__name__.lower() for c in type(err).__mro__)
    if any(w.replace(" ", "") in names for w in _NETWORK_WORDS):
        return True
    if "requestexception" in names or "curlerror" in names:
        return True
    return isinstance(err, OSError) and not isinstance(err, FileNotFoundError)


def check_rows(rows: pd.DataFrame, source: str, id: str) -> pd.DataFrame:
    """The rows a connector returns, checked: days, increasing, unique, positive closes."""
    if "date" not in rows.columns:
        raise DataError(f"{source}: rows for {id} have no 'date' column")
    out = rows.copy()
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]").dt.normalize()
    for column in COLUMNS:
        if column not in out.columns:
            out[column] = np.nan
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(np.float64)
    out = out[["date", *COLUMNS]]
    # A row with no price is a vendor placeholder (keepna downloads), not an observation.
    out = out[out["close"].notna()].sort_values("date", kind="stable")
    dup = out["date"].duplicated(keep="last")
    out = out[~dup].reset_index(drop=True)
    bad = ~(out["close"] > 0) | (out["adjusted_close"] <= 0)
    if bad.any():
        row = out.loc[bad].iloc[0]
        raise DataError(
            f"{source}: {id} on {row['date'].date()} has close {row['close']!r} and adjusted "
            f"close {row['adjusted_close']!r}; expected prices > 0"
        )
    return out
