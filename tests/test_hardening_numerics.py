"""Numerics at the edges: capping exact over the whole float range, checked against an
arbitrary-precision reference; backtest_batch refusing infinite weights, fractional rebalance
days and cost rates outside [0, 1] instead of returning NaN or negative levels."""

from __future__ import annotations

import sys
from fractions import Fraction

import indexlab
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from indexlab import DataError

TINY = 5e-324  # the smallest positive subnormal
HUGE = sys.float_info.max


def exact_capped(m: list[float], caps: list[float]) -> tuple[list[Fraction], Fraction | None]:
    """docs/conventions.md, capping, in exact rational arithmetic: ``w_i = min(c_i, k m_i)`` with
    ``sum(w) = 1``. Walk the kinks ``c_i / m_i`` upwards; returns the weights and ``k`` (``None``
    when every name sits at its cap, which needs the caps to sum to exactly 1)."""
    mf = [Fraction(x) for x in m]
    cf = [Fraction(x) for x in caps]
    order = sorted(range(len(m)), key=lambda i: cf[i] / mf[i])
    left, rest = Fraction(1), sum(mf)
    for i in order:
        k = left / rest
        if k * mf[i] <= cf[i]:
            return [min(c, k * x) for c, x in zip(cf, mf, strict=True)], k
        left -= cf[i]
        rest -= mf[i]
    assert left == 0, "infeasible caps reached the reference"
    return cf, None


def exact_factors(m: list[float], caps: list[float]) -> list[Fraction]:
    """``CF_i = (w_i / m_i) / max_j (w_j / m_j)``, exactly."""
    w, _ = exact_capped(m, caps)
    ratios = [wi / Fraction(x) for wi, x in zip(w, m, strict=True)]
    top = max(ratios)
    return [r / top for r in ratios]


def assert_close_to_exact(got: np.ndarray, exact: list[Fraction]) -> None:
    # A few ulps of each exact weight, or 1e-14 absolute: a name whose kink c_i / m_i lies
    # within rounding of k may land on either side of it, moving weights by ~1e-16.
    for i, (g, e) in enumerate(zip(got.tolist(), exact, strict=True)):
        err = abs(Fraction(g) - e)
        assert err <= Fraction(1, 10**12) * e + Fraction(1, 10**14), (i, g, float(e))


positive = st.floats(min_value=TINY, max_value=HUGE, allow_nan=False, allow_infinity=False)
# Market caps from the whole positive float range, with repeats so that equal inputs occur.
market_caps = st.lists(positive, min_size=1, max_size=6).flatmap(
    lambda pool: st.lists(st.sampled_from(pool), min_size=1, max_size=24)
)


@settings(max_examples=200, deadline=None)
@given(m=market_caps, u=st.floats(min_value=0.0, max_value=1.0), data=st.data())
def test_capping_matches_exact_reference_over_the_float_range(
    m: list[float], u: float, data: st.DataObject
) -> None:
    n = len(m)
    cap = min(1.0, 1.0 / n + u * (1.0 - 1.0 / n))
    per_name = None
    if data.draw(st.booleans()):
        per_name = data.draw(
            st.lists(st.floats(min_value=1e-3, max_value=1.0), min_size=n, max_size=n)
        )
    caps = [cap] * n if per_name is None else [min(cap, c) for c in per_name]
    assume(sum(Fraction(c) for c in caps) >= 1)  # feasible in exact arithmetic
    w = indexlab.cap_weights(np.array(m), cap=cap, caps=per_name)
    exact, _ = exact_capped(m, caps)
    assert np.isfinite(w).all() and (w >= 0).all()
    assert_close_to_exact(w, exact)
    assert abs(float(w.sum()) - 1.0) <= 1e-13
    cf = indexlab.capping_factors(np.array(m), cap=cap, caps=per_name)
    assert np.isfinite(cf).all() and (cf <= 1.0).all() and cf.max() == 1.0
    assert_close_to_exact(cf, exact_factors(m, caps))
    # Equal inputs, equal weights: bit for bit.
    for i in range(n):
        for j in range(i):
            if m[i] == m[j] and caps[i] == caps[j]:
                assert w[i] == w[j] and cf[i] == cf[j], (i, j, w[i], w[j])


@settings(max_examples=200, deadline=None)
@given(
    m=st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=2, max_size=20),
    exponent=st.integers(min_value=-1074, max_value=1023),
    u=st.floats(min_value=0.0, max_value=1.0),
)
def test_capping_is_scale_invariant(m: list[float], exponent: int, u: float) -> None:
    # Scaling by a power of two is exact while nothing turns subnormal: the weights must not move.
    n = len(m)
    cap = min(1.0, 1.0 / n + u)
    assume(cap * n >= 1)
    scaled = np.array([x * 2.0**exponent for x in m]) if exponent > -1000 else None
    if scaled is None:
        scaled = np.array([x * 2.0**-1000 * 2.0 ** (exponent + 1000) for x in m])
    assume(np.isfinite(scaled).all() and (scaled >= sys.float_info.min).all())
    np.testing.assert_array_equal(
        indexlab.cap_weights(scaled, cap=cap), indexlab.cap_weights(np.array(m), cap=cap)
    )


@pytest.mark.parametrize(
    "m",
    [
        [HUGE, HUGE, HUGE],  # the plain sum overflows: weights were 0
        [1e308, 1e308, 5e307, 1e307],
        [TINY] * 4,  # 1 / sum overflows: weights were -inf / NaN
        [TINY, 2 * TINY, 3 * TINY],
        [1e308, 1e-320, 1e-320, 1.7e308],  # more range than one float ratio can hold
    ],
)
def test_extreme_market_caps_give_exact_weights(m: list[float]) -> None:
    cap = 0.3 if len(m) == 4 else 0.5
    w = indexlab.cap_weights(np.array(m), cap=cap)
    assert_close_to_exact(w, exact_capped(m, [cap] * len(m))[0])
    assert abs(w.sum() - 1.0) <= 1e-15


def test_equal_extreme_inputs_get_equal_weights() -> None:
    for x in (TINY, 1e-310, 1.0, 1e308, HUGE):
        w = indexlab.cap_weights(np.full(7, x), cap=0.2)
        assert (w == w[0]).all() and w[0] == pytest.approx(1 / 7, rel=1e-15)


def test_tiny_names_share_what_the_capped_giants_leave() -> None:
    w = indexlab.cap_weights(np.array([1e308, 1.7e308, 1e-320, 1e-320]), cap=0.3)
    assert w.tolist() == [0.3, 0.3, 0.2, 0.2]
    cf = indexlab.capping_factors(np.array([1e308, 1.7e308, 1e-320, 1e-320]), cap=0.3)
    assert cf.tolist() == [0.0, 0.0, 1.0, 1.0]  # exact factors ~1e-628 round to 0


# ------------------------------------------------------------------------------- backtest_batch


def _tr() -> np.ndarray:
    return np.array([[100.0, 50.0, 20.0], [101.0, 49.0, 21.0], [102.0, 51.0, 22.0]])


@pytest.mark.parametrize("allow_short", [False, True])
@pytest.mark.parametrize(
    ("row", "name"),
    [
        ([np.inf, -np.inf, 1.0], 0),
        ([1.0, np.inf, -np.inf], 1),
        ([2.0, 0.0, -np.inf], 2),
        ([np.inf, 0.0, 0.0], 0),
    ],
)
def test_infinite_weights_are_refused(allow_short: bool, row: list[float], name: int) -> None:
    w = np.array([[[0.5, 0.3, 0.2], row]])
    with pytest.raises(DataError, match=rf"candidate 0, rebalance 1: weight of name {name} is"):
        indexlab.backtest_batch(_tr(), [0, 1], w, allow_short=allow_short)


def test_infinite_sparse_weights_are_refused() -> None:
    import scipy.sparse as sp

    w = sp.csr_matrix(np.array([[0.5, 0.3, 0.2], [np.inf, -np.inf, 1.0]]))
    with pytest.raises(DataError, match=r"candidate 0, rebalance 1: weight of name 0 is inf"):
        indexlab.backtest_batch(_tr(), [0, 1], w, allow_short=True)


@pytest.mark.parametrize("reb", [[0, 1.5], [0.0, 2.5], [0, np.nan], [0, np.inf]])
def test_fractional_rebalance_day_is_refused(reb: list[float]) -> None:
    w = np.full((1, 2, 3), 1 / 3)
    with pytest.raises(DataError, match=r"rebalance\[1\] is .*whole numbers"):
        indexlab.backtest_batch(_tr(), reb, w)


def test_whole_float_rebalance_days_still_work() -> None:
    w = np.full((1, 2, 3), 1 / 3)
    a = indexlab.backtest_batch(_tr(), [0.0, 1.0], w).levels
    np.testing.assert_array_equal(a, indexlab.backtest_batch(_tr(), [0, 1], w).levels)


@pytest.mark.parametrize("rate", [1.5, -0.01, np.nan, np.inf])
def test_cost_rate_outside_unit_interval_is_refused(rate: float) -> None:
    w = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    with pytest.raises(DataError, match=r"cost_rate is .*\[0, 1\]"):
        indexlab.backtest_batch(_tr(), [0, 1], w, cost_rate=rate)
    with pytest.raises(DataError, match=r"cost_rate\[2\] is .*\[0, 1\]"):
        indexlab.backtest_batch(_tr(), [0, 1], w, cost_rate=[0.001, 0.001, rate])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"cost_rate": "0.001"}, "cost_rate"),
        ({"cost_rate": True}, "cost_rate"),
        ({"base": "1000"}, "base"),
        ({"base": -1.0}, "base"),
        ({"allow_short": "yes"}, "allow_short"),
    ],
)
def test_lenient_arguments_are_refused(kwargs: dict, argument: str) -> None:
    w = np.full((1, 2, 3), 1 / 3)
    with pytest.raises(DataError, match=argument):
        indexlab.backtest_batch(_tr(), [0, 1], w, **kwargs)


def test_text_weights_and_prices_are_refused() -> None:
    with pytest.raises(DataError, match="weights must be numeric"):
        indexlab.backtest_batch(_tr(), [0, 1], np.full((1, 2, 3), "0.5"))
    with pytest.raises(DataError, match="tr must be numeric"):
        indexlab.backtest_batch(_tr().astype(str), [0, 1], np.full((1, 2, 3), 1 / 3))
    with pytest.raises(DataError, match="rebalance must be numeric"):
        indexlab.backtest_batch(_tr(), ["0", "1"], np.full((1, 2, 3), 1 / 3))


@pytest.mark.parametrize("cap", [True, "0.5", None, 1j])
def test_cap_must_be_a_number(cap: object) -> None:
    with pytest.raises(DataError, match="cap must be a number"):
        indexlab.cap_weights([1.0, 2.0, 3.0], cap=cap)  # type: ignore[arg-type]


@pytest.mark.parametrize("m", [["1", "2"], [True, False], [1 + 1j, 2.0]])
def test_market_caps_must_be_numbers(m: list) -> None:
    with pytest.raises(DataError, match="market_caps must be numeric"):
        indexlab.cap_weights(m, cap=0.6)
