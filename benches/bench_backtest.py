"""Batch backtest: indexlab (Rust, sparse) vs a BLAS-backed numpy implementation of the
backtest conventions (docs/conventions.md).

Case: K candidates, each holding 30 of 300 names, 1,250 days, 20 rebalances. Default K = 1,000
(one run takes a few seconds with ``--benchmark-disable``); ``INDEXLAB_BENCH_FULL=1`` uses
K = 10,000. Targets: >= 10x the numpy baseline, within 3x of the arithmetic bound
(K x T x 30 multiply-adds at the measured per-core rate, over all cores).

The note on the indexlab row gives the bound, how close we are and the peak resident memory
added by the call against the size of its outputs.
"""

from __future__ import annotations

import os
import threading
import time

import indexlab
import numpy as np
import pytest
import scipy.sparse as sp

FULL = os.environ.get("INDEXLAB_BENCH_FULL") == "1"
K = 10_000 if FULL else 1_000
T, N, R, HELD = 1_250, 300, 20, 30


def make_case(k: int = K, seed: int = 0):
    rng = np.random.default_rng(seed)
    tr = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    for i in rng.choice(N, 40, replace=False):  # suspensions: carried forward
        s = rng.integers(1, T - 10)
        tr[s : s + rng.integers(1, 10), i] = np.nan
    reb = np.linspace(0, T - 1, R, endpoint=False).astype(np.int64)
    rows = np.repeat(np.arange(k * R), HELD)
    cols = np.concatenate([rng.choice(N, HELD, replace=False) for _ in range(k * R)])
    vals = rng.random(k * R * HELD) + 0.1
    w = sp.csr_matrix((vals, (rows, cols)), shape=(k * R, N))
    w = sp.csr_matrix(w.multiply(1.0 / np.asarray(w.sum(axis=1))))
    return tr, reb, w


def numpy_batch(tr, reb, w_csr, cost_rate):
    """§5 with BLAS: per holding period, relative prices (days x N) @ weights (N x K)."""
    t = tr.shape[0]
    k = w_csr.shape[0] // len(reb)
    ctr = tr.copy()
    for day in range(1, t):
        gap = np.isnan(ctr[day])
        ctr[day, gap] = ctr[day - 1, gap]
    levels = np.empty((k, t))
    turnover = np.zeros((k, len(reb)))
    levels[:, 0] = 1000.0
    w3 = w_csr.tocsr()
    dense = [w3[j :: len(reb)].toarray().T for j in range(len(reb))]  # each N x K
    for j, r0 in enumerate(reb):
        end = reb[j + 1] if j + 1 < len(reb) else t - 1
        rel = ctr[r0 + 1 : end + 1] / ctr[r0]  # days x N
        block = rel @ dense[j]  # days x K
        levels[:, r0 + 1 : end + 1] = (block * levels[:, r0]).T
        if j + 1 < len(reb):
            drift = dense[j] * rel[-1][:, None] / block[-1]
            diff = np.abs(dense[j + 1] - drift)
            turnover[:, j + 1] = diff.sum(axis=0)
            levels[:, end] *= 1.0 - cost_rate * turnover[:, j + 1]
    return levels, turnover


def madd_rate() -> float:
    """Multiply-adds per second of one core: a cache-resident (2000 x 30) @ (30,) batch."""
    a = np.random.default_rng(1).random((2000, 30))
    v = np.random.default_rng(2).random(30)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(200):
            a @ v
        best = min(best, time.perf_counter() - t0)
    return 200 * a.size / best


def median_seconds(benchmark) -> float | None:
    """The median of the rounds just timed (None with ``--benchmark-disable``)."""
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    return getattr(stats, "median", None)


def peak_rss_delta(fn) -> tuple[float, object]:
    """Peak resident memory added while ``fn`` runs (sampled from /proc every millisecond)."""

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    start, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    th = threading.Thread(target=sample)
    th.start()
    out = fn()
    done.set()
    th.join()
    return max(peak[0], rss()) - start, out


@pytest.fixture(scope="module")
def case():
    return make_case()


@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_backtest_batch(benchmark, case, role: str) -> None:
    tr, reb, w = case
    cost = 0.001
    benchmark.group = f"backtest_batch K={K} x 30/300 x {T}d x {R}reb"
    benchmark.extra_info.update(role=role, baseline="numpy BLAS per period")
    if role == "indexlab":
        fn = lambda: indexlab.backtest_batch(tr, reb, w, cost_rate=cost)  # noqa: E731
        t0 = time.perf_counter()
        rss, out = peak_rss_delta(fn)
        took = time.perf_counter() - t0
        res = benchmark(fn)
        # The bench's median where it ran rounds, else the one run sampled for memory (which
        # shares the cores with its sampling thread).
        took = median_seconds(benchmark) or took
        cores = os.cpu_count() or 1
        bound = K * T * HELD / (madd_rate() * cores)
        outputs = out.levels.nbytes + out.turnover.nbytes
        benchmark.extra_info["note"] = (
            f"bound {bound * 1e3:.0f} ms ({cores} cores), {took / bound:.1f}x the bound; "
            f"peak RSS +{rss / 2**20:.0f} MiB for {outputs / 2**20:.0f} MiB of outputs"
        )
        levels, turnover = res.levels, res.turnover
    else:
        levels, turnover = benchmark(lambda: numpy_batch(tr, reb, w, cost))
    ref_l, ref_t = numpy_batch(tr, reb, w, cost) if role == "indexlab" else (levels, turnover)
    if role == "indexlab":
        np.testing.assert_allclose(levels, ref_l, rtol=1e-10)
        np.testing.assert_allclose(turnover, ref_t, rtol=1e-10, atol=1e-13)
