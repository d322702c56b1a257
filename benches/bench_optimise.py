"""Batch solves of index-shaped problems: indexlab's ``solve_batch`` vs cvxpy's DPP re-solve loop
with Clarabel (set parameter values, ``problem.solve``) and, where it builds, cvxpygen's
generated Clarabel solver, same instances, same run.

Cases (300-name universe, 10-factor risk model, 30-name masks, 8% cap):

* ``hand-written``: the flagship shape written directly in cvxpy, no indexlab model: tracking
  error against a dense (cap-weighted, all 300 names) benchmark, sector bounds, liquidity caps.
  :func:`indexlab.optimise.compile` recognises the shape in the canonical data and takes the
  pure-Rust fast path (``compiled.path == "fast"``). Target: >= 500x the cvxpy loop.
* ``te budget``: the same with the penalty replaced by ``TE <= 6%`` (a cone), on the fast path
  with the budget met exactly (see :mod:`indexlab.optimise.structure`).
* ``turnover``: the hand-written problem plus an L1 turnover penalty against a previous weight
  vector (a parameter), on the fast path (each weight's kink is one more bound of its
  active-set method).
* ``generic``: the hand-written problem with ``fast_path=False`` (presolve, then the exact
  dense QP method or Clarabel in Rust): what any other DPP problem of this size gets.
  Target: >= 50x the cvxpy loop.

Every case: >= 10x cvxpygen.

cvxpygen (``pip install cvxpygen==1.0.2``; generated C code calling Clarabel, built with a C
compiler, CMake, Eigen and cargo) is a third baseline for every case (their variables are
named, so the generated code's names match) when it builds in :data:`CVXPYGEN_SECONDS`;
otherwise the bench prints why it is skipped. The baselines solve a sample of instances and
are timed per instance; indexlab solves the whole batch (1,000
instances, 10,000 with ``INDEXLAB_BENCH_FULL=1``; a tenth of that on the generic path), also
reported per instance. Parity: objectives equal within 1e-6 on the sampled instances.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import RiskModel, compile
from indexlab.optimise.blocks import group_bounds

N_NAMES, N_FACTORS, N_HELD, CAP, N_SECTORS = 300, 10, 30, 0.08, 8
BATCH = 10_000 if os.environ.get("INDEXLAB_BENCH_FULL") == "1" else 1_000
SAMPLE = 20
#: Timed batches per case; the median is reported.
ROUNDS = 5
CVXPYGEN_SECONDS = 900
CASES = ("hand-written", "te budget", "turnover", "generic")
#: Cases solved on the generic path (Clarabel in Rust).
GENERIC = ("generic",)
#: Cases cvxpygen can be compared on: their variables have the same names in every process.
CVXPYGEN_CASES = CASES


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
    prev = np.zeros((BATCH, N_NAMES))  # last review's weights: 40 names, capped and rescaled
    for i in range(BATCH):
        held = rng.choice(N_NAMES, 40, replace=False)
        prev[i, held] = rng.dirichlet(np.ones(40))
    return {
        "rm": rm,
        "parent": parent,
        "adv": rng.lognormal(18, 1, N_NAMES),
        "sectors": rng.integers(0, N_SECTORS, N_NAMES).tolist(),
        "params": {
            "mask": masks,
            "scores": np.clip(scores + rng.normal(0, 0.05, (BATCH, N_NAMES)), 0, 1),
        },
        "prev": prev,
    }


def case_params(case: str, count: int | None = None) -> dict[str, np.ndarray]:
    """The batch of parameter values of a case (the first ``count`` instances)."""
    m = market()
    params = dict(m["params"])
    if case == "turnover":
        params["prev"] = m["prev"]
    return {k: v[:count] for k, v in params.items()}


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
    f = cp.Variable(g.shape[0], name="factors")
    specific = cp.multiply(np.sqrt(rm.specific_var), active)
    if case == "te budget":  # TE <= 6%: what tracking_error(w, parent, rm) <= 0.06 writes
        cons += [f == g @ active, cp.norm(cp.hstack([f, specific]), 2) <= 0.06]
        return cp.Problem(cp.Maximize(scores @ w), cons)
    risk = cp.sum_squares(f) + cp.sum_squares(specific)
    objective = scores @ w - 5.0 * risk
    if case == "turnover":
        prev = cp.Parameter(N_NAMES, name="prev")
        objective = objective - 0.002 * cp.norm1(w - prev)  # 20 bp of score per unit traded
    return cp.Problem(cp.Maximize(objective), [*cons, f == g @ active])


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


#: Where the generated code is built, once per machine (the instances are seeded), outside the
#: repository: inside it, cargo would take the generated Rust wrapper for a member of this
#: project's workspace. Delete it after changing a case (the parity check would flag stale code).
CVXPYGEN_DIR = Path(tempfile.gettempdir()) / "indexlab-bench-cvxpygen"


def _cpg_module(case: str) -> str:
    case = "hand-written" if case == "generic" else case  # the same cvxpy problem
    return f"cpg_{case.replace(' ', '_').replace('-', '_')}"


def _child(code: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that has imported this module as ``b``."""
    head = "import sys; sys.path.insert(0, sys.argv[1]); import bench_optimise as b; "
    return subprocess.run(
        [sys.executable, "-c", head + code, str(Path(__file__).parent), *args],
        cwd=CVXPYGEN_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@cache
def cvxpygen_build(case: str) -> str | None:
    """Generate and compile cvxpygen's Clarabel solver of a case in a child process (bounded
    by :data:`CVXPYGEN_SECONDS`); ``None``, or why it is not available."""
    why = cvxpygen_unavailable()
    if why is not None:
        return why
    if case not in CVXPYGEN_CASES:
        return "not a case of this bench"
    CVXPYGEN_DIR.mkdir(parents=True, exist_ok=True)
    module = _cpg_module(case)
    if (CVXPYGEN_DIR / module / "cpg_solver.py").exists():
        return None
    code = (
        "from cvxpygen import cpg; "
        "cpg.generate_code(b.problem(sys.argv[2]), code_dir=sys.argv[3], solver='CLARABEL')"
    )
    try:
        run = _child(code, case, module, timeout=CVXPYGEN_SECONDS)
    except subprocess.TimeoutExpired:
        return f"cvxpygen did not build within {CVXPYGEN_SECONDS} s"
    if run.returncode != 0 or not (CVXPYGEN_DIR / module / "cpg_solver.py").exists():
        return f"cvxpygen did not build: {_build_failure(run.stdout + run.stderr)}"
    return None


def _build_failure(output: str) -> str:
    """Why cvxpygen's build failed, from its output: the compile step's first error (the last
    line is only the import of the module that was never built)."""
    if "Eigen3Config.cmake" in output or "eigen3-config.cmake" in output:
        return "CMake found no Eigen3 (install it: apt-get install libeigen3-dev)"
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("CMake Error", "error:")):
            return line[:200]
    return (lines or ["no output"])[-1][:200]


def test_build_failure_names_the_cause() -> None:
    eigen = "-- Configuring\n  Could not find a package configuration file: Eigen3Config.cmake\n"
    assert "libeigen3-dev" in _build_failure(eigen + "ImportError: cannot import cpg_module")
    assert _build_failure("ok\n  CMake Error at x.txt:3: bad\nImportError: y") == (
        "CMake Error at x.txt:3: bad"
    )
    assert _build_failure("") == "no output"


def cvxpygen_run(case: str, count: int) -> tuple[float, np.ndarray] | str:
    """cvxpygen's solver on the first ``count`` instances of a case: seconds per instance and
    objectives, or why it is not available. It runs in a child process: the pybind11 modules
    cvxpygen generates register the same type names, so two cannot share a process."""
    why = cvxpygen_build(case)
    if why is not None:
        return why
    code = (
        "import json, time; import numpy as np; "
        "m = __import__(sys.argv[3] + '.cpg_solver', fromlist=['cpg_solve']); "
        "prob = b.problem(sys.argv[2]); n = int(sys.argv[4]); "
        "params = b.case_params(sys.argv[2], n); "
        "b.cvxpygen_loop(prob, m.cpg_solve, params, 2); "
        "t = time.perf_counter(); obj = b.cvxpygen_loop(prob, m.cpg_solve, params, n); "
        "print(json.dumps([(time.perf_counter() - t) / n, obj.tolist()]))"
    )
    run = _child(code, case, _cpg_module(case), str(count), timeout=CVXPYGEN_SECONDS)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return f"cvxpygen's solver did not run: {last[:200]}"
    seconds, objectives = json.loads(run.stdout.strip().splitlines()[-1])
    return float(seconds), np.asarray(objectives, dtype=float)


def cvxpygen_loop(
    prob: cp.Problem, solver: Any, params: dict[str, np.ndarray], count: int
) -> np.ndarray:
    """cvxpygen's generated solver on the same instances (its documented use: register it,
    set parameter values, ``problem.solve(method="CPG")``)."""
    prob.register_solve("CPG", solver)
    by_name = {p.name(): p for p in prob.parameters()}
    out = np.empty(count)
    for i in range(count):
        for name, values in params.items():
            by_name[name].value = values[i]
        prob.solve(method="CPG", verbose=False)
        # cvxpygen reports Clarabel's own status code: 1 is "Solved".
        out[i] = prob.value if str(prob.status).startswith("1 ") else np.nan
    return out


def indexlab_batch(case: str) -> tuple[Any, dict[str, np.ndarray], int]:
    """The compiled problem of a case (on its path) and its batch."""
    compiled = compile(problem(case), fast_path=False if case in GENERIC else None)
    assert compiled.path == ("conic" if case in GENERIC else "fast")
    batch = case_params(case, BATCH // 10 if case in GENERIC else BATCH)
    return compiled, batch, next(iter(batch.values())).shape[0]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("role", ["indexlab", "baseline", "cvxpygen"])
def bench_index_batch(benchmark: Any, role: str, case: str) -> None:
    prob = problem(case)
    sample = case_params(case, SAMPLE)
    benchmark.group = f"index shape {N_NAMES} names, {case} (per instance)"
    if role == "indexlab":
        compiled, batch, count = indexlab_batch(case)
        sol = benchmark.pedantic(
            lambda: compiled.solve_batch(batch), rounds=ROUNDS, iterations=1, warmup_rounds=1
        )
        per_instance(benchmark, count)
        benchmark.extra_info.update(
            role=role, baseline="cvxpy DPP loop", note=f"path {compiled.path}, batch {count}"
        )
        ref = cvxpy_loop(prob, sample, SAMPLE)
        ok = np.isfinite(ref)
        assert ok.any()
        np.testing.assert_allclose(sol.objective[:SAMPLE][ok], ref[ok], rtol=1e-6, atol=1e-6)
    elif role == "cvxpygen":
        if getattr(benchmark, "disabled", False):
            # Parity-only runs (CI): building the generated code takes minutes on a fresh
            # machine; the timed runs (`indexlab bench`) check its parity.
            pytest.skip("cvxpygen baseline: timed runs only")
        got = cvxpygen_run(case, SAMPLE)  # builds once, then times in a child process
        if isinstance(got, str):
            pytest.skip(f"cvxpygen baseline skipped: {got}")
        seconds, ref = got
        benchmark.pedantic(lambda: None, rounds=1, iterations=1, warmup_rounds=0)
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if stats is not None:  # the child's own timing of the loop, per instance
            for key in ("min", "max", "mean", "median"):
                setattr(stats, key, seconds)
        benchmark.extra_info.update(role=role, baseline="cvxpygen (Clarabel)")
        compiled, _, _ = indexlab_batch(case)
        ours = compiled.solve_batch(sample).objective
        ok = np.isfinite(ref)
        np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-6, atol=1e-6)
    else:
        benchmark.pedantic(
            lambda: cvxpy_loop(prob, sample, SAMPLE), rounds=1, iterations=1, warmup_rounds=0
        )
        per_instance(benchmark, SAMPLE)
        benchmark.extra_info.update(role=role, baseline="cvxpy DPP loop")


def one_instance(case: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The first instance of a case: each parameter at its own shape (``compiled.solve``'s),
    and as a batch of one (:func:`cvxpy_loop`'s)."""
    batch = case_params(case, 1)
    return {k: v[0] for k, v in batch.items()}, batch


@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_one_instance(benchmark: Any, role: str) -> None:
    """One instance per call, as a notebook or a web request asks for it: ``compiled.solve`` of
    the hand-written case (on the calling thread, no worker woken) against cvxpy's solve."""
    case = "hand-written"
    prob, (one, batch) = problem(case), one_instance(case)
    benchmark.group = f"index shape {N_NAMES} names, one instance per call"
    benchmark.extra_info.update(role=role, baseline="cvxpy solve")
    if role == "indexlab":
        compiled = compile(prob)
        sol = benchmark.pedantic(
            lambda: compiled.solve(**one), rounds=200, iterations=1, warmup_rounds=5
        )
        benchmark.extra_info.update(note="compiled.solve")
        ref = cvxpy_loop(prob, batch, 1)
        assert sol.objective == pytest.approx(ref[0], rel=1e-6, abs=1e-6)
    else:
        benchmark.pedantic(
            lambda: cvxpy_loop(prob, batch, 1), rounds=20, iterations=1, warmup_rounds=1
        )


def _median_seconds(run: Any, arg: Any, rounds: int) -> float:
    """The median wall time of ``rounds`` calls ``run(arg)``, as the pytest-benchmark summary
    reports."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        run(arg)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    """``python benches/bench_optimise.py``: the table without pytest-benchmark."""
    print(
        f"{'case':<13} {'path':<6} {'indexlab us':>11} {'cvxpy loop us':>13} {'ratio':>7} "
        f"{'cvxpygen us':>11} {'ratio':>7}  max objective gap"
    )
    skipped = []
    for case in CASES:
        prob = problem(case)
        sample = case_params(case, SAMPLE)
        compiled, batch, count = indexlab_batch(case)
        sol = compiled.solve_batch(batch)
        ours = _median_seconds(compiled.solve_batch, batch, ROUNDS) / count
        t = time.perf_counter()
        ref = cvxpy_loop(prob, sample, SAMPLE)
        theirs = (time.perf_counter() - t) / SAMPLE
        ok = np.isfinite(ref)
        gap = float(np.abs(sol.objective[:SAMPLE][ok] - ref[ok]).max())
        got = cvxpygen_run(case, SAMPLE)
        if isinstance(got, str):
            skipped.append(f"{case}: {got}")
            gen = f"{'-':>11} {'-':>7}"
        else:
            cpg, objectives = got
            fine = np.isfinite(objectives)
            gap = max(gap, float(np.abs(sol.objective[:SAMPLE][fine] - objectives[fine]).max()))
            gen = f"{cpg * 1e6:11.1f} {cpg / ours:6.0f}x"
        print(
            f"{case:<13} {compiled.path:<6} {ours * 1e6:11.1f} {theirs * 1e6:13.1f} "
            f"{theirs / ours:6.0f}x {gen}  {gap:.1e}"
        )
    for line in skipped:
        print(f"cvxpygen baseline skipped for {line}")
    prob, (one, batch) = problem("hand-written"), one_instance("hand-written")
    compiled = compile(prob)
    ours = _median_seconds(lambda kw: compiled.solve(**kw), one, 200)
    theirs = _median_seconds(lambda b: cvxpy_loop(prob, b, 1), batch, 20)
    print(
        f"one instance per call (hand-written, compiled.solve): {ours * 1e6:.1f} us, "
        f"cvxpy solve {theirs * 1e6:.1f} us, {theirs / ours:.0f}x"
    )


if __name__ == "__main__":
    main()
