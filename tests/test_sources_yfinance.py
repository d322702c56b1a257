"""The yfinance connector against real yfinance output shapes (tests/data/sources), offline:
``yfinance.Ticker`` is replaced by a fake returning the saved frames."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import sources
from indexlab.sources import yfinance_source as yfs
from indexlab.sources._calendar import last_closed_session
from sources_fakes import DATA, FakeTicker, yf_download_hsi, yf_history

yf = pytest.importorskip("yfinance")


def master(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ids,
            "name": ids,
            "industry": "Information Technology",
            "ai_layer": "cloud",
            "ai_score": 0.6,
            "connect_eligible": True,
        }
    )


@pytest.fixture
def fake_yf(monkeypatch: pytest.MonkeyPatch) -> type[FakeTicker]:
    monkeypatch.setattr(yf, "Ticker", FakeTicker)
    FakeTicker.calls, FakeTicker.fail, FakeTicker.frames = [], {}, {}
    return FakeTicker


def run(ids: list[str], cache: Path, until: str, **kw: object) -> sources.UpdateReport:
    kw.setdefault("start", "2026-04-01")
    return sources.update(
        ids,
        "yfinance",
        until=until,
        cache_dir=cache,
        progress=None,
        min_interval=0.0,
        sleep=lambda s: None,
        **kw,
    )  # type: ignore[arg-type]


def test_price_recovered_from_the_adjusted_close_equals_the_unadjusted_tushare_close() -> None:
    # Independent source: Tushare's unadjusted closes for the same days (2026-05-15 ex-date).
    rows = yfs.from_history(yf_history("0700.HK"))
    tushare = pd.read_csv(DATA / "tushare_0700.HK.csv", dtype={"trade_date": str})
    raw = pd.Series(tushare["close"].to_numpy(), index=pd.to_datetime(tushare["trade_date"]))
    got = pd.Series(rows["close"].to_numpy(), index=rows["date"]).reindex(raw.index)
    np.testing.assert_allclose(got.to_numpy(), raw.to_numpy(), rtol=2e-6)
    assert rows["date"].dt.tz is None and rows["date"].iloc[0] == pd.Timestamp("2026-04-01")


def test_update_then_load_gives_a_point_in_time_dataset(fake_yf, tmp_path: Path) -> None:
    report = run(["0700.HK", "9988.HK"], tmp_path, "2026-06-30")
    assert report.ok and [s.status for s in report.ids] == ["updated", "updated"]
    assert report.ids[0].rows_added == 59 and report.ids[0].missing_days == 0
    assert "no share count" in report.ids[1].detail  # 9988: the fake serves no counts
    sec = master(["0700.HK", "9988.HK"]).assign(free_float_factor=[0.7, 1.0])
    sec.loc[1, "industry"] = "Consumer Discretionary"
    ds = sources.load_cached(["0700.HK", "9988.HK"], securities=sec, cache_dir=tmp_path)
    assert isinstance(ds, indexlab.Dataset)
    close = ds.frame("close")["0700.HK"]
    tr = ds.frame("total_return")["0700.HK"]
    ex, before = pd.Timestamp("2026-05-15"), pd.Timestamp("2026-05-14")
    # Dividend reinvested by hand: (P_ex + 5.3) / P_before.
    assert tr[ex] / tr[before] == pytest.approx((close[ex] + 5.3) / close[before], rel=1e-12)
    shares = ds.frame("shares_outstanding")["0700.HK"]
    assert shares[pd.Timestamp("2026-04-10")] == 6244912890  # reported 2026-01-06
    assert shares[pd.Timestamp("2026-04-13")] == 6209342076  # reported 2026-04-12 (Sunday)
    row = ds.securities.set_index("id").loc["0700.HK"]
    assert row["price_source"] == "yfinance 0700.HK" and row["currency"] == "HKD"
    assert row["shares_source"] == "yfinance Ticker.get_shares_full"
    assert row["shares_kind"] == "reported"
    assert ds.securities.set_index("id").loc["9988.HK", "shares_kind"] == "none served"
    assert row["retrieved"] == pd.Timestamp.now().date().isoformat()
    assert row["listing_date_kind"] == "first cached day" and row["ai_layer"] == "cloud"
    assert ds.field("free_float_factor")[0].tolist() == [0.7, 1.0]
    # 9988 has no count: the master says so, and its shares stay NaN.
    assert np.isnan(ds.frame("shares_outstanding")["9988.HK"]).all()


def test_incremental_update_fetches_only_what_is_missing(fake_yf, tmp_path: Path) -> None:
    run(["0700.HK"], tmp_path, "2026-05-08")
    first = sources.Cache(tmp_path).read("yfinance", "0700.HK")
    again = run(["0700.HK"], tmp_path, "2026-05-08")
    assert again.ids[0].status == "up to date"
    fake_yf.calls.clear()
    report = run(["0700.HK"], tmp_path, "2026-06-30")
    starts = [c[2][0] for c in fake_yf.calls if c[1] == "history"]
    assert starts == ["2026-05-09"]  # resumes the day after the last cached row
    merged = sources.Cache(tmp_path).read("yfinance", "0700.HK")
    assert first is not None and merged is not None
    assert report.ids[0].rows_added == len(merged.rows) - len(first.rows)
    # Two pulls give the same prices as one pull over the whole range: nothing rescaled.
    whole = yfs.from_history(yf_history("0700.HK"))
    np.testing.assert_allclose(merged.rows["close"], whole["close"], rtol=1e-9)


def test_a_split_after_the_cached_rows_rescales_them(fake_yf, tmp_path: Path) -> None:
    full = yf_history("2269.HK")  # Yahoo's rows, adjusted for the 3-for-1 split of 2020-11-16
    split = full.index.tz_localize(None).normalize() >= pd.Timestamp("2020-11-16")
    before_split = full.copy()  # what a pull made before the split returned
    before_split.loc[~split, ["Open", "High", "Low", "Close"]] *= 3.0
    before_split.loc[~split, "Volume"] = (before_split.loc[~split, "Volume"] / 3.0).round()
    fake_yf.frames["2269.HK"] = before_split[~split]
    run(["2269.HK"], tmp_path, "2020-11-13", start="2020-11-02")
    fake_yf.frames["2269.HK"] = full
    run(["2269.HK"], tmp_path, "2020-11-30", start="2020-11-02")
    merged = sources.Cache(tmp_path).read("yfinance", "2269.HK")
    assert merged is not None
    np.testing.assert_allclose(merged.rows["close"], full["Close"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(merged.rows["turnover_shares"], full["Volume"], rtol=1e-6)


def test_a_failed_id_keeps_its_cache_and_is_reported(fake_yf, tmp_path: Path) -> None:
    run(["0700.HK", "9988.HK"], tmp_path, "2026-05-08")
    path = sources.Cache(tmp_path).path("yfinance", "9988.HK")
    before = path.read_bytes()
    fake_yf.fail["9988.HK"] = ValueError("Yahoo sent a page that is not JSON")
    report = run(["0700.HK", "9988.HK"], tmp_path, "2026-06-30")
    assert report.failed == ["9988.HK"] and not report.ok
    bad = report.ids[1]
    assert bad.status == "failed" and "not JSON" in bad.detail
    assert str(bad.last) == "2026-05-08" and path.read_bytes() == before
    assert "9988.HK" in report.render() and "failed" in report.render()
    assert report.table().loc["0700.HK", "status"] == "updated"


def test_network_errors_are_retried_with_backoff_then_reported(fake_yf, tmp_path) -> None:
    run(["0700.HK"], tmp_path, "2026-05-08")
    fake_yf.fail["9988.HK"] = TimeoutError("read timed out after 10 s")
    waits: list[float] = []
    report = sources.update(
        ["0700.HK", "9988.HK"],
        until="2026-06-30",
        cache_dir=tmp_path,
        start="2026-04-01",
        progress=None,
        retries=2,
        backoff=0.5,
        min_interval=0.0,
        sleep=waits.append,
    )
    assert waits == [0.5, 1.0]  # backoff * 2**k between the three attempts
    assert report.failed == ["9988.HK"] and "timed out" in report.ids[1].detail
    assert report.ids[1].first is None  # nothing cached: listed, not dropped
    assert not sources.Cache(tmp_path).path("yfinance", "9988.HK").exists()


def test_offline_raises_at_once_naming_the_source(fake_yf, tmp_path: Path) -> None:
    fake_yf.fail["0700.HK"] = ConnectionError("Could not resolve host: query2.finance.yahoo.com")
    waits: list[float] = []
    t0 = time.perf_counter()
    with pytest.raises(indexlab.DataError, match="yfinance: cannot reach.*Could not resolve"):
        sources.update(
            ["0700.HK", "9988.HK"],
            until="2026-06-30",
            cache_dir=tmp_path,
            progress=None,
            sleep=waits.append,
        )
    assert time.perf_counter() - t0 < 2 and waits == []
    assert len(fake_yf.calls) == 1 and not any(tmp_path.rglob("*.parquet"))


def test_a_write_that_fails_leaves_the_old_file(fake_yf, tmp_path, monkeypatch) -> None:
    run(["0700.HK"], tmp_path, "2026-05-08")
    path = sources.Cache(tmp_path).path("yfinance", "0700.HK")
    before = path.read_bytes()

    def broken(table: object, where: str) -> None:
        Path(where).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("indexlab.sources._cache.pq.write_table", broken)
    report = run(["0700.HK"], tmp_path, "2026-06-30")
    assert report.failed == ["0700.HK"] and "No space left" in report.ids[0].detail
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_missing_trading_days_are_counted_from_the_exchange_calendar(fake_yf, tmp_path) -> None:
    frame = yf_history("0700.HK")
    fake_yf.frames["0700.HK"] = frame.drop(frame.index[10])  # a session Yahoo did not send
    report = run(["0700.HK"], tmp_path, "2026-06-30")
    assert report.ids[0].missing_days == 1


def test_no_intraday_bar_is_cached_as_a_close() -> None:
    during = pd.Timestamp("2026-06-30 03:00", tz="UTC")  # 11:00 in Hong Kong
    assert last_closed_session("XHKG", during) == pd.Timestamp("2026-06-29")
    after = pd.Timestamp("2026-06-30 09:00", tz="UTC")
    assert last_closed_session("XHKG", after) == pd.Timestamp("2026-06-30")


def test_yf_download_multiindex_frame() -> None:
    rows = yfs.from_download(yf_download_hsi(), "^HSI")
    assert len(rows) == 18 and rows["date"].iloc[0] == pd.Timestamp("2025-04-01")
    assert rows["close"].notna().all() and (rows["close"] > 1e4).all()


def test_missing_master_fields_and_uncached_ids_are_named(fake_yf, tmp_path: Path) -> None:
    run(["0700.HK"], tmp_path, "2026-05-08")
    with pytest.raises(indexlab.DataError, match=r"no industry for \['0700.HK'\]"):
        sources.load_cached(["0700.HK"], cache_dir=tmp_path)
    with pytest.raises(indexlab.DataError, match=r"nothing cached for \['0981.HK'\]"):
        sources.load_cached(
            ["0700.HK", "0981.HK"], securities=master(["0700.HK"]), cache_dir=tmp_path
        )
    with pytest.raises(indexlab.DataError, match="source: expected one of"):
        sources.update(["0700.HK"], "bloomberg", cache_dir=tmp_path)


def _online(host: str = "query2.finance.yahoo.com") -> bool:
    if os.environ.get("INDEXLAB_OFFLINE"):
        return False
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.mark.network
@pytest.mark.skipif(not _online(), reason="needs the network (Yahoo Finance)")
def test_real_yfinance_fetch(tmp_path: Path) -> None:
    report = sources.update(
        ["0700.HK"], until="2026-06-30", start="2026-06-01", cache_dir=tmp_path, progress=None
    )
    assert report.ok, report.render()
    ds = sources.load_cached(["0700.HK"], securities=master(["0700.HK"]), cache_dir=tmp_path)
    assert len(ds.dates) > 15


def test_fetch_updates_then_loads(fake_yf, tmp_path: Path) -> None:
    ds, report = sources.fetch(
        ["0700.HK"],
        securities=master(["0700.HK"]),
        until="2026-06-30",
        start="2026-04-01",
        cache_dir=tmp_path,
        progress=None,
        min_interval=0.0,
    )
    assert report.ok and len(ds.dates) == 59
    fake_yf.fail["0700.HK"] = ValueError("Yahoo sent a page that is not JSON")
    with pytest.raises(indexlab.DataError, match=r"nothing cached for \['0981.HK'\]"):
        sources.fetch(
            ["0700.HK", "0981.HK"],
            securities=master(["0700.HK", "0981.HK"]),
            until="2026-06-30",
            cache_dir=tmp_path,
            progress=None,
            min_interval=0.0,
        )
