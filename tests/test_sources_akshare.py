"""The akshare connector, offline. akshare is not a test dependency (it pulls in a JavaScript
engine and a long list of packages), so a stand-in module with akshare 1.19's function names,
parameters and return columns (tests/sources_fakes.py, rows from tests/data/sources) is put in
``sys.modules``."""

from __future__ import annotations

import sys
from pathlib import Path

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import sources
from indexlab.sources.akshare_source import akshare_symbol
from sources_fakes import DATA, FakeAkshare

pytest.importorskip("exchange_calendars")


@pytest.fixture
def fake_ak(monkeypatch: pytest.MonkeyPatch) -> FakeAkshare:
    fake = FakeAkshare()
    monkeypatch.setitem(sys.modules, "akshare", fake)
    return fake


def test_symbols() -> None:
    assert akshare_symbol("2513.HK") == "02513" and akshare_symbol("688256.SH") == "688256"
    with pytest.raises(indexlab.DataError, match="akshare: unknown id 'SPX'"):
        akshare_symbol("SPX")


def test_a_share_hk_and_index_into_a_dataset(fake_ak: FakeAkshare, tmp_path: Path) -> None:
    ids = ["688256.SH", "2513.HK"]
    report = sources.update(
        [*ids, "HSTECH"],
        "akshare",
        until="2026-03-31",
        start="2025-04-01",
        cache_dir=tmp_path,
        progress=None,
        min_interval=0.0,
    )
    assert report.ok, report.render()
    timeouts = [c[1]["timeout"] for c in fake_ak.calls if c[0] == "stock_zh_a_hist"]
    assert timeouts == [10.0, 10.0]  # passed where the function takes one
    raw = pd.read_csv(DATA / "ak_stock_zh_a_hist_688256.csv")
    cached = sources.Cache(tmp_path).read("akshare", "688256.SH")
    assert cached is not None and cached.currency == "CNY"
    # East Money counts A-share volume in lots of 100 shares.
    np.testing.assert_array_equal(cached.rows["turnover_shares"], raw["成交量"] * 100.0)
    np.testing.assert_array_equal(cached.rows["turnover_value"], raw["成交额"])
    sec = pd.DataFrame(
        {
            "id": ids,
            "industry": "Information Technology",
            "ai_layer": ["compute", "model"],
            "ai_score": [0.95, 0.9],
        }
    )
    fx = pd.DataFrame({"date": ["2025-04-01"], "currency": ["CNY"], "to_hkd": [1.07]})
    ds = sources.load_cached(
        ids, "akshare", securities=sec, fx=fx, benchmarks={"HSTECH": "HSTECH"}, cache_dir=tmp_path
    )
    close = ds.frame("close")["688256.SH"].dropna()
    assert close.iloc[0] == raw["收盘"].iloc[0]
    tr = ds.frame("total_return")["688256.SH"].dropna()
    assert (tr / close).round(12).unique().tolist() == [1.25]  # the hfq level, as served
    # One share count, known from the day it was fetched: held for every cached day.
    assert np.unique(ds.frame("shares_outstanding")["688256.SH"].dropna()).tolist() == [
        196_796_129.0
    ]
    sec_out = ds.securities.set_index("id")
    assert sec_out.loc["2513.HK", "currency"] == "HKD"
    assert sec_out.loc["2513.HK", "listing_date"] == pd.Timestamp("2026-01-08")
    assert ds.benchmarks["HSTECH"].dropna().iloc[-1] == pytest.approx(
        pd.read_csv(DATA / "ak_stock_hk_index_daily_sina_HSTECH.csv")["close"].iloc[-1]
    )


def test_akshare_not_installed_names_the_extra(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "akshare", None)  # import akshare -> ImportError
    with pytest.raises(indexlab.DataError, match=r"indexlab\[akshare\]"):
        sources.update(
            ["688256.SH"], "akshare", until="2025-05-23", cache_dir=tmp_path, progress=None
        )


def test_connect_components_become_dated_classification_rows(fake_ak: FakeAkshare) -> None:
    from indexlab.sources.akshare_source import connect_components

    rows = connect_components()
    assert rows["id"].tolist() == ["0700.HK", "9988.HK", "2513.HK"]
    assert rows["connect_eligible"].all()
    assert (rows["valid_from"] == pd.Timestamp.now().normalize()).all()


def test_csi_constituents_become_indexlab_ids(fake_ak: FakeAkshare) -> None:
    from indexlab.sources.akshare_source import csi_constituents

    got = csi_constituents("000300")
    assert got["id"].tolist() == ["688256.SH", "601138.SH", "300308.SZ"]  # Beijing left out
    assert (got["as_of"] == pd.Timestamp("2025-09-26")).all()
