"""cvxpy's own test problems routed through ``indexlab.optimise.compile``.

The problem builders of ``cvxpy/tests/solver_test_helpers.py`` (LP, QP, SOCP, SDP, exponential
and power cone problems, with variable attributes such as ``bounds=``) are compiled, solved in
Rust and compared with cvxpy's own Clarabel solve of the same problem: status, objective, every
variable's value and every constraint's ``dual_value``. Integer problems (``mi_*``) are refused
with a ``DataError``. cvxpy and clarabel are pinned, so the expected values come from the
independent solve cvxpy itself makes.
"""

from __future__ import annotations

import inspect
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


def _sdp_supported() -> bool:
    x = cp.Variable((2, 2), PSD=True)
    try:
        compile(cp.Problem(cp.Minimize(cp.trace(x)), [x[0, 0] >= 1]), fast_path=False)
    except DataError:
        return False
    return True


SDP = _sdp_supported()


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


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{n}{a}" for n, a in CASES])
def test_helper_problem_matches_cvxpy(name: str, args: tuple[Any, ...]) -> None:
    problem = getattr(sth, name)(*args).prob
    if name.startswith("sdp") and not SDP:
        with pytest.raises(DataError, match="PSD"):
            compile(problem)
        pytest.skip("this build of the extension has no SDP support")
    check_against_cvxpy(problem, compile(problem, fast_path=False))


def test_counts_every_non_integer_helper() -> None:
    # 24 builders without arguments plus sdp_1 (min, max) and socp_3 (axis 0, 1).
    assert len(CASES) == 28


@pytest.mark.parametrize("name", ["mi_lp_0", "mi_socp_1", "mi_pcp_0"])
def test_integer_helper_problems_are_refused(name: str) -> None:
    problem = getattr(sth, name)().prob
    with pytest.raises(DataError, match=r"(integer|boolean)=True"):
        compile(problem)
