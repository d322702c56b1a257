"""``indexlab data update``: fetches into the cache, prints a line per id, exit 1 on failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from indexlab.cli import main
from sources_fakes import FakeTicker

yf = pytest.importorskip("yfinance")


def test_data_update(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(yf, "Ticker", FakeTicker)
    FakeTicker.calls, FakeTicker.frames = [], {}
    FakeTicker.fail = {"9988.HK": ValueError("Yahoo sent a page that is not JSON")}
    argv = [
        "data",
        "update",
        "--source",
        "yfinance",
        "--ids",
        "0700.HK",
        "9988.HK",
        "--start",
        "2026-04-01",
        "--until",
        "2026-06-30",
        "--cache",
        str(tmp_path),
        "--min-interval",
        "0",
        "--retries",
        "0",
    ]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "0700.HK" in out and "updated" in out and "+59 rows" in out
    assert "9988.HK" in out and "not JSON" in out
    assert "1 of 2 id(s) failed: 9988.HK" in err
    FakeTicker.fail = {}
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert "up to date" in out
