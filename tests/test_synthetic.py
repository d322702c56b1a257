"""Tests of the seeded synthetic market generator (arrays only; no Dataset needed)."""

from __future__ import annotations

import re
import time

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from indexlab.data import AI_LAYERS, INDUSTRIES, PANEL_FIELDS, SECURITY_COLUMNS
from indexlab.datasets.synthetic import SyntheticMarket, synthetic_arrays

FIELDS = PANEL_FIELDS
COLUMNS = {*SECURITY_COLUMNS, "hk_company", "tech_theme", "ai_rationale", "data_end"}


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return synthetic_arrays(n_securities=300, years=5.0, seed=0)


def listed_mask(m: SyntheticMarket) -> npt.NDArray[np.bool_]:
    """(T, N) listed on [listing_date, delisting_date], from the master alone."""
    dates = m.dates.astype("datetime64[D]")[:, None]
    listing = m.securities["listing_date"].to_numpy().astype("datetime64[D]")
    delisting = m.securities["delisting_date"].to_numpy().astype("datetime64[D]")
    end = np.where(np.isnat(delisting), np.datetime64("2999-12-31"), delisting)
    return (dates >= listing) & (dates <= end)


def cap_hkd(m: SyntheticMarket) -> npt.NDArray[np.float64]:
    fx = m.fx.set_index("date")["to_hkd"].to_numpy()
    is_hk = (m.securities["currency"] == "HKD").to_numpy()
    rate = np.where(is_hk[None, :], 1.0, fx[:, None])
    return m.fields["close"] * m.fields["shares_outstanding"] * rate


def test_shapes_columns_and_codes(market: SyntheticMarket) -> None:
    m = market
    sec = m.securities
    n_days = len(m.dates)
    assert n_days == 1260
    assert m.dates.dtype == np.dtype("datetime64[D]")
    assert (np.diff(m.dates) > np.timedelta64(0, "D")).all()
    assert np.is_busday(m.dates).all()
    assert str(m.dates[0]) == "2016-01-04"
    assert set(sec.columns) == COLUMNS
    assert len(sec) == 300 and sec["id"].is_unique
    assert set(m.fields) == set(FIELDS)
    for name in FIELDS:
        assert m.fields[name].shape == (n_days, 300)
        assert m.fields[name].dtype == np.float64
    pattern = {"HK": r"\d{4}\.HK", "SH": r"6\d{5}\.SH", "SZ": r"[03]\d{5}\.SZ"}
    for code, mkt in zip(sec["id"], sec["market"], strict=True):
        assert re.fullmatch(pattern[mkt], code), code
    assert (sec["market"] != "HK").mean() == pytest.approx(0.2, abs=0.01)
    expected_ccy = np.where(sec["market"] == "HK", "HKD", "CNY")
    assert (sec["currency"].to_numpy() == expected_ccy).all()
    assert set(sec["industry"]) <= set(INDUSTRIES)
    assert set(sec["ai_layer"]) <= set(AI_LAYERS)
    assert set(sec["listing_type"]) <= {"primary", "secondary"}
    assert sec["ai_score"].between(0.0, 1.0).all()
    for column in ("wvr", "connect_eligible", "hk_company"):
        assert sec[column].dtype == bool
    assert not sec.loc[sec["market"] != "HK", ["wvr", "hk_company"]].to_numpy().any()
    for column in ("listing_date", "delisting_date", "data_end"):
        assert pd.api.types.is_datetime64_any_dtype(sec[column])
    last = pd.Timestamp(m.dates[-1])
    expected_end = sec["delisting_date"].fillna(last)
    assert (sec["data_end"] == expected_end).all()
    assert list(m.fx.columns) == ["date", "currency", "to_hkd"]
    assert len(m.fx) == n_days and set(m.fx["currency"]) == {"CNY"}
    assert list(m.benchmarks.columns) == ["date", "index", "level"]
    assert set(m.benchmarks["index"]) == {"HSI", "HSTECH"}
    assert (m.benchmarks["level"] > 0).all()


def test_ai_score_follows_layer(market: SyntheticMarket) -> None:
    score = market.securities.groupby("ai_layer")["ai_score"].mean()
    assert score["compute"] > score["application"] > score["none"]
    assert score["none"] < 0.1


def test_same_seed_same_output() -> None:
    a = synthetic_arrays(n_securities=60, years=1.5, seed=42)
    b = synthetic_arrays(n_securities=60, years=1.5, seed=42)
    pd.testing.assert_frame_equal(a.securities, b.securities)
    np.testing.assert_array_equal(a.dates, b.dates)
    for name in FIELDS:
        np.testing.assert_array_equal(a.fields[name], b.fields[name])
    pd.testing.assert_frame_equal(a.fx, b.fx)
    pd.testing.assert_frame_equal(a.benchmarks, b.benchmarks)


def test_different_seeds_differ() -> None:
    a = synthetic_arrays(n_securities=60, years=1.5, seed=1)
    b = synthetic_arrays(n_securities=60, years=1.5, seed=2)
    assert not a.securities["id"].equals(b.securities["id"])
    assert not np.array_equal(a.fields["close"], b.fields["close"], equal_nan=True)


def test_values_positive_where_present(market: SyntheticMarket) -> None:
    for name in FIELDS:
        values = market.fields[name]
        present = values[~np.isnan(values)]
        assert (present > 0).all(), name
        assert np.isfinite(present).all(), name
    ff = market.fields["free_float_factor"]
    assert (ff[~np.isnan(ff)] <= 1.0).all()


def test_nan_outside_listing_and_defined_inside(market: SyntheticMarket) -> None:
    listed = listed_mask(market)
    for name in FIELDS:
        assert np.isnan(market.fields[name][~listed]).all(), name
    # Share counts and free float are defined on every listed day, suspended or not.
    for name in ("shares_outstanding", "free_float_factor"):
        assert not np.isnan(market.fields[name][listed]).any(), name


def test_ipos_and_delistings(market: SyntheticMarket) -> None:
    sec = market.securities
    start = pd.Timestamp(market.dates[0])
    ipo = sec["listing_date"] > start
    assert 0.05 <= ipo.mean() <= 0.11
    delisted = sec["delisting_date"].notna()
    assert 0.01 <= delisted.mean() <= 0.05
    close = market.fields["close"]
    for i in np.flatnonzero(delisted):
        t = int(np.searchsorted(market.dates, sec["delisting_date"].iloc[i].to_datetime64()))
        assert t < len(market.dates) - 1
        assert np.isnan(close[t + 1 :, i]).all()


def test_a_large_ipo_ranks_top10_on_day_one(market: SyntheticMarket) -> None:
    sec = market.securities
    caps = cap_hkd(market)
    ranks = []
    for i in np.flatnonzero(sec["listing_date"] > pd.Timestamp(market.dates[0])):
        t = int(np.searchsorted(market.dates, sec["listing_date"].iloc[i].to_datetime64()))
        assert market.dates[t] == sec["listing_date"].iloc[i].to_datetime64()
        assert np.isnan(caps[:t, i]).all() and not np.isnan(caps[t, i])
        day = caps[t]
        ranks.append(1 + int((day[~np.isnan(day)] > day[i]).sum()))
    assert min(ranks) <= 10


def test_market_caps_span_small_to_mega(market: SyntheticMarket) -> None:
    first = cap_hkd(market)[0]
    first = first[~np.isnan(first)]
    assert first.min() >= 0.9e9
    assert first.max() >= 5e11
    assert 3e9 <= np.median(first) <= 3e10


def test_some_names_are_illiquid(market: SyntheticMarket) -> None:
    index = pd.DatetimeIndex(market.dates)
    months = index.to_period("M")
    ff_cap = (
        market.fields["close"]
        * market.fields["shares_outstanding"]
        * market.fields["free_float_factor"]
    )
    traded = pd.DataFrame(market.fields["turnover_value"], index=index).groupby(months).sum()
    float_cap = pd.DataFrame(ff_cap, index=index).groupby(months).mean()
    velocity = (traded / float_cap).median()
    assert (velocity < 0.001).sum() >= 3
    assert 0.02 <= velocity.median() <= 0.12


def test_turnover_shares_is_value_over_close(market: SyntheticMarket) -> None:
    np.testing.assert_allclose(
        market.fields["turnover_shares"] * market.fields["close"],
        market.fields["turnover_value"],
        rtol=1e-12,
    )


def test_some_suspensions(market: SyntheticMarket) -> None:
    listed = listed_mask(market)
    runs = []
    for name in ("close", "total_return", "turnover_value"):
        assert (np.isnan(market.fields[name]) & listed).any(), name
    gap = np.isnan(market.fields["close"]) & listed
    for i in np.flatnonzero(gap.any(axis=0)):
        edges = np.diff(np.concatenate([[0], gap[:, i].astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        runs.extend((stops - starts).tolist())
    assert len(runs) >= 2
    assert min(runs) >= 5 and max(runs) <= 60


def test_total_return_outgrows_close(market: SyntheticMarket) -> None:
    tr, close = market.fields["total_return"], market.fields["close"]
    last = len(market.dates) - 1
    alive = ~np.isnan(tr[0]) & ~np.isnan(tr[last])
    ratio = (tr[last, alive] / close[last, alive]) / (tr[0, alive] / close[0, alive])
    assert (ratio >= 1.0 - 1e-12).all()
    assert np.median(ratio) > 1.02


def test_volatility_and_fx_ranges(market: SyntheticMarket) -> None:
    log_tr = np.log(market.fields["total_return"])
    vol = np.nanstd(np.diff(log_tr, axis=0), axis=0) * np.sqrt(252)
    lo, hi = np.nanpercentile(vol, [5, 95])
    assert 0.2 <= lo and hi <= 0.7
    assert market.fx["to_hkd"].between(1.06, 1.12).all()


def test_ai_names_move_together(market: SyntheticMarket) -> None:
    returns = pd.DataFrame(np.diff(np.log(market.fields["total_return"]), axis=0))
    corr = returns.corr(min_periods=120).to_numpy()
    layer = market.securities["ai_layer"].to_numpy()
    ai, other = np.flatnonzero(layer != "none"), np.flatnonzero(layer == "none")
    ai_ai = corr[np.ix_(ai, ai)][~np.eye(len(ai), dtype=bool)]
    ai_other = corr[np.ix_(ai, other)]
    assert np.nanmean(ai_ai) > np.nanmean(ai_other) + 0.1


def test_hsi_first_day_is_cap_weighted_top50(market: SyntheticMarket) -> None:
    sec = market.securities
    hk = np.flatnonzero((sec["market"] == "HK").to_numpy())
    close, shares = market.fields["close"], market.fields["shares_outstanding"]
    ff, tr = market.fields["free_float_factor"], market.fields["total_return"]
    cap0 = close[0, hk] * shares[0, hk]
    top = hk[np.argsort(-np.nan_to_num(cap0, nan=-1.0))[:50]]
    weight = close[0, top] * shares[0, top] * ff[0, top]
    weight /= weight.sum()
    expected = 1000.0 * float(weight @ (tr[1, top] / tr[0, top]))
    hsi = market.benchmarks[market.benchmarks["index"] == "HSI"]["level"].to_numpy()
    assert hsi[0] == 1000.0
    assert hsi[1] == pytest.approx(expected, rel=1e-12)


def test_small_inputs_work() -> None:
    m = synthetic_arrays(n_securities=10, years=0.05, seed=3, a_share_fraction=0.5)
    assert m.fields["close"].shape == (13, 10)
    assert set(m.securities["market"]) == {"HK", "SH", "SZ"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_securities": 9}, "n_securities"),
        ({"years": 0}, "years"),
        ({"years": -1.0}, "years"),
        ({"a_share_fraction": 1.5}, "a_share_fraction"),
        ({"start": "not a date"}, "start"),
    ],
)
def test_invalid_inputs_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic_arrays(**kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_large_market_is_fast() -> None:
    began = time.perf_counter()
    m = synthetic_arrays(n_securities=3000, years=10.0, seed=0)
    elapsed = time.perf_counter() - began
    assert m.fields["close"].shape == (2520, 3000)
    assert elapsed < 30.0
