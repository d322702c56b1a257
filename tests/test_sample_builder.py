"""The sample builder's joins and corrections, by hand, and its agreement checks on the raw files
(when ``../shared/data/raw`` is beside the checkout, as in CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from sample import hk_prices, levels  # noqa: E402
from sample.master import to_latest_basis  # noqa: E402

RAW = ROOT.parent / "shared" / "data" / "raw"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason="raw market files not beside the checkout")


def _frame(closes: list[float], start: str = "2025-01-01", dividend: list[float] | None = None):
    dates = pd.bdate_range(start, periods=len(closes))
    return pd.DataFrame(
        {
            "date": dates,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
            "dividend": dividend if dividend is not None else [0.0] * len(closes),
        }
    )


def test_two_pulls_join_only_where_their_returns_agree() -> None:
    base = _frame([10, 11, 12, 11, 13, 14])
    later = _frame([x * 0.9 for x in [10, 11, 12, 11, 13, 14, 15]])
    joined = hk_prices.join_on_returns(base, later, "toy")
    np.testing.assert_allclose(joined["close"], later["close"])  # the newer pull's scale
    bad = _frame([10, 11, 12, 14, 13, 14, 15])
    with pytest.raises(AssertionError, match="daily returns agree"):
        hk_prices.join_on_returns(base, bad, "toy")


def test_dividends_are_removed_from_the_back_adjusted_close() -> None:
    # Raw closes 100, 102, 99 (ex-date, dividend 2), 101. yfinance multiplies closes before the
    # ex-date by 1 - 2/102; the recovered prices must be the raw closes.
    factor = 1 - 2 / 102
    adj = _frame([100 * factor, 102 * factor, 99, 101], dividend=[0, 0, 2.0, 0])
    known = (adj["date"].min(), adj["date"].max())
    np.testing.assert_allclose(hk_prices.remove_dividends(adj, known), [100, 102, 99, 101])


def test_counts_are_restated_across_a_consolidation() -> None:
    pts = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2024-11-15", "2025-08-15"]),
            "shares": [7.88e9, 7.847e8],
            "source": ["pre", "post"],
        }
    )
    out = to_latest_basis(pts)
    assert out["shares"].iloc[0] == pytest.approx(7.88e8)
    assert "restated / 10" in out["source"].iloc[0]
    grown = pts.assign(shares=[7.0e8, 7.847e8])  # ordinary issuance: left alone
    assert to_latest_basis(grown)["shares"].iloc[0] == 7.0e8


@needs_raw
def test_index_vendors_agree_and_give_the_published_2025_returns() -> None:
    hstech, hsi = levels.hstech_levels(RAW), levels.hsi_levels(RAW)
    assert hstech["2025-12-31"] / hstech["2024-12-31"] - 1 == pytest.approx(0.2345, abs=5e-5)
    assert hsi["2025-12-31"] / hsi["2024-12-31"] - 1 == pytest.approx(0.2777, abs=5e-5)


@needs_raw
def test_tencent_pulls_agree_and_the_price_is_the_traded_close() -> None:
    base = hk_prices.clean(hk_prices.read_yf_download(str(RAW / "lucius_hsci_yf" / "0700.HK.csv")))
    later = hk_prices.clean(
        hk_prices.read_yf_history(str(RAW / "zjplab_hstech_yf" / "0700.HK.csv"))
    )
    joined = hk_prices.join_on_returns(base, later, "0700")
    known = (later["date"].min(), later["date"].max())
    price = pd.Series(hk_prices.remove_dividends(joined, known), index=joined["date"])
    # Tushare's unadjusted close (ericxu) on 2026-01-02 and after the 2026-05-15 ex-date.
    raw = pd.read_csv(RAW / "ericxu_hk_ai_tushare" / "Tencent_daily.csv")
    raw = raw.assign(date=pd.to_datetime(raw["trade_date"].astype(str))).set_index("date")
    for day in ("2026-01-02", "2026-03-02", "2026-06-01"):
        assert price[day] == pytest.approx(raw.loc[day, "close"], rel=2e-3)
