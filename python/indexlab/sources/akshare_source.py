"""The akshare connector: A-share and Hong Kong daily prices, turnover, share capital, index
levels, and Stock Connect eligibility.

The akshare calls (East Money and Sina pages, names and columns as in akshare 1.19):

* ``stock_zh_a_hist(symbol="688256", period="daily", start_date, end_date, adjust="")``
  (A-shares) and ``stock_hk_hist(symbol="00700", ...)`` (Hong Kong): ``日期`` date, ``收盘``
  close, ``成交量`` volume (A-shares in lots of 100 shares, Hong Kong in shares), ``成交额``
  traded value; the same call with ``adjust="hfq"`` gives the dividend-adjusted level anchored
  at the first day (``adjusted_close``).
* ``stock_individual_info_em(symbol)``: ``item``/``value`` rows, ``总股本`` the total share
  count now (A-shares): one observation dated the day it is fetched.
* ``stock_hk_index_daily_sina(symbol="HSI" / "HSTECH")``: ``date, open, high, low, close,
  volume`` for Hang Seng indices.
* ``stock_hk_ggt_components_em()``: the Southbound Stock Connect list (``代码``, ``名称``),
  as of the day it is fetched (:func:`connect_components`).
* ``index_stock_cons_csindex(symbol="000300")``: a CSI index's current constituents
  (``日期``, ``成分券代码``, ``成分券名称``, ``交易所英文名称``; :func:`csi_constituents`).
  Hang Seng constituents are not served.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from indexlab.errors import DataError
from indexlab.sources._connector import Fetched, market_of

__all__ = ["AkShare", "akshare_symbol", "connect_components", "csi_constituents"]

NAME = "akshare"
#: Hang Seng indices akshare serves from Sina, by indexlab benchmark name.
HK_INDICES = {"HSI": "HSI", "HSTECH": "HSTECH", "HSCEI": "HSCEI", "^HSI": "HSI"}


def akshare_symbol(id: str) -> str:
    """akshare's symbol for an indexlab id.

    Examples
    --------
    >>> from indexlab.sources.akshare_source import akshare_symbol
    >>> [akshare_symbol(i) for i in ("0700.HK", "688256.SH", "300308.SZ", "HSTECH")]
    ['00700', '688256', '300308', 'HSTECH']
    """
    market = market_of(id)
    if market is None:
        key = id.upper()
        if key not in HK_INDICES:
            raise DataError(
                f"akshare: unknown id {id!r}; expected a security (0700.HK, 688256.SH, "
                f"300308.SZ) or one of the indices {sorted(HK_INDICES)}"
            )
        return HK_INDICES[key]
    code = id.split(".")[0]
    return code.zfill(5) if market == "HK" else code


def _import() -> Any:
    try:
        import akshare
    except ImportError as err:
        raise DataError(
            f"the akshare source needs the akshare package: pip install 'indexlab[akshare]' ({err})"
        ) from err
    return akshare


def _call(function: Callable[..., Any], timeout: float, **kwargs: Any) -> Any:
    """Call an akshare function, passing ``timeout`` where its signature takes one."""
    try:
        takes_timeout = "timeout" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        takes_timeout = False
    if takes_timeout:
        kwargs["timeout"] = timeout
    return function(**kwargs)


def _daily(frame: Any, lots: bool) -> pd.DataFrame:
    """Cache rows from an East Money daily frame (``日期``, ``收盘``, ``成交量``, ``成交额``)."""
    if frame is None or len(frame) == 0:
        return pd.DataFrame({"date": pd.DatetimeIndex([])})
    missing = [c for c in ("日期", "收盘", "成交量", "成交额") if c not in frame.columns]
    if missing:
        raise DataError(f"akshare daily frame has columns {list(frame.columns)}; missing {missing}")
    volume = pd.to_numeric(frame["成交量"], errors="coerce").to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(frame["日期"]).to_numpy(),
            "close": pd.to_numeric(frame["收盘"], errors="coerce").to_numpy(dtype=np.float64),
            "turnover_shares": volume * 100.0 if lots else volume,
            "turnover_value": pd.to_numeric(frame["成交额"], errors="coerce").to_numpy(
                dtype=np.float64
            ),
        }
    )


def _share_capital(frame: Any) -> float | None:
    """``总股本`` from a ``stock_individual_info_em`` frame (``item``, ``value``)."""
    if frame is None or len(frame) == 0 or not {"item", "value"} <= set(frame.columns):
        return None
    hit = frame.loc[frame["item"] == "总股本", "value"]
    if hit.empty:
        return None
    value = pd.to_numeric(hit.iloc[0], errors="coerce")
    return float(value) if np.isfinite(value) and value > 0 else None


class AkShare:
    """The ``akshare`` source (see the module docstring for the calls behind each field)."""

    name = NAME

    def fetch(self, id: str, start: pd.Timestamp, end: pd.Timestamp, timeout: float) -> Fetched:
        """One id's rows for ``start .. end`` (both included).

        Examples
        --------
        >>> from indexlab.sources.akshare_source import AkShare
        >>> AkShare().name
        'akshare'
        """
        ak = _import()
        symbol = akshare_symbol(id)
        market = market_of(id)
        if market is None:
            return self._index(ak, id, symbol, start, end)
        function = ak.stock_hk_hist if market == "HK" else ak.stock_zh_a_hist
        name = "stock_hk_hist" if market == "HK" else "stock_zh_a_hist"
        span = {
            "symbol": symbol,
            "period": "daily",
            "start_date": start.strftime("%Y%m%d"),
            "end_date": end.strftime("%Y%m%d"),
        }
        rows = _daily(_call(function, timeout, adjust="", **span), lots=market != "HK")
        fields = {
            "close": f"akshare {name}(adjust='')",
            "turnover_shares": f"akshare {name}(adjust='') 成交量"
            + (" x 100 (lots)" if market != "HK" else ""),
            "turnover_value": f"akshare {name}(adjust='') 成交额",
        }
        notes: list[str] = []
        if len(rows):
            hfq = _daily(_call(function, timeout, adjust="hfq", **span), lots=False)
            level = pd.Series(hfq["close"].to_numpy(), index=pd.DatetimeIndex(hfq["date"]))
            rows["adjusted_close"] = level.reindex(pd.DatetimeIndex(rows["date"])).to_numpy()
            fields["adjusted_close"] = f"akshare {name}(adjust='hfq')"
            if market == "HK":
                notes.append("no share count: akshare serves share capital for A-shares only")
            else:
                info = _call(ak.stock_individual_info_em, timeout, symbol=symbol)
                shares = _share_capital(info)
                if shares is None:
                    notes.append("no 总股本 in stock_individual_info_em")
                else:
                    # Known only from today: the count holds from the last row fetched.
                    rows["shares_outstanding"] = np.nan
                    rows.loc[rows.index[-1], "shares_outstanding"] = shares
                    fields["shares_outstanding"] = "akshare stock_individual_info_em 总股本"
        currency = "HKD" if market == "HK" else "CNY"
        return Fetched(rows, currency, symbol, fields, tuple(notes))

    @staticmethod
    def _index(ak: Any, id: str, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> Fetched:
        frame = ak.stock_hk_index_daily_sina(symbol=symbol)
        if frame is None or len(frame) == 0:
            return Fetched(pd.DataFrame({"date": pd.DatetimeIndex([])}), "HKD", symbol)
        if not {"date", "close"} <= set(frame.columns):
            raise DataError(
                f"akshare stock_hk_index_daily_sina has columns {list(frame.columns)}; "
                "expected date and close"
            )
        days = pd.to_datetime(frame["date"])
        keep = ((days >= start) & (days <= end)).to_numpy()
        rows = pd.DataFrame(
            {
                "date": days.to_numpy()[keep],
                "close": pd.to_numeric(frame["close"], errors="coerce").to_numpy()[keep],
            }
        )
        call = f"akshare stock_hk_index_daily_sina(symbol={symbol!r})"
        return Fetched(rows, "HKD", symbol, {"close": call})


def connect_components(timeout: float = 15.0) -> pd.DataFrame:
    """Hong Kong names in Southbound Stock Connect today, as classification rows.

    Returns ``id``, ``valid_from`` (today) and ``connect_eligible`` (True) for every code of
    ``akshare.stock_hk_ggt_components_em()``; pass it (with rows for names that left) as
    ``classification`` to :func:`indexlab.sources.load_cached`. Needs the network.

    Examples
    --------
    >>> from indexlab.sources.akshare_source import connect_components
    >>> connect_components().head()  # doctest: +SKIP
    """
    ak = _import()
    frame = _call(ak.stock_hk_ggt_components_em, timeout)
    if frame is None or "代码" not in frame.columns:
        raise DataError("akshare stock_hk_ggt_components_em returned no 代码 column")
    codes = frame["代码"].astype(str).str.strip().str.zfill(5)
    ids = [f"{c[-4:] if c.startswith('0') else c}.HK" for c in codes]
    return pd.DataFrame(
        {
            "id": ids,
            "valid_from": pd.Timestamp.now().normalize(),
            "connect_eligible": True,
        }
    ).drop_duplicates("id", ignore_index=True)


def csi_constituents(symbol: str = "000300", timeout: float = 15.0) -> pd.DataFrame:
    """A CSI index's constituents as indexlab ids, with the date China Securities Index lists.

    Returns ``id`` (``600519.SH``, ``300308.SZ``), ``name`` and ``as_of`` from
    ``akshare.index_stock_cons_csindex(symbol)``; Beijing-listed members (no indexlab market)
    are left out. Needs the network.

    Examples
    --------
    >>> from indexlab.sources.akshare_source import csi_constituents
    >>> csi_constituents("000300").head()  # doctest: +SKIP
    """
    ak = _import()
    frame = _call(ak.index_stock_cons_csindex, timeout, symbol=symbol)
    needed = {"日期", "成分券代码", "成分券名称", "交易所英文名称"}
    if frame is None or not needed <= set(frame.columns):
        raise DataError(
            f"akshare index_stock_cons_csindex({symbol!r}) has columns "
            f"{[] if frame is None else list(frame.columns)}; expected {sorted(needed)}"
        )
    exchange = frame["交易所英文名称"].astype(str)
    suffix = np.where(
        exchange.str.contains("Shanghai", case=False),
        ".SH",
        np.where(exchange.str.contains("Shenzhen", case=False), ".SZ", ""),
    )
    codes = frame["成分券代码"].astype(str).str.zfill(6)
    out = pd.DataFrame(
        {
            "id": codes + suffix,
            "name": frame["成分券名称"].astype(str),
            "as_of": pd.to_datetime(frame["日期"]),
        }
    )
    return out[suffix != ""].reset_index(drop=True)
