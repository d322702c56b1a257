"""Fuzz suite of the public numeric entry points (README, Errors).

Each property runs in its own interpreter (one subprocess per batch of hypothesis examples), so
a crash of the Rust core (an abort or a signal) fails the test instead of the test run. Inside,
every example must end in a result or an ``IndexlabError``: a plain Python, numpy or Arrow
exception is a failure too. Example counts are bounded to keep the whole file a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import math, numpy as np, indexlab
from hypothesis import given, settings, HealthCheck, strategies as st
from hypothesis.extra import numpy as hnp
from indexlab.errors import IndexlabError

EDGE = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1.0, 1e-300, 5e-324, 1e308, -1.0, float("nan"), float("inf")])
SETTINGS = settings(max_examples={n}, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck), database=None)

def outcome(call):
    try:
        return call()
    except IndexlabError:
        return None
"""

CASES = {
    "backtest_batch": """
@SETTINGS
@given(t=st.integers(1, 6), n=st.integers(1, 3), k=st.integers(0, 3),
       rebalance=st.lists(st.integers(-1, 7), max_size=3), data=st.data(),
       cost=EDGE, base=EDGE, short=st.booleans(), threads=st.sampled_from([None, 1, 2]))
def prop(t, n, k, rebalance, data, cost, base, short, threads):
    tr = data.draw(hnp.arrays(np.float64, (t, n), elements=EDGE))
    w = data.draw(hnp.arrays(np.float64, (k, len(rebalance), n), elements=EDGE))
    out = outcome(lambda: indexlab.backtest_batch(tr, rebalance, w, cost, base, short, threads))
    if out is not None:
        assert out.levels.shape == (k, t)
""",
    "capped_qp_batch": """
from indexlab.optimise import capped_qp_batch
@SETTINGS
@given(b=st.integers(1, 3), n=st.integers(0, 5), data=st.data(), gamma=EDGE,
       lo=EDGE, hi=EDGE, risk=st.booleans())
def prop(b, n, data, gamma, lo, hi, risk):
    s = data.draw(hnp.arrays(np.float64, (b, n), elements=EDGE))
    kw = {}
    if risk:
        kw = dict(loadings=data.draw(hnp.arrays(np.float64, (n, 1), elements=EDGE)),
                  factor_cov=[[0.04]], specific_var=np.full(n, 0.01))
    out = outcome(lambda: capped_qp_batch(s, gamma=gamma, lo=lo, hi=hi, **kw))
    if out is not None:
        for i, st_ in enumerate(out.status):
            if st_ == "optimal":
                assert abs(out.weights[i].sum() - 1.0) < 1e-6, out
""",
    "metrics": """
@SETTINGS
@given(data=st.data(), k=st.integers(1, 3), t=st.integers(0, 6), bench=st.booleans(),
       rf=EDGE, ppy=EDGE)
def prop(data, k, t, bench, rf, ppy):
    lv = data.draw(hnp.arrays(np.float64, (k, t), elements=EDGE))
    b = data.draw(hnp.arrays(np.float64, (t,), elements=EDGE)) if bench else None
    outcome(lambda: indexlab.metrics(lv, b, rf, ppy))
""",
    "build_index": """
from indexlab import rules
ds = indexlab.datasets.synthetic()
COUNT = st.integers(0, 50) | st.sampled_from([10**9, 2**31 - 1])
@settings(max_examples={n_small}, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck), database=None)
@given(n=COUNT, cap=EDGE, buffer=EDGE, top=COUNT, days=COUNT, ind=COUNT)
def prop(n, cap, buffer, top, days, ind):
    def run():
        r = rules.HSTECH.replace(**{"n": n, "cap": cap, "buffer": buffer,
            "selection.fast_entry_top": top, "selection.fast_entry_days": days,
            "selection.max_per_industry": ind})
        return indexlab.build_index(ds, r, start="2018-01-01")
    outcome(run)
""",
    "compile_solve": """
import cvxpy as cp
from indexlab.optimise import compile
w, t = cp.Variable(3), cp.Parameter(3, name="t")
cap = cp.Parameter(nonneg=True, name="cap")
prob = cp.Problem(cp.Minimize(cp.sum_squares(w - t)), [cp.sum(w) == 1, w >= 0, w <= cap])
compiled = compile(prob)
@SETTINGS
@given(data=st.data(), b=st.integers(1, 3))
def prop(data, b):
    tv = data.draw(hnp.arrays(np.float64, (b, 3), elements=EDGE))
    cv = data.draw(hnp.arrays(np.float64, (b,), elements=EDGE))
    outcome(lambda: compiled.solve_batch({"t": tv, "cap": cv}))
""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_entry_point_gives_a_result_or_an_indexlab_error(case: str) -> None:
    code = PRELUDE.format(n=60) + CASES[case].replace("{n_small}", "15") + "\nprop()\n"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"{case}: exit {proc.returncode} (negative = killed by a signal)\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
