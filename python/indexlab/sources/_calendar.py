"""Trading days per market, from ``exchange_calendars`` (XHKG, XSHG).

The cache asks which sessions a series should have (to list what is missing after a fetch) and
which session is the last one whose close has passed (so an intraday bar is never cached as a
close). Shenzhen follows the Shanghai holiday calendar (exchange_calendars has no XSHE), so SZ
names use XSHG.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd

from indexlab.errors import DataError

#: The calendar each market trades on.
MARKET_CALENDARS = {"HK": "XHKG", "SH": "XSHG", "SZ": "XSHG"}
#: Calendars start here: every cached series starts later.
_FIRST_DAY = "2000-01-04"
#: A bar is final this long after the close (vendors publish the close with a delay).
CLOSE_DELAY = pd.Timedelta(minutes=30)


@lru_cache(maxsize=4)
def _calendar(name: str) -> Any:
    try:
        import exchange_calendars
    except ImportError as err:
        raise DataError(
            f"the trading calendar {name} needs exchange_calendars: pip install "
            f"'indexlab[yfinance]' or 'indexlab[akshare]' ({err})"
        ) from err
    return exchange_calendars.get_calendar(name, start=_FIRST_DAY)


def sessions(calendar: str | None, start: Any, end: Any) -> pd.DatetimeIndex:
    """Trading days from ``start`` to ``end`` (both included) on ``calendar``.

    ``None`` (an FX rate) means every weekday.

    Examples
    --------
    >>> from indexlab.sources._calendar import sessions
    >>> sessions(None, "2026-01-02", "2026-01-06").strftime("%a").tolist()
    ['Fri', 'Mon', 'Tue']
    """
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end < start:
        return pd.DatetimeIndex([], name="date")
    if calendar is None:
        return pd.bdate_range(start, end, name="date")
    cal = _calendar(calendar)
    start = max(start, cal.first_session)
    end = min(end, cal.last_session)
    if end < start:
        return pd.DatetimeIndex([], name="date")
    out = cal.sessions_in_range(start, end)
    return pd.DatetimeIndex(out.tz_localize(None) if out.tz else out, name="date")


def last_closed_session(calendar: str | None, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The last trading day whose close (plus :data:`CLOSE_DELAY`) has passed at ``now``."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    if calendar is None:
        # FX fixes: a weekday counts once it is over in Hong Kong.
        local = now.tz_convert("Asia/Hong_Kong").tz_localize(None).normalize()
        return pd.bdate_range(end=local - pd.Timedelta(days=1), periods=1)[0]
    cal = _calendar(calendar)
    closes = cal.schedule["close"]
    done = closes[closes + CLOSE_DELAY <= now]
    if done.empty:
        raise DataError(f"no {calendar} session has closed by {now}")
    day = pd.Timestamp(done.index[-1])
    return day.tz_localize(None) if day.tzinfo else day
