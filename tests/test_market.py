"""The market layer: suspensions carried, coverage gaps told apart, and the backtest's rules for
names whose data end (each case built by hand)."""

from __future__ import annotations

import indexlab
import numpy as np
import pytest
from hand_market import hand_dataset
from indexlab.market import Market, carry_inside


def _dataset(close: list[list[float]], ids: tuple[str, ...] = ("A.HK", "B.HK")) -> indexlab.Dataset:
    return hand_dataset(close, ids=ids)


def test_carry_inside_fills_gaps_between_first_and_last_observation_only() -> None:
    nan = np.nan
    values = np.array([[nan, 1.0], [2.0, nan], [nan, 3.0], [4.0, nan], [nan, nan]])
    first, last = np.array([1, 0]), np.array([3, 2])
    expected = np.array([[nan, 1.0], [2.0, 1.0], [2.0, 3.0], [4.0, nan], [nan, nan]])
    np.testing.assert_array_equal(carry_inside(values, first, last), expected)


def test_holding_a_name_past_its_last_observation_is_an_error_naming_it() -> None:
    nan = np.nan
    ds = _dataset([[10, 20], [11, 21], [12, nan], [13, nan], [14, nan]])
    s = indexlab.Schedule([ds.dates[0]], ["A.HK", "B.HK"], [[0.5, 0.5]])
    with pytest.raises(indexlab.DataError, match=r"B\.HK.*data end on 2024-01-02.*coverage gap"):
        indexlab.backtest(ds, {"x": s}, benchmark=None)
    res = indexlab.backtest(ds, {"x": s}, benchmark=None, carry_last_price=True)
    assert list(res.carried["id"]) == ["B.HK"]
    assert res.carried["last_observation"].iloc[0] == "2024-01-02"
    # By hand: 1000 * (0.5 * 14/10 + 0.5 * 21/20) on the last day.
    assert res.levels["x"].iloc[-1] == pytest.approx(1000 * (0.5 * 1.4 + 0.5 * 1.05))


def test_a_backtest_starting_inside_a_short_suspension_uses_the_last_value() -> None:
    nan = np.nan
    ds = _dataset([[10, 20], [11, nan], [12, nan], [13, 22], [14, 24]])
    s = indexlab.Schedule([ds.dates[1]], ["A.HK", "B.HK"], [[0.5, 0.5]])
    res = indexlab.backtest(ds, {"x": s}, benchmark=None)
    # B is suspended on the start day: its last value (20) is the base.
    assert res.levels["x"].iloc[-1] == pytest.approx(1000 * (0.5 * 14 / 11 + 0.5 * 24 / 20))


def test_weight_before_the_first_observation_names_the_security_and_date() -> None:
    nan = np.nan
    ds = _dataset([[10, nan], [11, nan], [12, 30], [13, 31]])
    s = indexlab.Schedule([ds.dates[0]], ["A.HK", "B.HK"], [[0.5, 0.5]])
    with pytest.raises(indexlab.DataError, match=r"B\.HK set on 2024-01-01, before its first"):
        indexlab.backtest(ds, {"x": s}, benchmark=None)


def test_dates_past_the_data_warn_with_the_last_date() -> None:
    ds = _dataset([[10, 20], [11, 21], [12, 22]])
    with pytest.warns(indexlab.DataWarning, match="last date 2024-01-03"):
        ds.until("2026-12-01")
    with pytest.warns(indexlab.DataWarning, match="last date 2024-01-03"):
        ds.snapshot("2026-12-01")
    s = indexlab.Schedule([ds.dates[0]], ["A.HK"], [[1.0]])
    with pytest.warns(indexlab.DataWarning, match="last date 2024-01-03"):
        indexlab.backtest(ds, {"x": s}, benchmark=None, end="2026-12-01")


def test_coverage_lists_first_and_last_observations() -> None:
    nan = np.nan
    ds = _dataset([[nan, 20], [11, 21], [12, nan]])
    cov = ds.coverage().set_index("id")
    assert str(cov.loc["A.HK", "first_observation"].date()) == "2024-01-02"
    assert cov.loc["A.HK", "ends"] == "to data end"
    assert cov.loc["B.HK", "ends"] == "coverage gap"
    assert Market.of(ds) is Market.of(ds)


def test_price_returns_compound_close_and_total_returns_total_return() -> None:
    ds = _dataset([[10, 20], [11, 21], [12, 22]])
    m = Market.of(ds)
    np.testing.assert_array_equal(m.level_input("price"), m.price_hkd())
    with pytest.raises(indexlab.DataError, match="return kind"):
        m.level_input("gross")


def test_stacked_candidate_rows_past_a_coverage_gap_name_the_candidate() -> None:
    import scipy.sparse as sp

    nan = np.nan
    ds = _dataset([[10, 20], [11, 21], [12, nan], [13, nan]])
    m = Market.of(ds)
    days = np.array([0, 2])
    # Two candidates x two rebalances: "ok" never holds B, "late" holds it past its data end.
    w = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(indexlab.DataError, match=r"candidate 'late': B\.HK .*2024-01-02"):
        m.check_held_rows(["ok", "late"], w, days, 3)
    m.check_held_rows(["ok"], w[:2], days, 3)


def test_engine_positions_become_ids_and_dates() -> None:
    from indexlab.backtest import name_positions

    msg = (
        "candidate 1, rebalance 1 (day 2): weight 0.5 on name 1, which has no total-return "
        "value on or before that day (not yet listed)"
    )
    dates = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[D]")
    out = name_positions(msg, ["A.HK", "B.HK"], dates, ["x", "y"], np.array([0, 2]))
    assert out.startswith("candidate 'y', rebalance on 2024-01-03 (2024-01-03): weight 0.5 on B.HK")


def test_liquidity_counts_suspensions_as_zero_and_ignores_a_coverage_gap() -> None:
    import pandas as pd
    from hand_market import security_row

    nan = np.nan
    # A: suspended on day 2 (no close), a close without a turnover value on day 4.
    # B: its data end on day 2 with no recorded delisting (a coverage gap).
    close = np.array([[10, 10], [10, 10], [nan, 10], [10, nan], [10, nan], [10, nan]])
    tv = np.array([[1, 3], [2, 5], [nan, 7], [4, nan], [nan, nan], [6, nan]]) * 1e6
    ones = np.where(np.isnan(close), nan, 1.0)
    sec = pd.DataFrame([security_row("A.HK"), security_row("B.HK")])
    fields = {
        "close": close,
        "total_return": close,
        "shares_outstanding": ones * 1e9,
        "free_float_factor": ones,
        "turnover_value": tv,
        "turnover_shares": ones * 1e4,
    }
    dates = pd.bdate_range("2024-01-01", periods=6).to_numpy()
    ds = indexlab.Dataset.from_arrays(sec, dates, fields)
    m = Market.of(ds)
    # A: median(1, 2, 0, 4, 6) = 2 (day 4 left out); B: median(3, 5, 7) = 5, not a median
    # padded with zeros for the days after its data end.
    np.testing.assert_allclose(m.adv_hkd(5, window=6), [2e6, 5e6])
    adv = m.adv_hkd(5, window=2)  # days 4-5: A has only day 5; B has none
    assert adv[0] == 6e6 and np.isnan(adv[1])
