"""Fake vendor calls for the connector tests, returning the real shapes from tests/data/sources
(see its README for where each row comes from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

DATA = Path(__file__).parent / "data" / "sources"

# 0700.HK share counts Yahoo reported (lucius0000_caps), at the time the repo's runs read them.
SHARES_0700 = pd.Series(
    [6244912890, 6209342076],
    index=pd.DatetimeIndex(["2026-01-06 09:12:00", "2026-04-12 10:05:00"]).tz_localize(
        "Asia/Hong_Kong"
    ),
)


def yf_history(id: str) -> pd.DataFrame:
    """A ``Ticker.history(auto_adjust=True, actions=True)`` frame, as yfinance returns it."""
    frame = pd.read_csv(DATA / f"yf_history_{id}.csv")
    index = pd.DatetimeIndex(pd.to_datetime(frame.pop("Date"), utc=True)).tz_convert(
        "Asia/Hong_Kong"
    )
    frame.index = index.rename("Date")
    return frame


def _tushare_closes() -> pd.Series:
    t = pd.read_csv(DATA / "tushare_0700.HK.csv", dtype={"trade_date": str})
    return pd.Series(t["close"].to_numpy(), index=pd.to_datetime(t["trade_date"]))


def as_pulled_before(frame: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """The frame as Yahoo served it before ``end``: without the adjustment for a dividend whose
    ex-date is on or after ``end`` (the factor ``1 - d / p`` uses Tushare's unadjusted close
    ``p`` of the day before, an independent source; only 0700.HK's is in the fixtures)."""
    day = frame.index.tz_localize(None).normalize()
    out = frame.copy()
    raw = _tushare_closes()
    for ex in day[(frame["Dividends"] > 0).to_numpy() & (day >= end)]:
        before = raw[raw.index < ex]
        if before.empty:
            continue
        factor = 1.0 - float(frame.loc[day == ex, "Dividends"].iloc[0]) / before.iloc[-1]
        out.loc[day < ex, ["Open", "High", "Low", "Close"]] /= factor
    return out


def yf_download_hsi() -> pd.DataFrame:
    """A ``yf.download("^HSI")`` frame: MultiIndex columns (Price, Ticker), tz-naive Date."""
    frame = pd.read_csv(DATA / "yf_download_HSI.csv", header=[0, 1], index_col=0, skiprows=[2])
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index), name="Date")
    return frame


class FakeTicker:
    """``yfinance.Ticker`` over the fixtures; records every call in ``calls``."""

    calls: ClassVar[list[tuple[str, str, Any]]] = []
    fail: ClassVar[dict[str, BaseException]] = {}
    frames: ClassVar[dict[str, pd.DataFrame]] = {}

    def __init__(self, symbol: str, session: Any = None) -> None:
        self.ticker = symbol

    def history(self, start: str, end: str, **kwargs: Any) -> pd.DataFrame:
        FakeTicker.calls.append((self.ticker, "history", (start, end, kwargs)))
        if self.ticker in FakeTicker.fail:
            raise FakeTicker.fail[self.ticker]
        frame = FakeTicker.frames.get(self.ticker)
        if frame is None:
            frame = yf_history(self.ticker)
        if self.ticker == "0700.HK":
            frame = as_pulled_before(frame, pd.Timestamp(end))
        day = frame.index.tz_localize(None).normalize()
        keep = (day >= pd.Timestamp(start)) & (day < pd.Timestamp(end))
        return frame[keep]

    def get_history_metadata(self) -> dict[str, Any]:
        return {"currency": "HKD", "instrumentType": "EQUITY", "symbol": self.ticker}

    def get_shares_full(self, start: Any = None, end: Any = None) -> pd.Series | None:
        FakeTicker.calls.append((self.ticker, "get_shares_full", (start, end)))
        return SHARES_0700 if self.ticker == "0700.HK" else None


def ak_frame(name: str) -> pd.DataFrame:
    """An akshare frame as the function returns it (日期 as ``datetime.date`` objects)."""
    frame = pd.read_csv(DATA / name, dtype={"股票代码": str})
    for column in ("日期", "date"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


class FakeAkshare:
    """A stand-in ``akshare`` module (akshare itself is not installed for the tests) whose
    functions have akshare 1.19's names, parameters and return columns."""

    __name__ = "akshare"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _span(self, frame: pd.DataFrame, start_date: str, end_date: str) -> pd.DataFrame:
        day = pd.to_datetime(frame["日期"])
        keep = (day >= pd.Timestamp(start_date)) & (day <= pd.Timestamp(end_date))
        return frame[keep.to_numpy()].reset_index(drop=True)

    def _adjusted(self, frame: pd.DataFrame, adjust: str) -> pd.DataFrame:
        # No dividend in the fixture windows: the hfq level is the close times a constant.
        if adjust == "hfq":
            frame = frame.assign(收盘=frame["收盘"] * 1.25)
        return frame

    def stock_zh_a_hist(
        self,
        symbol: str = "000001",
        period: str = "daily",
        start_date: str = "19700101",
        end_date: str = "20500101",
        adjust: str = "",
        timeout: float | None = None,
    ) -> pd.DataFrame:
        self.calls.append(
            ("stock_zh_a_hist", {"symbol": symbol, "adjust": adjust, "timeout": timeout})
        )
        frame = ak_frame(f"ak_stock_zh_a_hist_{symbol}.csv")
        return self._adjusted(self._span(frame, start_date, end_date), adjust)

    def stock_hk_hist(
        self,
        symbol: str = "00593",
        period: str = "daily",
        start_date: str = "19700101",
        end_date: str = "22220101",
        adjust: str = "",
    ) -> pd.DataFrame:
        self.calls.append(("stock_hk_hist", {"symbol": symbol, "adjust": adjust}))
        frame = ak_frame(f"ak_stock_hk_hist_{symbol}.csv")
        return self._adjusted(self._span(frame, start_date, end_date), adjust)

    def stock_individual_info_em(self, symbol: str = "603777", timeout: float | None = None):
        self.calls.append(("stock_individual_info_em", {"symbol": symbol}))
        # East Money's item/value shape; the count is 688256's in lucius0000_caps (yfinance's
        # float count there, used here only as a number).
        return pd.DataFrame(
            {
                "item": ["股票代码", "股票简称", "总股本", "流通股"],
                "value": [symbol, "寒武纪", 196_796_129.0, 196_796_129.0],
            }
        )

    def stock_hk_index_daily_sina(self, symbol: str = "CES100") -> pd.DataFrame:
        self.calls.append(("stock_hk_index_daily_sina", {"symbol": symbol}))
        return ak_frame(f"ak_stock_hk_index_daily_sina_{symbol}.csv")

    def stock_hk_ggt_components_em(self) -> pd.DataFrame:
        self.calls.append(("stock_hk_ggt_components_em", {}))
        columns = [
            "序号",
            "代码",
            "名称",
            "最新价",
            "涨跌额",
            "涨跌幅",
            "今开",
            "最高",
            "最低",
            "昨收",
            "成交量",
            "成交额",
        ]
        # Three codes of the Connect list, in the call's columns (the prices are left empty).
        frame = pd.DataFrame(columns=columns)
        frame["代码"] = ["00700", "09988", "02513"]
        frame["序号"] = [1, 2, 3]
        frame["名称"] = ["腾讯控股", "阿里巴巴-W", "智谱"]
        return frame

    def index_stock_cons_csindex(self, symbol: str = "000300") -> pd.DataFrame:
        self.calls.append(("index_stock_cons_csindex", {"symbol": symbol}))
        # The call's columns; three members are CSI 300 A-shares of lucius0000_caps, the fourth
        # a made-up Beijing listing (no indexlab market) to check that it is left out.
        import datetime

        return pd.DataFrame(
            {
                "日期": [datetime.date(2025, 9, 26)] * 4,
                "指数代码": symbol,
                "指数名称": "沪深300",
                "指数英文名称": "CSI 300 Index",
                "成分券代码": ["688256", "601138", "300308", "920001"],
                "成分券名称": ["寒武纪", "工业富联", "中际旭创", "纬达光电"],
                "成分券英文名称": ["Cambricon", "FII", "Innolight", "Weida"],
                "交易所": ["上海证券交易所", "上海证券交易所", "深圳证券交易所", "北京证券交易所"],
                "交易所英文名称": [
                    "Shanghai Stock Exchange",
                    "Shanghai Stock Exchange",
                    "Shenzhen Stock Exchange",
                    "Beijing Stock Exchange",
                ],
            }
        )
