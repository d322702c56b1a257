"""cvxpy's own test problems routed through ``indexlab.optimise.compile``.

The problem builders of ``cvxpy/tests/solver_test_helpers.py`` (LP, QP, SOCP, SDP, exponential
and power cone problems, with variable attributes such as ``bounds=``) are compiled, solved in
Rust and compared with cvxpy's own Clarabel solve of the same problem: status, objective, every
variable's value and every constraint's ``dual_value``. Integer problems (``mi_*``) are refused
with a ``DataError``. cvxpy and clarabel are pinned, so the expected values come from the
independent solve cvxpy itself makes.

cvxpy's own test modules (``test_dpp.py``, the Clarabel class of ``test_conic_solvers.py``,
``test_qp_solvers.py``) also run with every ``Problem.solve`` routed through ``compile``
(``tests/cvxpy_routing_plugin.py``); only problems ``compile`` refuses fall back, with a reason.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cvxpy as cp
import cvxpy.tests.solver_test_helpers as sth
import numpy as np
import pytest
from indexlab.errors import DataError
from indexlab.optimise import compile
from indexlab.optimise.compile import CompiledProblem

# Problems cvxpy's helpers build, with the arguments the parametrised ones take.
_ARGS: dict[str, list[tuple[Any, ...]]] = {"sdp_1": [("min",), ("max",)], "socp_3": [(0,), (1,)]}
_FAMILIES = ("lp", "qp", "socp", "sdp", "expcone", "pcp")


def _builders() -> list[tuple[str, tuple[Any, ...]]]:
    out = []
    for name, fn in sorted(inspect.getmembers(sth, inspect.isfunction)):
        if name.split("_")[0] not in _FAMILIES:
            continue
        for args in _ARGS.get(name, [()]):
            if inspect.signature(fn).parameters and not args:
                continue
            out.append((name, args))
    return out


CASES = _builders()


def _parts(v: Any) -> list[np.ndarray]:
    return [np.asarray(p, dtype=float) for p in v] if isinstance(v, list) else [np.asarray(v)]


def check_against_cvxpy(problem: cp.Problem, compiled: CompiledProblem, **params: Any) -> None:
    """Solve with indexlab, then with cvxpy (Clarabel), and compare at cvxpy's test tolerances
    (``solver_test_helpers``: 4-5 decimal places)."""
    sol = compiled.solve(**params)
    problem.solve(solver=cp.CLARABEL)
    assert sol.status == problem.status
    if problem.status != "optimal":
        return
    assert sol.objective == pytest.approx(problem.value, rel=1e-6, abs=1e-6)
    for v in problem.variables():
        if v.attributes.get("sparsity"):
            want = v.value_sparse.toarray()  # .value warns for sparse variables
        else:
            want = v.value.toarray() if hasattr(v.value, "toarray") else v.value
        np.testing.assert_allclose(sol.values[v.name()], want, atol=2e-5, err_msg=v.name())
    for i, c in enumerate(problem.constraints):
        if c.dual_value is None:
            continue
        got, want = _parts(sol.duals[c]), _parts(c.dual_value)
        assert len(got) == len(want), f"constraint {i}"
        for g, w in zip(got, want, strict=True):
            scale = 1.0 + float(np.max(np.abs(w), initial=0.0))
            np.testing.assert_allclose(
                g.reshape(w.shape), w, atol=2e-5 * scale, err_msg=f"constraint {i}: {c}"
            )


# sdp_batched: a (2, 3, 3) symmetric variable, which cvxpy canonicalises with a warning.
@pytest.mark.filterwarnings("ignore:The problem has an expression with dimension greater than 2")
@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{n}{a}" for n, a in CASES])
def test_helper_problem_matches_cvxpy(name: str, args: tuple[Any, ...]) -> None:
    problem = getattr(sth, name)(*args).prob
    check_against_cvxpy(problem, compile(problem, fast_path=False))


def test_counts_every_non_integer_helper() -> None:
    # 24 builders without arguments plus sdp_1 (min, max) and socp_3 (axis 0, 1).
    assert len(CASES) == 28


@pytest.mark.parametrize("name", ["mi_lp_0", "mi_socp_1", "mi_pcp_0"])
def test_integer_helper_problems_are_refused(name: str) -> None:
    problem = getattr(sth, name)().prob
    with pytest.raises(DataError, match=r"(integer|boolean)=True"):
        compile(problem)


# ------------------------------------------------------------------ cvxpy's own test modules

#: cvxpy's test modules run with every solve routed through compile (tests/cvxpy_routing_plugin.py).
ROUTED_MODULES = ("test_dpp.py", "test_conic_solvers.py::TestClarabel", "test_qp_solvers.py")
#: Why compile may refuse a problem of those modules (then cvxpy solves it, and the plugin
#: records the reason): a problem that is not DPP, or solve() options that ask cvxpy for more
#: than a convex solve. PSD cones (the SDP tests) are routed.
ALLOWED_FALLBACKS = (
    "DataError: problem is not DPP",
    "a solver that is not installed",
    "solve(gp=",
    "solve(enforce_dpp=",
    "solve(ignore_dpp=",
)


def test_cvxpy_test_modules_pass_with_solves_routed_through_compile(tmp_path: Path) -> None:
    import cvxpy.tests

    here = Path(__file__).parent
    tests_dir = Path(cvxpy.tests.__file__).parent
    report = tmp_path / "routing.json"
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")  # cvxpy's tests, not under this project's settings
    env = {
        **os.environ,
        "INDEXLAB_ROUTING_REPORT": str(report),
        "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ini),
            "-p",
            "cvxpy_routing_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-p",
            "no:randomly",
            *[str(tests_dir / m) for m in ROUTED_MODULES],
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    got = json.loads(report.read_text())
    outcomes = got["outcomes"]
    failed = {k: v for k, v in outcomes.items() if v.startswith("failed")}
    assert not failed, failed
    assert run.returncode == 0, run.stdout[-2000:]
    passed = sum(v == "passed" for v in outcomes.values())
    # cvxpy 1.9.3: 128 pass, 17 skip (solvers that are not installed); 187 solves routed, the
    # PSD ones included.
    assert passed >= 128, (passed, outcomes)
    assert got["routed"].get("conic", 0) + got["routed"].get("fast", 0) >= 187
    for reason in got["fallback"]:
        assert reason.startswith(ALLOWED_FALLBACKS), reason


def test_infeasible_instances_report_clarabels_certificate_as_cvxpy_does() -> None:
    x = cp.Variable(2, name="x")
    b = cp.Parameter(name="b")
    cons = [x >= 0, cp.sum(x) == b, x[0] + 2 * x[1] <= 3]
    problem = cp.Problem(cp.Minimize(x[0] - x[1]), cons)
    sol = compile(problem, fast_path=False).solve(b=-1.0)
    b.value = -1.0
    problem.solve(solver=cp.CLARABEL)
    assert sol.status == problem.status == "infeasible"
    assert np.isnan(sol.values["x"]).all()
    for c in cons:
        np.testing.assert_allclose(sol.duals[c], c.dual_value, rtol=1e-9, atol=1e-12)
    assert np.abs(sol.duals[cons[0]]).max() > 0  # a certificate, not zeros
