"""The yfinance connector: Yahoo Finance daily prices, actions, share counts and currency.

Ids are indexlab's (``0700.HK``, ``688256.SH``, ``300308.SZ``) or Yahoo symbols for indices
and FX (``^HSI``, ``CNYHKD=X``); ``.SH`` becomes Yahoo's ``.SS``. Per id, one
``yf.Ticker(symbol).history(start, end, auto_adjust=True, actions=True)`` call gives the
back-adjusted OHLC with the ``Dividends`` and ``Stock Splits`` columns (the layout of the saved
pulls described in the shared raw data's SOURCES.md), and ``Ticker.get_shares_full`` the share
counts Yahoo reports, dated. The price (split-adjusted, dividends not reinvested) is recovered
from the back-adjusted close and the dividends of the same call (:func:`remove_dividends`); the
cache keeps that price and the dividends, so a later fetch never rescales what is cached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab.errors import DataError
from indexlab.sources._connector import Fetched, NetworkError, market_of

__all__ = ["YFinance", "from_download", "remove_dividends", "yahoo_symbol"]

NAME = "yfinance"
_HISTORY_CALL = "yfinance Ticker.history(auto_adjust=True, actions=True)"


def yahoo_symbol(id: str) -> str:
    """Yahoo's symbol for an indexlab id.

    Examples
    --------
    >>> from indexlab.sources.yfinance_source import yahoo_symbol
    >>> [yahoo_symbol(i) for i in ("0700.HK", "688256.SH", "300308.SZ", "^HSI")]
    ['0700.HK', '688256.SS', '300308.SZ', '^HSI']
    """
    return id[:-3] + ".SS" if market_of(id) == "SH" else id


def remove_dividends(adjusted: npt.ArrayLike, dividends: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The price (dividends not reinvested) from Yahoo's back-adjusted close.

    Yahoo multiplies every close before an ex-date by ``1 - d / p`` (``d`` the cash dividend,
    ``p`` the unadjusted close the day before). Walking back from the last row with ``c`` the
    product of the factors met so far: ``p = adjusted / c + d``, then ``c *= 1 - d / p``. Exact
    within one call's rows, since a dividend after the last row cannot have adjusted them.

    Examples
    --------
    >>> from indexlab.sources.yfinance_source import remove_dividends
    >>> remove_dividends([98.0, 101.0], [0.0, 2.0]).round(6).tolist()  # 100 * (1 - 2/100)
    [100.0, 101.0]
    """
    adj = np.asarray(adjusted, dtype=np.float64)
    div = np.nan_to_num(np.asarray(dividends, dtype=np.float64))
    price = np.full(adj.shape, np.nan)
    factor = 1.0
    for t in range(len(adj) - 1, -1, -1):
        if np.isfinite(adj[t]):
            price[t] = adj[t] / factor
        if div[t] > 0:
            before = np.flatnonzero(np.isfinite(adj[:t]))
            if before.size:
                p = adj[before[-1]] / factor + div[t]
                factor *= 1.0 - div[t] / p
    return price


def _days(index: pd.Index) -> pd.DatetimeIndex:
    """Exchange-local calendar days of a yfinance index (tz-aware for history, naive for
    download)."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)  # wall time of the exchange: the trading day
    return idx.normalize()


def from_history(frame: pd.DataFrame) -> pd.DataFrame:
    """Cache rows from a ``Ticker.history(auto_adjust=True, actions=True)`` frame."""
    if frame is None or len(frame) == 0:
        return pd.DataFrame({"date": pd.DatetimeIndex([])})
    missing = [c for c in ("Close", "Volume") if c not in frame.columns]
    if missing:
        raise DataError(
            f"yfinance history has columns {list(frame.columns)}; expected Close and Volume"
        )
    adjusted = frame["Close"].to_numpy(dtype=np.float64)
    dividends = (
        frame["Dividends"].to_numpy(dtype=np.float64)
        if "Dividends" in frame.columns
        else np.zeros(len(frame))
    )
    price = remove_dividends(adjusted, dividends)
    volume = frame["Volume"].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "date": _days(frame.index),
            "close": price,
            "dividend": dividends,
            "split": frame["Stock Splits"].to_numpy(dtype=np.float64)
            if "Stock Splits" in frame.columns
            else np.nan,
            "turnover_shares": volume,
            # Yahoo has no traded value: the close times the volume approximates it.
            "turnover_value": price * volume,
        }
    )


def from_download(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Cache rows (``date``, ``close``) for one symbol of a ``yf.download`` frame.

    ``yf.download`` returns MultiIndex columns ``(Price, Ticker)`` (or flat columns with
    ``multi_level_index=False``) and a tz-naive ``Date`` index; used for index levels and FX.
    """
    if isinstance(frame.columns, pd.MultiIndex):
        if symbol not in frame.columns.get_level_values(-1):
            return pd.DataFrame({"date": pd.DatetimeIndex([])})
        frame = frame.xs(symbol, axis=1, level=-1)
    if "Close" not in frame.columns:
        raise DataError(f"yfinance download has columns {list(frame.columns)}; expected Close")
    volume = frame["Volume"] if "Volume" in frame.columns else np.nan
    return pd.DataFrame(
        {"date": _days(frame.index), "close": frame["Close"].to_numpy(), "turnover_shares": volume}
    ).reset_index(drop=True)


@contextlib.contextmanager
def _raising(yf: Any) -> Iterator[None]:
    """Make yfinance raise its errors (by default it logs them and returns an empty frame, so
    being offline would look like having no data)."""
    debug = getattr(getattr(yf, "config", None), "debug", None)
    if debug is None or not hasattr(debug, "hide_exceptions"):
        yield
        return
    old = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        yield
    finally:
        debug.hide_exceptions = old


def _import() -> Any:
    try:
        import yfinance
    except ImportError as err:
        raise DataError(
            f"the yfinance source needs the yfinance package: pip install 'indexlab[yfinance]' "
            f"({err})"
        ) from err
    return yfinance


class YFinance:
    """The ``yfinance`` source (see the module docstring for what each field is)."""

    name = NAME

    def fetch(self, id: str, start: pd.Timestamp, end: pd.Timestamp, timeout: float) -> Fetched:
        """One id's rows for ``start .. end`` (both included).

        Examples
        --------
        >>> from indexlab.sources.yfinance_source import YFinance
        >>> YFinance().name
        'yfinance'
        """
        yf = _import()
        symbol = yahoo_symbol(id)
        ticker = yf.Ticker(symbol)
        with _raising(yf):
            try:
                hist = ticker.history(
                    start=start.strftime("%Y-%m-%d"),
                    end=(end + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                    interval="1d",
                    auto_adjust=True,
                    actions=True,
                    timeout=timeout,
                )
            except Exception as err:
                if type(err).__name__ in ("YFPricesMissingError", "YFTzMissingError"):
                    # Yahoo answered: no rows in the range (or no such symbol).
                    hist = None
                    note = f"no prices from Yahoo: {err}"
                    return Fetched(from_history(hist), None, symbol, {}, (note,))
                raise
            meta = _metadata(ticker)
            rows = from_history(hist)
            fields = {c: _HISTORY_CALL for c in ("close", "dividend", "split", "turnover_shares")}
            fields["turnover_value"] = f"close x volume from {_HISTORY_CALL}"
            notes: list[str] = []
            if market_of(id) is not None and len(rows):
                shares = self._shares(ticker, start, end, timeout)
                if shares is None or shares.empty:
                    notes.append("no share count from Yahoo (Ticker.get_shares_full)")
                else:
                    rows = _attach_shares(rows, shares)
                    fields["shares_outstanding"] = "yfinance Ticker.get_shares_full"
        currency = meta.get("currency")
        return Fetched(
            rows, currency if isinstance(currency, str) else None, symbol, fields, tuple(notes)
        )

    @staticmethod
    def _shares(
        ticker: Any, start: pd.Timestamp, end: pd.Timestamp, timeout: float
    ) -> pd.Series | None:
        # Counts reported before the range still hold at its start: look back a year.
        shares = ticker.get_shares_full(
            start=(start - pd.Timedelta(days=366)).strftime("%Y-%m-%d"),
            end=(end + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
        )
        if shares is None:
            return None
        if not isinstance(shares, pd.Series):
            raise NetworkError(f"get_shares_full returned {type(shares).__name__}", False)
        return shares


def _metadata(ticker: Any) -> dict[str, Any]:
    try:
        meta = ticker.get_history_metadata()
    except Exception:  # the metadata only names the currency; the prices are what count
        return {}
    return meta if isinstance(meta, dict) else {}


def _attach_shares(rows: pd.DataFrame, shares: pd.Series) -> pd.DataFrame:
    """The last share count reported on or before each day (several a day: the last)."""
    obs = pd.Series(shares.to_numpy(dtype=np.float64), index=_days(shares.index))
    obs = obs[np.isfinite(obs.to_numpy()) & (obs.to_numpy() > 0)]
    obs = obs[~obs.index.duplicated(keep="last")].sort_index()
    if obs.empty:
        return rows
    known = pd.merge_asof(
        rows[["date"]],
        pd.DataFrame({"date": obs.index.astype("datetime64[ns]"), "shares": obs.to_numpy()}),
        on="date",
        direction="backward",
    )
    return rows.assign(shares_outstanding=known["shares"].to_numpy())
