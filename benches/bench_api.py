"""Service API throughput: N requests through ``indexlab.api.handle`` on 2 threads vs 1.

The Rust core releases the GIL (reviews, backtests, solves), so two threads should serve the
same batch faster than one on a 2-core machine; the pandas/pydantic parts hold the GIL. Parity:
the documents (minus timings) are the same either way. ``INDEXLAB_BENCH_FULL=1`` uses a larger
market and more requests.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from indexlab.api import handle

FULL = os.environ.get("INDEXLAB_BENCH_FULL") == "1"
SYN = {"name": "synthetic", "n_securities": 400 if FULL else 200, "years": 5 if FULL else 3}
N_REQUESTS = 16 if FULL else 8


def _requests(kind: str) -> list[dict[str, Any]]:
    out = []
    for k in range(N_REQUESTS):
        base = {"api_version": "1", "kind": kind, "dataset": {**SYN, "seed": 1}}
        if kind == "build":
            out.append({**base, "rules": "HSTECH", "overrides": {"n": 20 + k}})
        elif kind == "backtest":
            sched = {"rules": "HSTECH", "overrides": {"n": 20 + k}}
            out.append({**base, "schedules": {"s": sched}})
        else:
            out.append({**base, "cap": 0.1, "te_weight": 5.0 + k})
    return out


def _run(requests: list[dict[str, Any]], threads: int) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(threads) as pool:
        docs = list(pool.map(handle, requests))
    return [{k: v for k, v in d.items() if k != "timings"} for d in docs]


@pytest.mark.parametrize("kind", ["build", "backtest", "optimise"])
@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_api_throughput(benchmark: Any, kind: str, role: str) -> None:
    if kind == "optimise":
        pytest.importorskip("cvxpy")
    requests = _requests(kind)
    reference = _run(requests, 1)  # warms the dataset cache (and cvxpy's import)
    assert all("error" not in d for d in reference), [d["error"] for d in reference if "error" in d]
    threads = 2 if role == "indexlab" else 1
    benchmark.group = f"api {kind} x{N_REQUESTS}"
    benchmark.extra_info.update(
        role=role, baseline="1 thread", note=f"indexlab = 2 threads, {N_REQUESTS} requests"
    )
    docs = benchmark(_run, requests, threads)
    assert docs == reference
