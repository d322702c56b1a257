"""Explicit thread counts reuse their worker pool from call to call, and a forked child builds its
own rather than wait on threads it did not inherit. A one-instance solve runs on the calling
thread (no worker to wake), so many callers at once each solve on their own thread. Duals stay
lazy down to one instance."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import Duals, compile


def small_problem() -> tuple[object, dict[str, np.ndarray]]:
    w = cp.Variable(4, name="w")
    s = cp.Parameter(4, name="s")
    cap = cp.Parameter(4, nonneg=True, name="cap")
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w) - s @ w), [cp.sum(w) == 1, w >= 0, w <= cap])
    rng = np.random.default_rng(4)
    return compile(problem), {"s": rng.random((3, 4)), "cap": np.full((3, 4), 0.6)}


def test_the_same_thread_count_gives_the_same_results_call_after_call() -> None:
    compiled, params = small_problem()
    first = compiled.solve_batch(params, threads=1)
    for threads in (1, 2, 1, None, 2):
        again = compiled.solve_batch(params, threads=threads)
        np.testing.assert_array_equal(again.values["w"], first.values["w"])


@pytest.mark.parametrize("fast_path", [True, False])
def test_one_instance_solves_from_many_threads_at_once_equal_the_batch(fast_path: bool) -> None:
    compiled, params = small_problem()
    if not fast_path:
        compiled = compile(compiled.problem, fast_path=False)
    assert compiled.uses_fast_path == fast_path
    want = compiled.solve_batch(params, threads=1).values["w"]
    rows = [{k: v[i] for k, v in params.items()} for i in range(len(want))] * 20

    def one(kw: dict[str, np.ndarray]) -> np.ndarray:
        return compiled.solve(**kw).values["w"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(one, rows))
    for i, w in enumerate(got):
        np.testing.assert_array_equal(w, want[i % len(want)])


def _solve_in_child(queue: Any, threads: int | None) -> None:
    compiled, params = small_problem()
    queue.put(compiled.solve_batch(params, threads=threads).values["w"].tolist())


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
@pytest.mark.parametrize("threads", [1, None])
def test_a_forked_child_builds_its_own_pool(threads: int | None) -> None:
    compiled, params = small_problem()
    # The parent's pool (kept, or rayon's global one) is running when the child is forked.
    want = compiled.solve_batch(params, threads=threads).values["w"]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_solve_in_child, args=(queue, threads))
    child.start()
    child.join(timeout=60)
    if child.is_alive():  # waiting on the parent's threads: the bug this test is for
        child.kill()
        pytest.fail("the forked child hung on an inherited worker pool")
    assert child.exitcode == 0
    np.testing.assert_array_equal(np.array(queue.get(timeout=5)), want)


def test_one_instance_of_lazy_duals_is_computed_when_read() -> None:
    calls = []

    def load() -> dict[int, np.ndarray]:
        calls.append(1)
        return {7: np.arange(6.0).reshape(3, 2)}

    batch = Duals(load=load)
    one = batch.instance(1)
    assert calls == []
    np.testing.assert_array_equal(one[7], [2.0, 3.0])
    assert calls == [1]
    np.testing.assert_array_equal(batch.instance(2)[7], [4.0, 5.0])  # loaded once
    assert calls == [1]
