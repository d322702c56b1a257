"""Incremental refresh of the cache: fetch only the days a series lacks, retry with backoff,
respect a rate limit, and report per id what was added, what failed and why.

Nothing is lost: an id whose fetch fails keeps its cached file untouched (it is replaced only
after a whole, checked fetch, atomically), and every id asked for appears in the report, with
the trading days still missing from its series (from the exchange calendar) and the reason.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

import numpy as np
import pandas as pd

from indexlab.errors import DataError
from indexlab.sources._cache import Cache, Cached
from indexlab.sources._calendar import last_closed_session, sessions
from indexlab.sources._connector import (
    COLUMNS,
    Connector,
    Fetched,
    calendar_of,
    canonical_id,
    check_rows,
    is_network_error,
)

#: First day fetched for an id with nothing cached (``start=`` changes it).
DEFAULT_START = pd.Timestamp("2019-01-02")


@dataclass(frozen=True)
class IdStatus:
    """What one id's update did."""

    id: str
    #: ``updated``, ``up to date``, ``no data`` or ``failed``.
    status: str
    rows_added: int = 0
    first: date | None = None
    last: date | None = None
    #: Trading days (exchange calendar) between the first cached day and ``until`` with no row.
    missing_days: int = 0
    #: Why it failed, or what the vendor did not give (share counts...).
    detail: str = ""


@dataclass(frozen=True)
class UpdateReport:
    """Per id, the outcome of :func:`update`.

    Examples
    --------
    >>> from datetime import date
    >>> from indexlab.sources import UpdateReport, IdStatus
    >>> r = UpdateReport("yfinance", date(2026, 1, 2), (IdStatus("0700.HK", "failed", detail="x"),))
    >>> r.failed
    ['0700.HK']
    """

    source: str
    until: date
    ids: tuple[IdStatus, ...]

    @property
    def failed(self) -> list[str]:
        """Ids whose fetch failed (their cached data, if any, are unchanged)."""
        return [s.id for s in self.ids if s.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no id failed."""
        return not self.failed

    def table(self) -> pd.DataFrame:
        """One row per id: status, rows added, first and last day, missing days, detail."""
        return pd.DataFrame([s.__dict__ for s in self.ids]).set_index("id")

    def render(self) -> str:
        """The report as text, one line per id."""
        lines = [f"{self.source} up to {self.until}:"]
        for s in self.ids:
            span = f"{s.first} .. {s.last}" if s.first else "nothing cached"
            extra = f"; {s.missing_days} trading day(s) without a row" if s.missing_days else ""
            why = f" ({s.detail})" if s.detail else ""
            lines.append(f"  {s.id:<12} {s.status:<10} +{s.rows_added} rows, {span}{extra}{why}")
        return "\n".join(lines)


class _Progress:
    """A one-line progress bar on a terminal, one line per id otherwise."""

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def step(self, id: str, status: str) -> None:
        self.done += 1
        if self.stream is None:
            return
        if self.tty:
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = "#" * filled + "." * (width - filled)
            end = "\n" if self.done == self.total else ""
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} {id} {status:<12}{end}")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {id}: {status}\n")
        self.stream.flush()


class _RateLimit:
    """At most one request every ``interval`` seconds."""

    def __init__(self, interval: float, sleep: Callable[[float], None]) -> None:
        self.interval, self.sleep, self.last = interval, sleep, -np.inf

    def wait(self) -> None:
        pause = self.last + self.interval - time.monotonic()
        if pause > 0:
            self.sleep(pause)
        self.last = time.monotonic()


def _merge(old: Cached | None, fetched: Fetched, source: str, id: str, today: date) -> Cached:
    """The cached rows plus the fetched ones; a split in the new rows rescales the old."""
    new = check_rows(fetched.rows, source, id)
    new["retrieved"] = pd.Timestamp(today)
    fields = dict(old.fields) if old is not None else {}
    fields.update(fetched.fields)
    if old is None or old.rows.empty:
        rows = new
    else:
        before = old.rows[old.rows["date"] < new["date"].iloc[0]].copy()
        # Yahoo's prices and volumes are split-adjusted as of the fetch: a split after the
        # cached rows makes them comparable again (shares stay as reported).
        ratio = float(np.prod([r for r in new["split"].to_numpy() if np.isfinite(r) and r > 0]))
        if ratio != 1.0:
            for column in ("close", "dividend"):
                before[column] = before[column] / ratio
            before["turnover_shares"] = before["turnover_shares"] * ratio
        shares = new["shares_outstanding"]
        if shares.isna().iloc[0] and before["shares_outstanding"].notna().any():
            # The last count cached still holds until the vendor reports a new one.
            lead = shares.notna().cumsum() == 0
            new.loc[lead, "shares_outstanding"] = before["shares_outstanding"].dropna().iloc[-1]
        rows = pd.concat([before, new], ignore_index=True)
    currency = fetched.currency or (old.currency if old is not None else None)
    return Cached(
        id, source, rows[["date", *COLUMNS, "retrieved"]], fetched.symbol, currency, fields
    )


def update(
    ids: Iterable[str],
    source: str = "yfinance",
    *,
    until: Any = "today",
    start: Any = None,
    cache_dir: Any = None,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 1.0,
    min_interval: float = 0.5,
    progress: bool | TextIO | None = True,
    connector: Connector | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> UpdateReport:
    """Fetch what the cache lacks for each id, up to ``until``, and report per id.

    Parameters
    ----------
    ids : iterable of str
        indexlab ids (``0700.HK``, ``688256.SH``, ``300308.SZ``), indices (``^HSI`` on
        yfinance, ``HSTECH`` on akshare) or FX rates (``CNYHKD=X`` on yfinance).
    source : {"yfinance", "akshare"}
        The vendor library.
    until : date-like or "today"
        Last day wanted; capped at the last session whose close has passed, so an intraday
        bar is never cached as a close.
    start : date-like, optional
        First day for an id with nothing cached (default 2019-01-02); a cached id resumes after
        its last day.
    cache_dir : path, optional
        The cache folder (default :func:`default_cache_dir`).
    timeout : float
        Seconds per request before it counts as failed.
    retries, backoff : int, float
        Attempts after a failure, waiting ``backoff * 2**k`` seconds before attempt ``k + 1``.
    min_interval : float
        Seconds between two requests (the vendor's rate limit).
    progress : bool or text stream
        Where the progress bar goes: True for stderr, False or None for silence.

    Returns
    -------
    UpdateReport
        Every id asked for, with its status; failed ids keep their cached data.

    Raises
    ------
    DataError
        When the source cannot be reached at all (the first request fails on the network):
        at once, naming the source and the error, with the cache untouched.

    Examples
    --------
    >>> from indexlab import sources
    >>> report = sources.update(["0700.HK", "^HSI"], until="2026-07-31")  # doctest: +SKIP
    >>> print(report.render())  # doctest: +SKIP
    """
    wanted = _ids(ids)
    for name, value, low in (
        ("timeout", timeout, 1e-3),
        ("backoff", backoff, 0.0),
        ("min_interval", min_interval, 0.0),
    ):
        if not (isinstance(value, int | float) and low <= value <= 3600):
            raise DataError(f"{name}: expected seconds in [{low:g}, 3600], found {value!r}")
    if not (isinstance(retries, int) and 0 <= retries <= 10):
        raise DataError(f"retries: expected a whole number 0-10, found {retries!r}")
    today = pd.Timestamp.now().normalize()
    run = _Run(
        conn=connector if connector is not None else get_connector(source),
        cache=Cache(cache_dir),
        first_day=DEFAULT_START if start is None else _day(start, "start"),
        until=today if str(until) == "today" else _day(until, "until"),
        today=today,
        timeout=float(timeout),
        retries=retries,
        backoff=float(backoff),
        limit=_RateLimit(min_interval, sleep),
        sleep=sleep,
    )
    bar = _Progress(len(wanted), sys.stderr if progress is True else (progress or None))
    statuses = []
    for id in wanted:
        statuses.append(run.one(id))
        bar.step(id, statuses[-1].status)
    return UpdateReport(run.conn.name, run.until.date(), tuple(statuses))


def _day(value: Any, what: str) -> pd.Timestamp:
    try:
        day = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise DataError(f"{what}: expected a date such as 2026-06-30, found {value!r}") from err
    if pd.isna(day):
        raise DataError(f"{what}: expected a date such as 2026-06-30, found {value!r}")
    return day.tz_localize(None).normalize() if day.tzinfo else day.normalize()


class _Offline(Exception):
    """The first request failed on the network: the source is out of reach."""


@dataclass
class _Run:
    """One :func:`update` call: its settings, and whether the source has answered yet."""

    conn: Connector
    cache: Cache
    first_day: pd.Timestamp
    until: pd.Timestamp
    today: pd.Timestamp
    timeout: float
    retries: int
    backoff: float
    limit: _RateLimit
    sleep: Callable[[float], None]
    reached: bool = False

    def one(self, id: str) -> IdStatus:
        """Fetch what ``id`` lacks and write it; a failure is a status, not an exception."""
        cal = calendar_of(id)
        end = min(self.until, last_closed_session(cal))
        old = self.cache.read(self.conn.name, id)
        begin = (
            self.first_day if old is None or old.last is None else old.last + pd.Timedelta(1, "D")
        )
        if begin > end or len(sessions(cal, begin, end)) == 0:
            return _status(id, "up to date", 0, old, end, "")
        try:
            fetched = self.fetch(id, begin, end)
            self.reached = True
            if check_rows(fetched.rows, self.conn.name, id).empty:
                detail = "; ".join(fetched.notes) or "the vendor returned no rows"
                return _status(id, "no data", 0, old, end, detail)
            merged = _merge(old, fetched, self.conn.name, id, self.today.date())
            self.cache.write(merged)
        except _Offline as err:
            raise DataError(
                f"{self.conn.name}: cannot reach the source ({err.__cause__!r}); nothing was "
                f"fetched and the cache at {self.cache.root} is unchanged"
            ) from err.__cause__
        except Exception as err:  # a failed id is reported, never raised mid-run
            # An answer that could not be used still shows the source is reachable.
            self.reached = self.reached or not is_network_error(err)
            return _status(id, "failed", 0, old, end, f"{type(err).__name__}: {err}")
        added = len(merged.rows) - (0 if old is None else len(old.rows))
        return _status(id, "updated", added, merged, end, "; ".join(fetched.notes))

    def fetch(self, id: str, begin: pd.Timestamp, end: pd.Timestamp) -> Fetched:
        """One fetch, retried with backoff after a network failure (at once if offline)."""
        for attempt in range(self.retries + 1):
            self.limit.wait()
            try:
                return self.conn.fetch(id, begin, end, self.timeout)
            except Exception as err:
                network = is_network_error(err)
                rate_limited = "ratelimit" in type(err).__name__.lower()
                if network and not self.reached and not rate_limited:
                    # Nothing has come through yet: say so at once instead of retrying every id.
                    raise _Offline() from err
                if not network or attempt == self.retries:
                    raise
                self.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _status(
    id: str, status: str, added: int, cached: Cached | None, end: pd.Timestamp, detail: str
) -> IdStatus:
    if cached is None or cached.rows.empty:
        return IdStatus(id, status, added, None, None, 0, detail)
    days = pd.DatetimeIndex(cached.rows["date"])
    expected = sessions(calendar_of(id), days[0], end)
    missing = int((~expected.isin(days)).sum())
    return IdStatus(id, status, added, days[0].date(), days[-1].date(), missing, detail)


def _ids(ids: Iterable[str]) -> list[str]:
    if isinstance(ids, str):
        ids = [ids]
    out: list[str] = []
    for raw in ids:
        if not isinstance(raw, str):
            raise DataError(f"ids: expected text such as '0700.HK', found {raw!r}")
        id = canonical_id(raw)
        if id not in out:
            out.append(id)
    if not out:
        raise DataError("ids: expected at least one id, found none")
    return out


#: The sources :func:`update` knows, by name.
SOURCES: Sequence[str] = ("yfinance", "akshare")


def get_connector(source: str) -> Connector:
    """The connector for a source name (``yfinance`` or ``akshare``)."""
    # The vendor library is imported here, so a missing one is one error before any fetch.
    if source == "yfinance":
        from indexlab.sources import yfinance_source

        yfinance_source._import()
        return yfinance_source.YFinance()
    if source == "akshare":
        from indexlab.sources import akshare_source

        akshare_source._import()
        return akshare_source.AkShare()
    raise DataError(f"source: expected one of {list(SOURCES)}, found {source!r}")
