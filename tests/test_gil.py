"""The Rust core releases the GIL: Python threads keep running during a long batch call.

While a worker thread runs one long call into the core (one rayon thread, so a core stays
free), the main thread records timestamps in a pure-Python loop. If the call held the GIL, the
main thread would stall for the whole call; with the GIL released its longest pause stays at
the interpreter's switch interval (milliseconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import indexlab
import numpy as np


def longest_main_thread_pause(work: Callable[[], object]) -> tuple[float, float]:
    """(longest pause of the main thread while ``work`` ran, how long ``work`` ran).

    The worker stamps the start and end of ``work``; the pause is the longest gap between the
    main thread's stamps inside that window, the window's ends included. A call that holds the
    GIL leaves no main-thread stamp inside it: the pause is the whole call.
    """
    started, done = threading.Event(), threading.Event()
    window: list[float] = []

    def run() -> None:
        started.set()
        window.append(time.perf_counter())
        work()
        window.append(time.perf_counter())
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    started.wait()
    stamps = []
    while not done.is_set():
        stamps.append(time.perf_counter())
        time.sleep(0.0005)
    worker.join()
    t0, t1 = window
    inside = [t0, *(s for s in stamps if t0 < s < t1), t1]
    return float(np.diff(inside).max()), t1 - t0


def test_backtest_batch_releases_the_gil() -> None:
    rng = np.random.default_rng(0)
    t, n, k, r = 1250, 200, 3000, 20
    tr = np.cumprod(1 + rng.normal(0, 0.02, (t, n)), axis=0)
    w = rng.dirichlet(np.ones(n), size=(k, r))
    reb = np.arange(r) * (t // r)
    pause, span = longest_main_thread_pause(lambda: indexlab.backtest_batch(tr, reb, w, threads=1))
    assert span > 0.1, "the call is too short to tell"
    assert pause < span / 2, f"main thread stalled {pause:.3f} s of a {span:.3f} s call"


def test_fast_path_batch_releases_the_gil() -> None:
    from indexlab.optimise import capped_qp_batch

    rng = np.random.default_rng(1)
    b, n, f = 20000, 300, 10
    scores = rng.random((b, n))
    hi = np.zeros((b, n))
    for row in hi:
        row[rng.choice(n, 30, replace=False)] = 0.08
    loadings = rng.normal(0, 1, (n, f))
    cov = np.diag(rng.uniform(0.01, 0.05, f))
    spec = rng.uniform(0.01, 0.1, n)
    bench = np.full(n, 1 / n)
    pause, span = longest_main_thread_pause(
        lambda: capped_qp_batch(scores, bench, loadings, cov, spec, gamma=5.0, hi=hi, threads=1)
    )
    assert span > 0.1, "the call is too short to tell"
    assert pause < span / 2, f"main thread stalled {pause:.3f} s of a {span:.3f} s call"
