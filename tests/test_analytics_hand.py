"""Index-product analytics on a three-name market with two reviews, every expected number
worked out here from the definitions (docs/index-products.md), never from the code under test.

The market: A, B (Information Technology) and C (Healthcare), HK, 300 business days from
2024-01-01, traded value HK$1m a day. The index sets weights (0.5, 0.3, 0.2) at the close of
day 2 and (0.2, 0.3, 0.5) at the close of day 5; the benchmark (0.3, 0.5, 0.2) and
(0.4, 0.4, 0.2) on the same days.
"""

from __future__ import annotations

import itertools

import indexlab
import numpy as np
import pandas as pd
import pytest
from hand_market import security_row
from indexlab import analytics

T = 300
IDS = ["A.HK", "B.HK", "C.HK"]
REB = [2, 5]
W_INDEX = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
W_BENCH = np.array([[0.3, 0.5, 0.2], [0.4, 0.4, 0.2]])
ZERO = indexlab.HKCosts(hk_stamp_duty=0.0, hk_trading_fee=0.0, hk_sfc_levy=0.0, hk_afrc_levy=0.0)
HK_RATE = 0.001 + 0.0000565 + 0.000027 + 0.0000015  # stamp duty + fee + SFC + AFRC, per side


def closes() -> np.ndarray:
    t = np.arange(T, dtype=float)
    close = np.column_stack([10.0 * 1.001**t, 20.0 * 0.9995**t, 5.0 + np.sin(t / 7.0)])
    # The first days by hand: A 10 -> 12 and C 5 -> 4 by day 5 (the trade-list example).
    close[:6] = [[10, 20, 5], [10, 20, 5], [10, 20, 5], [11, 20, 5], [12, 20, 4], [12, 20, 4]]
    return close


def dividends() -> np.ndarray:
    """Total return over price: C reinvests a small dividend every day from day 10 on."""
    t = np.arange(T)
    return np.column_stack([np.ones(T), np.ones(T), 1.0002 ** np.maximum(t - 9, 0)])


def market(turnover: np.ndarray | None = None, close: np.ndarray | None = None) -> indexlab.Dataset:
    close = closes() if close is None else close
    ones = np.where(np.isnan(close), np.nan, 1.0)
    total_return = close * dividends()
    fields = {
        "close": close,
        "total_return": total_return,
        "shares_outstanding": ones * 1e9,
        "free_float_factor": ones,
        "turnover_value": ones * 1e6 if turnover is None else turnover,
        "turnover_shares": ones * 1e5,
    }
    sec = pd.DataFrame(
        [
            security_row("A.HK", name="Alpha"),
            security_row("B.HK", name="Beta"),
            security_row("C.HK", name="Gamma", industry="Healthcare"),
        ]
    )
    dates = pd.bdate_range("2024-01-01", periods=T)
    t = np.arange(T)
    bench = pd.concat(
        [
            pd.DataFrame({"date": dates, "index": "HSTECH", "level": 3000.0 * 1.0003**t}),
            pd.DataFrame({"date": dates, "index": "HSI", "level": 20000.0 * 0.9999**t}),
        ]
    )
    return indexlab.Dataset.from_arrays(sec, dates.to_numpy(), fields, benchmarks=bench)


def schedule(ds: indexlab.Dataset, w: np.ndarray) -> indexlab.Schedule:
    return indexlab.Schedule(ds.dates[REB], IDS, w)


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return market()


def hand_levels(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Buy and hold between the reviews, no costs: the level from day 2 on."""
    out = np.empty(T - REB[0])
    out[: REB[1] - REB[0] + 1] = 1000.0 * (w[0] * values[REB[0] : REB[1] + 1] / values[REB[0]]).sum(
        axis=1
    )
    out[REB[1] - REB[0] :] = out[REB[1] - REB[0]] * (w[1] * values[REB[1] :] / values[REB[1]]).sum(
        axis=1
    )
    return out


# ------------------------------------------------------------------------------ factsheet


def test_period_and_calendar_returns_by_hand(ds: indexlab.Dataset) -> None:
    fs = analytics.factsheet(ds, schedule(ds, W_INDEX), costs=ZERO, name="three")
    levels = hand_levels(closes(), W_INDEX)
    dates = pd.bdate_range("2024-01-01", periods=T)[REB[0] :]
    np.testing.assert_allclose(fs.levels["three (price)"].to_numpy(), levels, rtol=1e-12)
    assert fs.as_of == pd.Timestamp("2025-02-21") and fs.inception == pd.Timestamp("2024-01-03")

    def at(day: str) -> float:  # the last level on or before a calendar day
        return float(levels[dates <= pd.Timestamp(day)][-1])

    end = levels[-1]
    pr = fs.period_returns["three (price)"]
    assert pr["1M"] == pytest.approx(end / at("2025-01-21") - 1, rel=1e-12)
    assert pr["3M"] == pytest.approx(end / at("2024-11-21") - 1, rel=1e-12)
    assert pr["6M"] == pytest.approx(end / at("2024-08-21") - 1, rel=1e-12)
    assert pr["YTD"] == pytest.approx(end / at("2024-12-31") - 1, rel=1e-12)
    assert pr["1Y"] == pytest.approx(end / at("2024-02-21") - 1, rel=1e-12)
    assert np.isnan(pr["3Y"]) and np.isnan(pr["5Y"])
    years = (pd.Timestamp("2025-02-21") - pd.Timestamp("2024-01-03")).days / 365.25
    assert pr["Since inception"] == pytest.approx((end / 1000.0) ** (1 / years) - 1, rel=1e-12)
    assert fs.period_returns["annualised"].to_dict() == {
        "1M": False, "3M": False, "6M": False, "YTD": False, "1Y": False,
        "3Y": True, "5Y": True, "Since inception": True,
    }  # fmt: skip

    # Total return: C's dividends reinvested.
    tr = hand_levels(closes() * dividends(), W_INDEX)
    tr_ytd = fs.period_returns.loc["YTD", "three (total return)"]
    assert tr_ytd == pytest.approx(tr[-1] / float(tr[dates <= "2024-12-31"][-1]) - 1, rel=1e-12)

    # Calendar years: HSTECH rebased, 2024 from the first level (a partial year).
    hstech = 3000.0 * 1.0003 ** np.arange(T)
    cal = fs.calendar_years
    first_2024, last_2024 = (
        REB[0],
        int(np.flatnonzero(pd.bdate_range("2024-01-01", periods=T) <= "2024-12-31")[-1]),
    )
    assert cal.loc[2024, "HSTECH (price)"] == pytest.approx(
        hstech[last_2024] / hstech[first_2024] - 1, rel=1e-12
    )
    assert cal.loc[2025, "HSTECH (price)"] == pytest.approx(
        hstech[-1] / hstech[last_2024] - 1, rel=1e-12
    )
    assert cal.loc[2024, "three (price)"] == pytest.approx(at("2024-12-31") / 1000.0 - 1, rel=1e-12)
    assert (
        cal.loc[2024, "partial"] == "from 2024-01-03"
        and cal.loc[2025, "partial"] == "to 2025-02-21"
    )
    assert "HSTECH (total return)" not in cal.columns  # no such series in the data: not guessed

    # Risk against HSTECH: daily price returns, 252 a year, ddof 1.
    r = np.diff(levels) / levels[:-1]
    b = np.diff(hstech[REB[0] :]) / hstech[REB[0] : -1]
    te = np.std(r - b, ddof=1) * np.sqrt(252)
    assert fs.risk.loc["tracking_error", "three (price)"] == pytest.approx(te, rel=1e-9)
    assert fs.risk.loc["information_ratio", "three (price)"] == pytest.approx(
        np.mean(r - b) * 252 / te, rel=1e-9
    )
    assert fs.risk.loc["volatility", "three (price)"] == pytest.approx(
        np.std(r, ddof=1) * np.sqrt(252), rel=1e-9
    )
    dd = 1 - (levels / np.maximum.accumulate(levels)).min()
    assert fs.risk.loc["max_drawdown", "three (price)"] == pytest.approx(dd, rel=1e-9)


def test_composition_and_turnover_by_hand(ds: indexlab.Dataset) -> None:
    fs = analytics.factsheet(ds, schedule(ds, W_INDEX), costs=ZERO)
    assert fs.n_constituents == 3 and fs.composition_date == pd.Timestamp(ds.dates[5])
    assert fs.top10["id"].tolist() == ["C.HK", "B.HK", "A.HK"]
    assert fs.breakdowns["industry"]["weight"].to_dict() == pytest.approx(
        {"Healthcare": 0.5, "Information Technology": 0.5}
    )
    caps = closes()[-1] * 1e9
    assert fs.market_cap["average_market_cap_hkd"] == pytest.approx(caps.mean(), rel=1e-12)
    assert fs.market_cap["median_market_cap_hkd"] == pytest.approx(np.median(caps), rel=1e-12)
    # One-way turnover at day 5: drifted (0.6, 0.3, 0.16) / 1.06 against the new weights.
    drifted = np.array([0.6, 0.3, 0.16]) / 1.06
    assert fs.turnover.iloc[0] == pytest.approx(np.abs(W_INDEX[1] - drifted).sum() / 2, rel=1e-12)


# ------------------------------------------------------------------------------ trade list


def test_trade_list_by_hand(ds: indexlab.Dataset) -> None:
    tl = analytics.trade_list(ds, schedule(ds, W_INDEX), aum_hkd=1e7, date=ds.dates[5])
    before = np.array([0.6, 0.3, 0.16]) / 1.06  # A 10 -> 12, B flat, C 5 -> 4
    price = np.array([12.0, 20.0, 4.0])
    target = 1e7 * (W_INDEX[1] - before)  # A: -3,660,377.36  B: +169,811.32  C: +3,490,566.04
    shares = np.array([-305031.0, 8491.0, 872642.0])  # target / price to the nearest share
    np.testing.assert_allclose(target / price, [-305031.45, 8490.57, 872641.51], atol=0.01)
    got = tl.trades.set_index("id").loc[IDS]
    np.testing.assert_array_equal(got["shares"].to_numpy(), shares)
    np.testing.assert_allclose(got["hkd"].to_numpy(), shares * price, rtol=1e-12)
    assert got["side"].tolist() == ["sell", "buy", "buy"]
    assert tl.rounding.startswith("whole shares")
    # ADV: HK$1m every day; 20% participation -> HK$200k a day.
    np.testing.assert_allclose(got["adv_hkd"].to_numpy(), 1e6)
    np.testing.assert_allclose(got["pct_of_adv"].to_numpy(), np.abs(shares * price) / 1e6)
    np.testing.assert_allclose(got["days_to_trade"].to_numpy(), np.abs(shares * price) / 2e5)
    assert tl.max_days_to_trade == pytest.approx(305031 * 12 / 2e5)  # A: 18.3 days
    np.testing.assert_allclose(got["cost_hkd"].to_numpy(), np.abs(shares * price) * HK_RATE)
    assert tl.one_way_turnover == pytest.approx(np.abs(W_INDEX[1] - before).sum() / 2)
    # The first review is built from cash: buys only, the whole weight.
    first = analytics.trade_list(ds, schedule(ds, W_INDEX), 1e7, ds.dates[2])
    np.testing.assert_allclose(
        first.trades.set_index("id").loc[IDS, "shares"], [500000.0, 150000.0, 400000.0]
    )


def test_board_lots_round_to_whole_lots() -> None:
    ds = market()
    ds.securities["board_lot"] = [100, 500, 1000]
    tl = analytics.trade_list(ds, schedule(ds, W_INDEX), 1e7, ds.dates[5])
    got = tl.trades.set_index("id").loc[IDS, "shares"].to_numpy()
    np.testing.assert_array_equal(got, [-305000.0, 8500.0, 873000.0])
    assert tl.rounding.startswith("board lots")


# ------------------------------------------------------------------------------ capacity


def test_capacity_by_hand_and_a_stale_series_is_not_zero() -> None:
    turnover = np.full((T, 3), 1e6)
    turnover[:, 2] = 4e6
    close = closes()
    close[40:, 2] = np.nan  # C's data stop on day 39 (no delisting): a coverage gap
    turnover[40:, 2] = np.nan
    ds = market(turnover, close)
    w = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    s = indexlab.Schedule(ds.dates[[2, 30]], IDS, w)
    cap = analytics.capacity(ds, s, participation=0.1, max_days=2.0)
    # Review 1 builds from cash: min over i of 2 x 0.1 x ADV_i / w_i = A: 0.2e6 / 0.5.
    tr = close * dividends()
    grown = w[0] * tr[30] / tr[2]
    trade = np.abs(w[1] - grown / grown.sum())
    limits = 0.2 * np.array([1e6, 1e6, 4e6]) / trade
    assert cap.by_review["capacity_hkd"].tolist() == pytest.approx([0.2e6 / 0.5, limits.min()])
    # The second review trades far less than a build from cash, so the first binds, on A.
    assert limits.min() > 0.4e6
    assert cap.aum_hkd == pytest.approx(0.4e6)
    assert cap.binding[["date", "id"]].values.tolist() == [[pd.Timestamp(ds.dates[2]), "A.HK"]]
    assert cap.by_review["id"].iloc[1] == IDS[int(np.argmin(limits))]
    # Held past its last observation, C's ADV is the median of the days it has data (HK$4m),
    # never a median of zeros for the days after its data end.
    adv = analytics.adv_hkd(ds, ds.dates[80])
    assert adv["C.HK"] == pytest.approx(4e6) and adv["A.HK"] == pytest.approx(1e6)
    # A suspension inside the data counts as zero turnover.
    close2, turnover2 = closes(), np.full((T, 3), 1e6)
    close2[100:140, 1] = np.nan
    assert analytics.adv_hkd(market(turnover2, close2), ds.dates[150])["B.HK"] == 0.0


# ------------------------------------------------------------------------------ attribution


def test_attribution_sums_and_one_effect_by_hand(ds: indexlab.Dataset) -> None:
    att = analytics.attribution(ds, schedule(ds, W_INDEX), schedule(ds, W_BENCH))
    values = closes() * dividends()
    cuts = [2, 5, T - 1]
    r = np.array([values[b] / values[a] - 1 for a, b in itertools.pairwise(cuts)])
    big_r = (W_INDEX * r).sum(axis=1)
    big_b = (W_BENCH * r).sum(axis=1)
    np.testing.assert_allclose(att.periods["index_return"], big_r, rtol=1e-12)
    np.testing.assert_allclose(att.periods["benchmark_return"], big_b, rtol=1e-12)
    cum = np.prod(1 + big_r) - np.prod(1 + big_b)
    assert att.cumulative["active"] == pytest.approx(cum, rel=1e-12)
    for grouping in ("name", "industry", "market"):
        per = att.by_period[grouping].groupby("start")["total"].sum().to_numpy()
        np.testing.assert_allclose(per, big_r - big_b, atol=1e-14)
        assert att.linked[grouping]["total"].sum() == pytest.approx(cum, abs=1e-14)
    # Period 1, IT (A and B): index 0.8, benchmark 0.8 -> no allocation; selection by hand.
    it = att.by_period["industry"]
    row = it[(it["start"] == ds.dates[2]) & (it["group"] == "Information Technology")].iloc[0]
    r_it = (0.5 * r[0, 0] + 0.3 * r[0, 1]) / 0.8
    b_it = (0.3 * r[0, 0] + 0.5 * r[0, 1]) / 0.8
    assert row["allocation"] == pytest.approx(0.0, abs=1e-15)
    assert row["selection"] == pytest.approx(0.8 * (r_it - b_it), rel=1e-12)
    # Period 2, Healthcare (C): index 0.5, benchmark 0.2 -> allocation (0.3)(r_C - B).
    hc = it[(it["start"] == ds.dates[5]) & (it["group"] == "Healthcare")].iloc[0]
    assert hc["allocation"] == pytest.approx(0.3 * (r[1, 2] - big_b[1]), rel=1e-12)
    # Carino: k_t = ln((1 + R_t) / (1 + B_t)) / (R_t - B_t), scaled by the cumulative K.
    k = np.log((1 + big_r) / (1 + big_b)) / (big_r - big_b)
    big_k = np.log(np.prod(1 + big_r) / np.prod(1 + big_b)) / cum
    np.testing.assert_allclose(att.periods["carino_scale"], k / big_k, rtol=1e-12)
    assert att.linking == "carino"


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda ds, s: analytics.factsheet(ds, s, benchmark="NASDAQ"), "benchmark"),
        (lambda ds, s: analytics.factsheet(ds, s, end="2030-01-01"), "end"),
        (lambda ds, s: analytics.trade_list(ds, s, -1e6, ds.dates[5]), "aum_hkd"),
        (lambda ds, s: analytics.trade_list(ds, s, float("nan"), ds.dates[5]), "aum_hkd"),
        (
            lambda ds, s: analytics.trade_list(ds, s, 1e6, ds.dates[5], participation=0),
            "participation",
        ),
        (
            lambda ds, s: analytics.trade_list(ds, s, 1e6, ds.dates[5], participation=1.5),
            "participation",
        ),
        (lambda ds, s: analytics.trade_list(ds, s, 1e6, "2019-01-01"), "date"),
        (lambda ds, s: analytics.trade_list(ds, s, 1e6, ds.dates[9]), "date"),
        (lambda ds, s: analytics.capacity(ds, s, participation=-0.1), "participation"),
        (lambda ds, s: analytics.capacity(ds, s, max_days=0), "max_days"),
        (lambda ds, s: analytics.attribution(ds, s, "HSTECH"), "benchmark"),
        (lambda ds, s: analytics.attribution(ds, s, s, end="2031-01-01"), "end"),
        (lambda ds, s: analytics.attribution(ds, s, s, by="country"), "by"),
        (lambda ds, s: analytics.adv_hkd(ds, "1999-01-01"), "date"),
    ],
)
def test_bad_input_names_the_argument(ds: indexlab.Dataset, call, argument: str) -> None:
    with pytest.raises(indexlab.DataError, match=rf"^{argument}\b"):
        call(ds, schedule(ds, W_INDEX))


def test_search_capacity_is_the_holdings_capacity() -> None:
    from indexlab import search

    ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    ids = list(ds.ids[~np.isnan(ds.field("close")).any(axis=0)][:20])  # listed throughout
    res = search.evaluate(
        ds, [search.MemberList(ids, name="m")], keep_weights=True, participation=0.3,
        liquidity_days=2.0, progress=False,
    )  # fmt: skip
    cap = analytics.capacity(
        ds, res.weights["m"], participation=0.3, max_days=2.0, basis="holdings"
    )
    assert res.table.loc["m", "liquidity_capacity"] == pytest.approx(cap.aum_hkd, rel=1e-12)
