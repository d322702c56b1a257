"""Capped weighting: hand-worked examples, an independent numpy reference, properties, errors."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from indexlab import DataError, IndexlabError, InfeasibleError


def reference_iterative(m: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Textbook algorithm (hang-seng-rules.md 6.1): fix breachers at cap, rescale the rest."""
    fixed = np.zeros(len(m), dtype=bool)
    while True:
        if fixed.all():
            return caps.copy()
        left = 1.0 - caps[fixed].sum()
        w = np.where(fixed, caps, m / m[~fixed].sum() * left)
        breach = ~fixed & (w > caps)
        if not breach.any():
            return w
        fixed |= breach


def test_hand_worked_example() -> None:
    # 50/30/10/10 with a 40% cap: 0.4 to the first, 0.6 split 30:10:10.
    w = indexlab.cap_weights([50.0, 30.0, 10.0, 10.0], cap=0.4)
    np.testing.assert_allclose(w, [0.4, 0.36, 0.12, 0.12], rtol=0, atol=1e-15)


def test_hstech_style_example() -> None:
    # Dec 2025 CICC pre-rebalance weights (hang-seng-rules.md 4.1) renormalised and capped at 8%:
    # every name above 8% lands exactly on 8%, the rest scale up by a common factor.
    pre = np.array([9.48, 8.64, 8.46, 5.67, 7.08, 7.84, 5.22, 4.13, 3.72, 1.56, 1.53] + [3.0] * 12)
    w = indexlab.cap_weights(pre, cap=0.08)
    # Alibaba, SMIC, Tencent are over 8% already; NetEase (7.84 of a 99.33 total) crosses 8%
    # once their excess is spread, so it is capped in the second round.
    capped = pre >= 7.84
    assert capped.sum() == 4 and np.all(w[capped] == 0.08)
    rest = w[~capped] / pre[~capped]
    np.testing.assert_allclose(rest, (1 - 4 * 0.08) / pre[~capped].sum(), rtol=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)


def test_capping_factors_reproduce_capped_weights() -> None:
    rng = np.random.default_rng(3)
    m = rng.lognormal(3.0, 1.5, 60)
    cf = indexlab.capping_factors(m, cap=0.05)
    assert cf.max() == 1.0 and (cf > 0).all()
    np.testing.assert_allclose(
        m * cf / (m * cf).sum(), indexlab.cap_weights(m, cap=0.05), atol=1e-14
    )


def test_per_name_caps() -> None:
    # A WVR-style 5% cap on the largest name, 8% on everyone else.
    m = np.array([40.0, 20.0] + [5.0] * 16)
    caps = np.array([0.05] + [1.0] * 17)
    w = indexlab.cap_weights(m, cap=0.08, caps=caps)
    np.testing.assert_allclose(w, reference_iterative(m, np.minimum(caps, 0.08)), atol=1e-14)
    assert w[0] == pytest.approx(0.05)


def test_series_in_series_out() -> None:
    s = pd.Series([3.0, 1.0], index=["0700.HK", "9988.HK"])
    w = indexlab.cap_weights(s, cap=0.6)
    assert list(w.index) == ["0700.HK", "9988.HK"]
    assert w["0700.HK"] == pytest.approx(0.6)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -5.0, np.inf])
def test_bad_market_caps(bad: float) -> None:
    with pytest.raises(DataError, match=r"market_caps\[1\]"):
        indexlab.cap_weights([1.0, bad, 2.0], cap=0.5)


def test_bad_market_cap_named_by_label() -> None:
    s = pd.Series([3.0, np.nan], index=["0700.HK", "9988.HK"])
    with pytest.raises(DataError, match=r"market_caps\['9988.HK'\]"):
        indexlab.cap_weights(s, cap=0.6)


@pytest.mark.parametrize("cap", [-0.1, 0.0, np.nan])
def test_bad_cap(cap: float) -> None:
    with pytest.raises(DataError, match="cap must be"):
        indexlab.cap_weights([1.0, 2.0], cap=cap)


def test_negative_per_name_cap() -> None:
    with pytest.raises(DataError, match=r"caps\[0\]"):
        indexlab.cap_weights([1.0, 2.0], cap=0.8, caps=[-0.1, 0.5])


def test_infeasible_says_how_many_and_what_cap() -> None:
    with pytest.raises(InfeasibleError, match=r"30 names x 3.0000% cap = 90.0000% < 100%") as e:
        indexlab.cap_weights(np.ones(30), cap=0.03)
    assert "3.3333%" in str(e.value) and "34 names" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_two_dimensional_input_rejected() -> None:
    with pytest.raises(DataError, match="one-dimensional"):
        indexlab.cap_weights(np.ones((2, 2)), cap=0.5)


def test_rust_panic_is_an_exception_not_an_abort() -> None:
    with pytest.raises(IndexlabError, match="internal error"):
        indexlab._core._panic_for_tests()


market_caps = st.lists(
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), min_size=1, max_size=80
).map(np.array)


@settings(max_examples=300, deadline=None)
@given(m=market_caps, slack=st.floats(min_value=0.0, max_value=3.0))
def test_properties(m: np.ndarray, slack: float) -> None:
    n = len(m)
    cap = min(1.0, (1.0 + slack) / n)
    w = indexlab.cap_weights(m, cap=cap)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)  # sums to 1
    assert (w <= cap + 1e-15).all()  # within the cap
    order = np.argsort(-m, kind="stable")
    assert (np.diff(w[order]) <= 1e-15).all()  # order preserved
    np.testing.assert_allclose(indexlab.cap_weights(w, cap=cap), w, atol=1e-12)  # idempotent
    np.testing.assert_allclose(w, reference_iterative(m, np.full(n, cap)), atol=1e-12)
    if (m / m.sum()).max() <= cap:  # no cap binds: plain market-cap weights
        np.testing.assert_allclose(w, m / m.sum(), atol=1e-15)
