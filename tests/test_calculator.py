"""The divisor-based index calculator: a hand-worked example (review, split, dividend), agreement
with the weight-based backtest at zero cost, net vs gross, and errors."""

from __future__ import annotations

import indexlab
import numpy as np
import pytest
from hand_market import ZERO_COSTS, hand_dataset

IDS = ("A.HK", "B.HK", "C.HK")


def _dataset(close, tr, shares) -> indexlab.Dataset:
    return hand_dataset(close, tr, shares, IDS)


# Six days. A: no events. B: 2-for-1 split on day 2 (close 22 -> 11.5 while its total return
# rises 22 -> 23, i.e. +4.5%; shares 100 -> 200). C: cash dividend of 1.0 on day 4 (close
# 5 -> 4 while its total return is flat: d = 5 * 5/5 - 4 = 1).
CLOSE = [[10, 20, 5], [11, 22, 5], [11, 11.5, 5.5], [12, 12, 5], [12, 12.5, 4], [13, 12, 4.4]]
TR = [[10, 20, 5], [11, 22, 5], [11, 23, 5.5], [12, 24, 5], [12, 25, 5], [13, 24, 5.5]]
SHARES = [[100, 100, 100], [100, 100, 100]] + [[100, 200, 100]] * 4


def _hand():
    ds = _dataset(CLOSE, TR, SHARES)
    # Weights (0.5, 0.3, 0.2) from day 0, a review at the close of day 3 sets (0.4, 0.4, 0.2).
    sched = indexlab.Schedule([ds.dates[0], ds.dates[3]], IDS, [[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]])
    return ds, sched


def test_hand_worked_divisor_review_split_and_dividend() -> None:
    ds, sched = _hand()
    price = indexlab.index_levels(ds, sched, "price")
    gross = indexlab.index_levels(ds, sched, "gross")
    # Day 0: free-float caps (FAF 1) 1000, 2000, 500; M = min(cap / w) = min(2000, 6667, 2500)
    # = 2000, so IS = w * M / P = (100, 30, 80), CF = IS / shares = (1, 0.3, 0.8), D = 2000/1000.
    assert price.shares.iloc[0].tolist() == pytest.approx([100, 30, 80])
    assert price.capping_factors.iloc[0].tolist() == pytest.approx([1.0, 0.3, 0.8])
    # Day 1: (100*11 + 30*22 + 80*5) / 2 = 2160 / 2 = 1080.
    # Day 2: B splits 2-for-1: its index shares are restated 30 -> 60, the divisor stays 2:
    #        (100*11 + 60*11.5 + 80*5.5) / 2 = 2230 / 2 = 1115 (B's value 660 -> 690: +4.5%).
    # Day 3: (100*12 + 60*12 + 80*5) / 2 = 2320 / 2 = 1160. Review: caps 1200, 2400, 500;
    #        M = min(3000, 6000, 2500) = 2500; IS = (1000/12, 1000/12, 100); D = 2500 / 1160.
    # Day 4: price index: (83.33*12 + 83.33*12.5 + 100*4) / D = 2441.67 * 1160/2500 = 1132.933.
    #        Gross: the dividend 100 * 1.0 is reinvested through the divisor,
    #        D' = D * 2441.67 / 2541.67, level = 2541.67 * 1160/2500 = 1179.333.
    # Day 5: price: (83.33*13 + 83.33*12 + 100*4.4) * 1160/2500 = 2523.33 * 0.464 = 1170.827;
    #        gross: 1179.333 * 2523.33 / 2441.67 = 1218.7786.
    mv4, mv5 = 1000 / 12 * 24.5 + 400, 1000 / 12 * 25 + 440  # 2441.67, 2523.33
    expected_price = [1000, 1080, 1115, 1160, mv4 * 0.464, mv5 * 0.464]
    expected_gross = [1000, 1080, 1115, 1160, (mv4 + 100) * 0.464, (mv4 + 100) * 0.464 * mv5 / mv4]
    assert price.levels.tolist() == pytest.approx(expected_price, rel=1e-12)
    assert gross.levels.tolist() == pytest.approx(expected_gross, rel=1e-12)
    assert price.levels.iloc[4] == pytest.approx(1132.9333333333, rel=1e-10)
    assert gross.levels.iloc[5] == pytest.approx(1218.7786120592, rel=1e-10)
    d3 = 2500 / 1160
    assert price.divisor.tolist() == pytest.approx([2, 2, 2, d3, d3, d3], rel=1e-12)
    assert gross.divisor.iloc[4] == pytest.approx(d3 * mv4 / (mv4 + 100), rel=1e-12)
    assert price.shares.iloc[1].tolist() == pytest.approx([1000 / 12, 1000 / 12, 100])
    assert price.capping_factors.iloc[1].tolist() == pytest.approx([10 / 12, 5 / 12, 1.0])
    # Reinvesting in the payer instead (C's index shares 100 -> 125): day 5 is
    # 1160 * (0.4 * 13/12 + 0.4 * 24/24 + 0.2 * 5.5/5) = 1221.867, the weight-based result.
    own = indexlab.index_levels(ds, sched, "gross", reinvest="security")
    assert own.levels.iloc[5] == pytest.approx(1160 * (0.4 * 13 / 12 + 0.4 + 0.2 * 1.1), rel=1e-12)
    # Net, 10% withheld on C: (2441.67 + 90) * 0.464 on day 4.
    net = indexlab.index_levels(ds, sched, "net", withholding={"C.HK": 0.1})
    assert net.levels.iloc[4] == pytest.approx((mv4 + 90) * 0.464, rel=1e-12)


def test_special_dividend_moves_the_price_index_divisor_not_its_level() -> None:
    ds, sched = _hand()
    plain = indexlab.index_levels(ds, sched, "price")
    special = indexlab.index_levels(ds, sched, "price", special_dividends=[("C.HK", ds.dates[4])])
    # The special 1.0 on C is neutralised: day 4 equals the gross level, the divisor moves.
    assert special.levels.iloc[4] == pytest.approx(1179.3333333333, rel=1e-10)
    assert special.divisor.iloc[4] < plain.divisor.iloc[4]
    assert special.levels.iloc[:4].tolist() == plain.levels.iloc[:4].tolist()


@pytest.fixture(scope="module")
def synthetic():
    ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    return ds, indexlab.build_index(ds, indexlab.rules.HSTECH)


@pytest.mark.parametrize(
    ("kind", "returns", "reinvest"),
    [("price", "price", "index"), ("gross", "total_return", "security")],
)
def test_agrees_with_the_zero_cost_backtest(synthetic, kind, returns, reinvest) -> None:
    ds, hist = synthetic
    bt = indexlab.backtest(ds, {"x": hist}, costs=ZERO_COSTS, returns=returns, benchmark=None)
    out = indexlab.index_levels(ds, hist, kind, reinvest=reinvest)
    assert out.levels.index.equals(bt.levels.index)
    np.testing.assert_allclose(out.levels.to_numpy(), bt.levels["x"].to_numpy(), rtol=1e-10)
    assert len(out.shares) == hist.reviews["effective_date"].nunique()


def test_index_wide_reinvestment_is_close_to_but_not_the_backtest(synthetic) -> None:
    ds, hist = synthetic
    bt = indexlab.backtest(
        ds, {"x": hist}, costs=ZERO_COSTS, returns="total_return", benchmark=None
    )
    out = indexlab.index_levels(ds, hist, "gross")
    gap = np.abs(out.levels.to_numpy() / bt.levels["x"].to_numpy() - 1)
    assert 0 < gap.max() < 1e-2


def test_net_is_below_gross_when_dividends_exist(synthetic) -> None:
    ds, hist = synthetic
    price = indexlab.index_levels(ds, hist, "price").levels
    gross = indexlab.index_levels(ds, hist, "gross").levels
    net = indexlab.index_levels(ds, hist, "net", withholding={"HK": 0.10}).levels
    assert gross.iloc[-1] > price.iloc[-1]  # dividends exist
    assert price.iloc[-1] < net.iloc[-1] < gross.iloc[-1]
    # Defaults: nothing withheld on HK names (HSTECH holds only HK names here).
    default = indexlab.index_levels(ds, hist, "net").levels
    np.testing.assert_allclose(default.to_numpy(), gross.to_numpy(), rtol=1e-14)


def test_unknown_kind_and_bad_withholding_are_errors() -> None:
    ds, sched = _hand()
    with pytest.raises(indexlab.DataError, match="kind must be one of"):
        indexlab.index_levels(ds, sched, "total")
    with pytest.raises(indexlab.DataError, match="only to kind='net'"):
        indexlab.index_levels(ds, sched, "gross", withholding={"HK": 0.1})
    with pytest.raises(indexlab.DataError, match=r"in \[0, 1\]"):
        indexlab.index_levels(ds, sched, "net", withholding={"HK": 1.5})


def test_holding_past_the_last_observation_is_an_error_naming_id_and_date() -> None:
    nan = np.nan
    close = [[10, 20, 5], [11, 21, 5], [12, 22, nan], [13, 23, nan]]
    shares = [[100.0] * 3] * 2 + [[100, 100, nan]] * 2
    ds = _dataset(close, close, shares)
    sched = indexlab.Schedule([ds.dates[0]], IDS, [[0.4, 0.4, 0.2]])
    with pytest.raises(indexlab.DataError, match=r"C\.HK.*data end on 2024-01-02"):
        indexlab.index_levels(ds, sched, "price")
    out = indexlab.index_levels(ds, sched, "price", carry_last_price=True)
    bt = indexlab.backtest(ds, sched, costs=ZERO_COSTS, benchmark=None, carry_last_price=True)
    np.testing.assert_allclose(out.levels.to_numpy(), bt.levels.iloc[:, 0].to_numpy(), rtol=1e-12)


def test_observed_share_and_tracking_error_across_a_data_gap() -> None:
    # B has no recorded close on day 2 (a gap in the data, observed before and after); the
    # calculator carries its day-1 price, so day 2 rests on a stale price.
    close = [[10, 20, 5], [11, 22, 5], [11, np.nan, 5.5], [12, 24, 5], [12, 25, 5], [13, 24, 5.5]]
    shares = [[100, 100, 100]] * 6
    ds = _dataset(close, [[np.nan] * 3] * 6, shares)
    sched = indexlab.Schedule([ds.dates[0]], IDS, [[0.5, 0.3, 0.2]])
    lv = indexlab.index_levels(ds, sched, "price")
    # Index shares (100, 30, 80), divisor 2. Day 2's observed share is the value at day 1's
    # close of the names with a close on day 2: (1100 + 400) / (1100 + 660 + 400).
    assert lv.observed.iloc[2] == pytest.approx(1500 / 2160, rel=1e-12)
    assert lv.observed.drop(lv.observed.index[2]).eq(1.0).all()
    # A benchmark equal to the true level (B at 23 on day 2) differs only on days 2 and 3.
    true = lv.levels.copy()
    true.iloc[2] = (100 * 11 + 30 * 23 + 80 * 5.5) / 2
    gap = np.log(lv.levels).diff() - np.log(true).diff()
    expected = gap.dropna().std(ddof=1) * np.sqrt(252)
    assert lv.tracking_error(true, min_observed=0.0) == pytest.approx(expected, rel=1e-12)
    assert expected > 0.01
    # On observed days only, day 3's return is measured from day 1 on both sides: no error.
    assert lv.tracking_error(true) == 0.0
    with pytest.raises(indexlab.DataError, match="min_observed"):
        lv.tracking_error(true, min_observed=1.5)
    with pytest.raises(indexlab.DataError, match="benchmark"):
        lv.tracking_error(true.to_numpy())  # type: ignore[arg-type]
