"""Resource bounds of the Rust binding (README, Errors: no crash, no hang).

A size check before every large allocation (a `DataError` stating the memory needed and the
limit, never an interpreter abort), `threads` validated and bounded by the machine (never a
hang), oversized rule counts that never reach an index-out-of-bounds panic, and Ctrl-C seen
within ~100 ms by the long batch loops. Calls that aborted or hung before the fix run in a
subprocess with a timeout, so a regression fails the test instead of killing the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import cvxpy as cp
import indexlab
import numpy as np
import pytest
from indexlab import _core, rules
from indexlab.errors import DataError
from indexlab.optimise import capped_qp_batch


def _run(code: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter; its stdout, after asserting it exited cleanly."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def small_limit() -> Iterator[int]:
    """A 1 MiB allocation limit for the test, the previous limit restored after it."""
    _core.set_max_alloc_bytes(1 << 20)
    try:
        yield 1 << 20
    finally:
        _core.set_max_alloc_bytes(None)


# ---- 1. memory: a size check before any large allocation


def test_huge_sparse_backtest_is_a_data_error_not_an_abort() -> None:
    # 100,000 one-entry CSR candidates over a million days: 800 GB of levels from 9 MB of
    # input. The binding used to allocate first and abort the interpreter.
    out = _run(
        """
        import numpy as np, scipy.sparse as sp, indexlab
        k, t = 100_000, 1_000_000
        w = sp.csr_matrix((np.ones(k), np.zeros(k, dtype=np.int32), np.arange(k + 1)), (k, 1))
        try:
            indexlab.backtest_batch(np.ones((t, 1)), [0], w)
        except indexlab.DataError as e:
            print("DataError:", e)
        """
    )
    assert "DataError: backtest_batch: levels 100000 x 1000000" in out
    assert "needs 745.07 GiB" in out and "above the limit of" in out


def test_backtest_over_the_set_limit(small_limit: int) -> None:
    tr = np.ones((1000, 2))
    w = np.full((200, 1, 2), 0.5)  # 200 x 1000 levels = 1.6 MB > 1 MiB
    with pytest.raises(
        DataError, match=r"needs 1\.6 MiB \(1633600 bytes\) of memory, above the limit of 1\.0 MiB"
    ):
        indexlab.backtest_batch(tr, [0], w)
    assert indexlab.backtest_batch(tr, [0], w[:10]).levels.shape == (10, 1000)


def test_capped_qp_and_solve_batch_over_the_limit(small_limit: int) -> None:
    with pytest.raises(DataError, match=r"capped_qp_batch: weights 2000 x 100 needs"):
        capped_qp_batch(np.ones((2000, 100)), hi=0.1)
    x = cp.Variable(100)
    theta = cp.Parameter(100, name="theta")
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x - theta)), [cp.sum(x) == 1])
    compiled = indexlab.optimise.compile(prob, fast_path=False)
    with pytest.raises(DataError, match=r"solve_batch: solutions 2000 x \d+ needs"):
        compiled.solve_batch({"theta": np.ones((2000, 100))})


def test_limit_from_the_environment_and_setter() -> None:
    out = _run(
        """
        import numpy as np, indexlab
        from indexlab import _core
        print(_core.max_alloc_bytes())
        try:
            indexlab.backtest_batch(np.ones((1000, 1)), [0], np.ones((100, 1, 1)))
        except indexlab.DataError as e:
            print("DataError:", e)
        print(_core.set_max_alloc_bytes(10**9))
        print(indexlab.backtest_batch(np.ones((1000, 1)), [0], np.ones((100, 1, 1))).levels.shape)
        """,
        env={"INDEXLAB_MAX_ALLOC_BYTES": "100000"},
    )
    lines = out.splitlines()
    assert lines[0] == "100000"
    assert "INDEXLAB_MAX_ALLOC_BYTES" in lines[1] and lines[1].startswith("DataError:")
    assert lines[2:] == ["1000000000", "(100, 1000)"]
    with pytest.raises(DataError, match="limit"):
        _core.set_max_alloc_bytes(-1)


def test_default_limit_is_at_most_16_gib() -> None:
    assert 0 < _core.max_alloc_bytes() <= 16 << 30


# ---- 2. threads: validated and bounded by the machine


def test_a_million_threads_is_refused_at_every_entry_point() -> None:
    # Each of these hung (starting a million OS threads) before the bound.
    out = _run(
        """
        import numpy as np, cvxpy as cp, indexlab
        from indexlab.optimise import capped_qp_batch
        x, th = cp.Variable(2), cp.Parameter(2, name="th")
        prob = cp.Problem(cp.Minimize(cp.sum_squares(x - th)), [cp.sum(x) == 1])
        calls = {
            "backtest_batch": lambda t: indexlab.backtest_batch(
                np.ones((3, 2)), [0], np.full((1, 1, 2), 0.5), threads=t),
            "capped_qp_batch": lambda t: capped_qp_batch(np.ones((1, 3)), threads=t),
            "solve_batch": lambda t: indexlab.optimise.compile(prob, fast_path=False)
                .solve_batch({"th": np.ones((1, 2))}, threads=t),
        }
        for name, call in calls.items():
            try:
                call(10**6)
                print(name, "accepted")
            except indexlab.DataError as e:
                print(name, "DataError", e)
        """,
        timeout=60,
    )
    for name in ("backtest_batch", "capped_qp_batch", "solve_batch"):
        line = next(ln for ln in out.splitlines() if ln.startswith(name))
        assert "DataError threads:" in line and "found 1000000" in line, out


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4", 10**30])
def test_bad_threads_name_the_argument(bad: object) -> None:
    with pytest.raises(DataError, match="threads"):
        w = np.full((1, 1, 2), 0.5)
        indexlab.backtest_batch(np.ones((3, 2)), [0], w, threads=bad)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="threads"):
        capped_qp_batch(np.ones((1, 3)), threads=bad)  # type: ignore[arg-type]


def test_threads_up_to_the_bound_are_accepted() -> None:
    top = _core.max_threads()
    assert top >= 4
    w = np.full((2, 1, 2), 0.5)
    one = indexlab.backtest_batch(np.ones((3, 2)), [0], w, threads=1)
    most = indexlab.backtest_batch(np.ones((3, 2)), [0], w, threads=np.int64(top))  # type: ignore[arg-type]
    np.testing.assert_array_equal(one.levels, most.levels)


# ---- 3. rule counts past the panel


def test_oversized_fast_entry_days_means_never(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = indexlab.datasets.synthetic()
    base = rules.HSTECH.replace(**{"selection.fast_entry_top": 100})
    never = indexlab.build_index(ds, base.replace(**{"selection.fast_entry_top": 0}))
    for days in (10**9, 2**31 - 1):
        hist = indexlab.build_index(ds, base.replace(**{"selection.fast_entry_days": days}))
        assert hist.changes().equals(never.changes()), days
    # The core takes any usize; 2**63 + 5 used to wrap to a negative day (an IndexError on
    # the returned days, or a Rust index-out-of-bounds panic). Reach it below the rules model.
    real = _core.run_reviews

    def huge(arrays: dict[str, object], params: dict[str, object]) -> dict[str, object]:
        return real(arrays, {**params, "fast_entry_days": 2**63 + 5})

    monkeypatch.setattr(_core, "run_reviews", huge)
    hist = indexlab.build_index(ds, base.replace(**{"selection.fast_entry_days": 10}))
    assert hist.changes().equals(never.changes())


def test_rule_value_past_the_platform_is_a_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _core.run_reviews

    def huge(arrays: dict[str, object], params: dict[str, object]) -> dict[str, object]:
        return real(arrays, {**params, "fast_entry_days": 2**70})

    monkeypatch.setattr(_core, "run_reviews", huge)
    with pytest.raises(DataError, match="rules value fast_entry_days is 1180591620717411303424"):
        indexlab.build_index(indexlab.datasets.synthetic(), rules.HSTECH)


# ---- 4. Ctrl-C within ~100 ms of a long batch loop


def test_ctrl_c_stops_a_long_capped_qp_batch_quickly() -> None:
    # ~30 ms per instance on 2 cores: the batch takes minutes, one chunk of the old binding
    # (4096 instances) tens of seconds.
    code = """
        import sys, numpy as np
        from indexlab.optimise import capped_qp_batch
        rng = np.random.default_rng(0)
        n, k = 300, 10
        args = dict(loadings=rng.normal(size=(n, k)), factor_cov=np.eye(k) * 0.01,
                    specific_var=np.full(n, 0.02), gamma=5.0, hi=0.05)
        s = rng.normal(size=(20_000, n))
        capped_qp_batch(s[:2], **args)          # warm up: imports and first-call costs
        print("ready", flush=True)
        capped_qp_batch(s, **args)
        print("finished", flush=True)
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in err, err
    assert took < 1.5, f"stopped {took:.2f} s after Ctrl-C"
