"""Metrics against straightforward numpy computations of the documented formulas."""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab.errors import DataError


def numpy_metrics(levels, bench, rf, ppy):
    r = levels[1:] / levels[:-1] - 1
    rf_d = rf / ppy
    ex = r - rf_d
    out = {
        "total_return": levels[-1] / levels[0] - 1,
        "annual_return": (levels[-1] / levels[0]) ** (ppy / (len(levels) - 1)) - 1,
        "volatility": r.std(ddof=1) * np.sqrt(ppy),
        "sharpe": ex.mean() / r.std(ddof=1) * np.sqrt(ppy),
        "sortino": ex.mean() / np.sqrt(np.mean(np.minimum(ex, 0) ** 2)) * np.sqrt(ppy),
    }
    peak = np.maximum.accumulate(levels)
    dd = 1 - levels / peak
    trough = int(np.argmax(dd))
    out["max_drawdown"] = dd[trough]
    out["drawdown_trough"] = trough
    out["drawdown_peak"] = int(np.argmax(levels[: trough + 1]))
    out["calmar"] = out["annual_return"] / out["max_drawdown"]
    rb = bench[1:] / bench[:-1] - 1
    a = r - rb
    out["tracking_error"] = a.std(ddof=1) * np.sqrt(ppy)
    out["information_ratio"] = a.mean() * ppy / out["tracking_error"]
    c = np.cov(r, rb, ddof=1)
    out["beta"] = c[0, 1] / c[1, 1]
    out["correlation"] = np.corrcoef(r, rb)[0, 1]
    return out


@pytest.mark.parametrize("rf", [0.0, 0.03])
def test_matches_numpy(rf: float) -> None:
    rng = np.random.default_rng(7)
    t = 300
    bench = 1000 * np.exp(np.cumsum(rng.normal(0, 0.01, t)))
    levels = np.stack([1000 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, t))) for _ in range(5)])
    levels[:, 0] = 1000.0
    bench[0] = 1000.0
    turnover = rng.random((5, 6))
    turnover[:, 0] = 0.0
    got = indexlab.metrics(levels, benchmark=bench, rf=rf, turnover=turnover)
    for k in range(5):
        want = numpy_metrics(levels[k], bench, rf, 252)
        for col, value in want.items():
            assert got.loc[k, col] == pytest.approx(value, rel=1e-10, abs=1e-14), col
        assert got.loc[k, "average_turnover"] == pytest.approx(turnover[k, 1:].mean(), rel=1e-14)


def test_dates_and_dataframe_input() -> None:
    dates = pd.date_range("2025-01-01", periods=4, freq="D")
    frame = pd.DataFrame({"a": [100.0, 110.0, 88.0, 99.0], "b": [1.0, 2.0, 3.0, 4.0]}, index=dates)
    m = indexlab.metrics(frame)
    assert list(m.index) == ["a", "b"]
    # a: peak 110 on day 1, trough 88 on day 2, drawdown 1 - 88/110 = 0.2.
    assert m.loc["a", "drawdown_peak"] == dates[1]
    assert m.loc["a", "drawdown_trough"] == dates[2]
    assert m.loc["a", "max_drawdown"] == pytest.approx(0.2, rel=1e-14)
    # b never falls: no drawdown, Calmar undefined, no benchmark -> NaN relative metrics.
    assert m.loc["b", "max_drawdown"] == 0.0
    assert np.isnan(m.loc["b", "calmar"]) and np.isnan(m.loc["b", "beta"])


def test_errors() -> None:
    with pytest.raises(DataError, match=r"levels\[0, 2\] is -1"):
        indexlab.metrics([1.0, 2.0, -1.0])
    with pytest.raises(DataError, match=r"benchmark must have shape \(3,\)"):
        indexlab.metrics([1.0, 2.0, 3.0], benchmark=[1.0, 2.0])
    with pytest.raises(DataError, match="at least 2"):
        indexlab.metrics([1.0])
