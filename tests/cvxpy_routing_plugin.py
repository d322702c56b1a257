"""A pytest plugin that routes ``cvxpy.Problem.solve`` through ``indexlab.optimise.compile``.

Loaded with ``-p cvxpy_routing_plugin`` into a pytest run of cvxpy's own test modules (see
``tests/test_cvxpy_routing.py``): every solve compiles the problem and solves it as a batch of
one (``CompiledProblem.solve_batch``), then writes values, duals, status and value back the way
``Problem.unpack`` does. It falls back to cvxpy's own solve, recording why, only where
``compile`` refuses the problem with ``DataError`` (integer, not DPP, ...) or where the call asks
for something that is not a plain convex solve (``gp``, ``qcp``, ``requires_grad``, a parameter
without a value). The outcome of every test and every fallback
reason are written as JSON to ``$INDEXLAB_ROUTING_REPORT``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from cvxpy.error import SolverError
from cvxpy.problems.problem import SolverStats
from cvxpy.reductions.solution import Solution
from indexlab.errors import DataError
from indexlab.optimise import compile as compile_problem

_ORIGINAL = cp.Problem.solve
_ROUTED = Counter[str]()
_FALLBACK = Counter[str]()
_OUTCOMES: dict[str, str] = {}

# Keyword arguments that ask for more than a convex solve: left to cvxpy.
_NOT_ROUTED = ("gp", "qcp", "requires_grad", "method", "ignore_dpp", "enforce_dpp")


def _fallback(problem: cp.Problem, reason: str, args: Any, kwargs: Any) -> Any:
    _FALLBACK[reason] += 1
    return _ORIGINAL(problem, *args, **kwargs)


def _routed_solve(self: cp.Problem, *args: Any, **kwargs: Any) -> Any:
    if args and isinstance(args[0], str) and "solver" not in kwargs:
        kwargs = {**kwargs, "solver": args[0]}  # solve(cp.CLARABEL)
        args = args[1:]
    for key in _NOT_ROUTED:
        if kwargs.get(key):
            return _fallback(self, f"solve({key}=...)", args, kwargs)
    if args:
        return _fallback(self, "positional solve arguments", args, kwargs)
    solver = kwargs.get("solver")
    if isinstance(solver, str) and solver not in cp.installed_solvers():
        return _fallback(self, "a solver that is not installed", args, kwargs)
    if any(p.value is None for p in self.parameters()):
        return _fallback(self, "a parameter without a value", args, kwargs)
    try:
        compiled = compile_problem(self)
    except DataError as err:
        reason = str(err)[:90]
        return _fallback(self, f"DataError: {reason}", args, kwargs)
    params = {
        name: np.asarray(p.value, dtype=float)[None] for name, p in compiled.parameters.items()
    }
    sol = compiled.solve_batch(params, threads=1)
    _ROUTED[compiled.path] += 1
    status = sol.status[0]
    if status not in cp.settings.SOLUTION_PRESENT and status not in cp.settings.INF_OR_UNB:
        raise SolverError(f"Solver 'CLARABEL' failed (routed through indexlab): {status}")
    present = status in cp.settings.SOLUTION_PRESENT
    primal = {v.id: sol.values[v.name()][0] if present else None for v in self.variables()}
    # Single duals go through the Solution (as cvxpy's unpack saves them); composite ones (SOC,
    # exponential and power cones) are saved per dual variable.
    duals = sol.duals.instance(0)
    single = {
        c.id: duals[c] for c in self.constraints if c in duals and not isinstance(duals[c], list)
    }
    self.unpack(Solution(status, float(sol.objective[0]), primal, single, {}))
    for c in self.constraints:
        if c in duals and isinstance(duals[c], list):
            for dv, part in zip(c.dual_variables, duals[c], strict=True):
                dv.save_value(np.asarray(part).reshape(dv.shape))
    self._solver_stats = SolverStats.from_dict(
        {
            "solve_time": float(sol.solve_seconds[0]),
            "num_iters": int(sol.iterations[0]),
        },
        "CLARABEL",
    )
    return self.value


def pytest_configure(config: pytest.Config) -> None:
    cp.Problem.solve = _routed_solve  # type: ignore[method-assign]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _OUTCOMES[report.nodeid] = report.outcome
        if report.outcome == "failed":
            _OUTCOMES[report.nodeid] = "failed: " + str(report.longrepr).splitlines()[-1][:300]


def pytest_unconfigure(config: pytest.Config) -> None:
    cp.Problem.solve = _ORIGINAL  # type: ignore[method-assign]
    path = os.environ.get("INDEXLAB_ROUTING_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(
                {"outcomes": _OUTCOMES, "routed": dict(_ROUTED), "fallback": dict(_FALLBACK)},
                f,
                indent=1,
                sort_keys=True,
            )
