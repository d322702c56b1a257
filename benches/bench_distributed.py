"""Scale-out: a search on a 2-worker dask cluster vs the same search on a 1-worker cluster.

Workload: ``search.evaluate`` of random 30-name optimiser candidates (AI-chain objective with
a tracking-error penalty, solved at every quarterly review, then backtested), synthetic
universe. Default: 200 names, 4 years, 1,000 candidates in chunks of 100;
``INDEXLAB_BENCH_FULL=1``: 300 names, 5 years, 10,000 candidates in chunks of 250. Both clusters
are ``LocalCluster(processes=True, threads_per_worker=1)`` and every evaluate runs with
``threads=1``, so the ratio (baseline / indexlab) is the speed-up from a second worker process,
driver-side work (context, review risk models, naming, concatenation) included: that part
does not shrink with workers (Amdahl), and on a loaded machine the driver's multi-threaded
BLAS (the risk models' eigendecompositions) is the noisiest part of the timing. Parity: both
tables are equal, exactly, to the in-process run's.

``best_subset`` (2 vs 1 workers, same budget of solves) shows the other side: its batches
(at most 1,024 masks) are cut into shards of a few hundred fast-path solves, tens of us each,
so the task round trip dominates and a cluster only pays off for problems whose solves are
slow (the generic conic path, big universes); the note gives the in-process time.

The last case is the fixed cost of one task: a trivial ``DaskExecutor.map`` round trip (one
item) against the in-process ``LocalExecutor``; its "ratio" is far below 1 and only says how
much work a task must carry to be worth shipping.
Run: ``python -m pytest benches/bench_distributed.py -q`` (timings: without
``--benchmark-disable``; the machine's cores are shared, so figures vary from run to run).
"""

from __future__ import annotations

import functools
import importlib
import operator
import os
import time
from collections.abc import Iterator
from typing import Any

import indexlab
import pandas as pd
import pytest
from indexlab import search
from indexlab.distributed import DaskExecutor, LocalExecutor

distributed = pytest.importorskip("distributed")

FULL = bool(os.environ.get("INDEXLAB_BENCH_FULL"))
N_SEC, YEARS = (300, 5) if FULL else (200, 4)
COUNT, CHUNK = (10_000, 250) if FULL else (1_000, 100)
ROUNDS = 3  # --benchmark-disable (CI) runs each case once whatever this says


@functools.cache
def workload() -> tuple[indexlab.Dataset, list[search.OptimisedCandidate], pd.DataFrame]:
    ds = indexlab.datasets.synthetic(n_securities=N_SEC, years=YEARS, seed=11)
    cands = list(search.random_subsets(list(ds.ids), 30, COUNT, seed=0, te_weight=50.0))
    local = search.evaluate(ds, cands, chunk_size=CHUNK, threads=1).table
    return ds, cands, local


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[int, Any]]:
    made: dict[int, Any] = {}
    try:
        for n in (1, 2):
            cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: 8787 may be taken (no dashboard w/o bokeh)
                silence_logs=50,
            )
            made[n] = distributed.Client(cluster, timeout="60s")
            # Warm the workers (first imports of indexlab, scipy, the fast path) outside timing.
            made[n].run(importlib.import_module, "indexlab.search.evaluate")
            made[n].run(importlib.import_module, "indexlab.optimise.fastpath")
        yield made
    finally:
        for c in made.values():
            cluster = c.cluster
            c.close(timeout=30)
            cluster.close(timeout=30)


@pytest.mark.parametrize("role", ["baseline", "indexlab"])
def bench_distributed_evaluate(benchmark: Any, clients: dict[int, Any], role: str) -> None:
    ds, cands, local = workload()
    workers = 2 if role == "indexlab" else 1
    benchmark.group = (
        f"distributed: evaluate {COUNT} optimiser candidates, {N_SEC} names {YEARS}y, "
        "2 vs 1 workers"
    )
    benchmark.extra_info.update(role=role, baseline="1 dask worker")
    ex = DaskExecutor(clients[workers])
    res = benchmark.pedantic(
        lambda: search.evaluate(ds, cands, chunk_size=CHUNK, threads=1, executor=ex),
        rounds=ROUNDS,
        iterations=1,
    )
    pd.testing.assert_frame_equal(res.table, local, check_exact=True)
    benchmark.extra_info["note"] = f"({COUNT // CHUNK} chunks of {CHUNK}; speed-up from 1 to 2)"


@pytest.mark.parametrize("role", ["baseline", "indexlab"])
def bench_distributed_task_round_trip(benchmark: Any, clients: dict[int, Any], role: str) -> None:
    benchmark.group = "distributed: one trivial task round trip"
    benchmark.extra_info.update(role=role, baseline="in-process LocalExecutor")
    ex = DaskExecutor(clients[2]) if role == "indexlab" else LocalExecutor()
    out = benchmark.pedantic(
        lambda: ex.map(operator.neg, [1]), rounds=20 if FULL else 5, iterations=1
    )
    assert out == [-1]
    benchmark.extra_info["note"] = "(fixed cost per task: scheduler + 2 transfers)"


SUBSET_N, SUBSET_EVALS = (500, 20_000) if FULL else (300, 4_000)


@functools.cache
def subset_workload() -> tuple[Any, Any, float]:
    """A 30-of-N AI-chain problem on a random 5-factor market, and the in-process result."""
    import numpy as np
    from indexlab.optimise import RiskModel, ai_chain_model, compile

    rng = np.random.default_rng(0)
    n = SUBSET_N
    a = rng.normal(0.0, 0.1, (5, 5))
    rm = RiskModel(
        rng.normal(0.0, 1.0, (n, 5)), a @ a.T + np.eye(5) * 0.01, rng.uniform(0.01, 0.06, n)
    )
    mcap = rng.lognormal(0.0, 1.0, n)
    prob, _ = ai_chain_model(
        range(n), mcap / mcap.sum(), rng.uniform(0.0, 1.0, n), rm, cap=0.1, te_weight=50.0
    )
    compiled = compile(prob)
    start = time.perf_counter()
    local = search.best_subset(compiled, **subset_opts())
    return compiled, local, time.perf_counter() - start


def subset_opts() -> dict[str, Any]:
    return {
        "k": 30,
        "seed": 0,
        "method": "auto",
        "max_evaluations": SUBSET_EVALS,
        "threads": 1,
        "progress": False,
    }


@pytest.mark.parametrize("role", ["baseline", "indexlab"])
def bench_distributed_best_subset(benchmark: Any, clients: dict[int, Any], role: str) -> None:
    compiled, local, local_s = subset_workload()
    workers = 2 if role == "indexlab" else 1
    benchmark.group = (
        f"distributed: best_subset 30 of {SUBSET_N}, {SUBSET_EVALS} solves, 2 vs 1 workers"
    )
    benchmark.extra_info.update(role=role, baseline="1 dask worker")
    ex = DaskExecutor(clients[workers])
    res = benchmark.pedantic(
        lambda: search.best_subset(compiled, executor=ex, **subset_opts()),
        rounds=ROUNDS,
        iterations=1,
    )
    assert (res.mask == local.mask).all() and res.objective == local.objective
    assert res.evaluations == local.evaluations
    benchmark.extra_info["note"] = (
        f"(in process: {local_s:.2f} s; a fast-path solve takes tens of us, so a shard needs "
        "thousands of masks to pay for its ~10 ms round trip)"
    )
