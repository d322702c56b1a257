"""PSD cones through ``compile``: ``X >> 0`` constraints, ``PSD=True`` variables and atoms cvxpy
canonicalises to PSD cones (``lambda_max``), solved in Rust with Clarabel's PSD cone (its BLAS and
LAPACK calls go to SciPy's routines, ``rust/indexlab-py/src/scipy_blas.rs``). Expected values,
objectives and duals come from cvxpy's own Clarabel solve of the same problem."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import compile

from tests.test_cvxpy_routing import check_against_cvxpy


def _random_sdp(rng: np.random.Generator, n: int, k: int) -> tuple[cp.Problem, list[cp.Parameter]]:
    """``min trace(C X)`` s.t. ``trace(A_i X) == b_i``, ``X >> 0``, with ``C`` and the ``A_i``
    symmetric parameters and ``b`` a parameter (DPP)."""
    x = cp.Variable((n, n), symmetric=True, name="X")
    c = cp.Parameter((n, n), name="C")
    a = [cp.Parameter((n, n), name=f"A{i}") for i in range(k)]
    b = cp.Parameter(k, name="b")
    cons = [cp.trace(a[i] @ x) == b[i] for i in range(k)] + [x >> 0]
    return cp.Problem(cp.Minimize(cp.trace(c @ x)), cons), [c, *a, b]


def _instance(rng: np.random.Generator, n: int, k: int) -> list[np.ndarray]:
    """A bounded (``C`` positive definite) and strictly feasible (``b`` from a positive
    definite ``X0``) instance."""

    def sym(m: np.ndarray) -> np.ndarray:
        return (m + m.T) / 2

    g = rng.standard_normal((n, n))
    c = g @ g.T + 0.5 * np.eye(n)
    a = [np.eye(n)] + [sym(rng.standard_normal((n, n))) for _ in range(k - 1)]
    h = rng.standard_normal((n, n))
    x0 = h @ h.T + np.eye(n)
    b = np.array([np.trace(ai @ x0) for ai in a])
    return [c, *a, b]


@pytest.mark.parametrize("seed", range(4))
def test_random_dpp_sdps_match_cvxpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2 + seed % 3
    k = 1 + seed % 3
    problem, params = _random_sdp(rng, n, k)
    compiled = compile(problem, fast_path=False)
    instances = [_instance(rng, n, k) for _ in range(3)]
    batch = {p.name(): np.stack([inst[j] for inst in instances]) for j, p in enumerate(params)}
    sol = compiled.solve_batch(batch)
    for i, inst in enumerate(instances):
        for p, v in zip(params, inst, strict=True):
            p.value = v
        # A fresh solve: with warm_start, cvxpy updates the previous instance's Clarabel solver,
        # which keeps that instance's scaling and can differ from a fresh solve by more than
        # the tolerance on a rank-deficient X.
        problem.solve(solver=cp.CLARABEL, warm_start=False)
        assert sol.status[i] == problem.status == "optimal"
        assert sol.objective[i] == pytest.approx(problem.value, rel=1e-6, abs=1e-6)
        x = problem.variables()[0]
        np.testing.assert_allclose(sol.values["X"][i], x.value, atol=2e-5)
        duals = sol.duals.instance(i)
        for j, con in enumerate(problem.constraints):
            want = np.asarray(con.dual_value, dtype=float)
            scale = 1.0 + float(np.max(np.abs(want), initial=0.0))
            got = np.asarray(duals[con], dtype=float).reshape(want.shape)
            np.testing.assert_allclose(got, want, atol=2e-5 * scale, err_msg=f"constraint {j}")
        # Independent of cvxpy: the solution is (numerically) positive semidefinite.
        assert np.linalg.eigvalsh(sol.values["X"][i]).min() > -1e-7


def test_psd_variable_and_lambda_max_match_cvxpy() -> None:
    # A PSD=True variable (cvxpy lowers it to a symmetric variable with a PSD cone) and
    # lambda_max (an epigraph with a PSD cone), each with a parameter.
    rng = np.random.default_rng(7)
    y = cp.Variable((3, 3), PSD=True, name="Y")
    m = cp.Parameter((3, 3), name="M")  # symmetric by value
    t = cp.Parameter(name="t")
    problem = cp.Problem(
        cp.Minimize(cp.lambda_max(y - m) + cp.sum_squares(y) / 10),
        [cp.trace(y) >= t, y[0, 1] == 0.1],
    )
    compiled = compile(problem, fast_path=False)
    g = rng.standard_normal((3, 3))
    m.value, t.value = (g + g.T) / 2, 2.0
    check_against_cvxpy(problem, compiled, M=m.value, t=t.value)


def test_nsd_constraint_and_infeasible_psd_instance_match_cvxpy() -> None:
    x = cp.Variable((2, 2), symmetric=True, name="X")
    s = cp.Parameter(name="s")
    problem = cp.Problem(cp.Minimize(cp.trace(x)), [x << 0, x[0, 0] >= s])
    compiled = compile(problem, fast_path=False)
    s.value = -1.0
    check_against_cvxpy(problem, compiled, s=-1.0)
    s.value = 1.0  # x[0, 0] >= 1 and X negative semidefinite: infeasible
    check_against_cvxpy(problem, compiled, s=1.0)


def test_presolve_with_a_psd_cone_matches_cvxpy() -> None:
    # The mask fixes w[1] at zero (presolve removes its column and bound rows); the PSD rows
    # keep their data and their duals come back unchanged.
    w = cp.Variable(3, name="w")
    x = cp.Variable((2, 2), symmetric=True, name="X")
    mask = cp.Parameter(3, nonneg=True, name="mask")
    s = cp.Parameter(3, name="s")
    cons = [w >= 0, w <= mask, x >> 0, x[0, 1] == cp.sum(w)]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w - s) + cp.trace(x)), cons)
    compiled = compile(problem, fast_path=False)
    mask.value, s.value = np.array([1.0, 0.0, 1.0]), np.array([2.0, 3.0, 0.5])
    for presolve in (True, False):
        sol = compiled.solve(presolve=presolve, mask=mask.value, s=s.value)
        problem.solve(solver=cp.CLARABEL, warm_start=False)
        assert sol.status == problem.status == "optimal"
        assert sol.objective == pytest.approx(problem.value, rel=1e-6)
        # By hand: w = clip(s - 1, 0, mask) = [1, 0, 0], X = [[1, 1], [1, 1]]. Clarabel stops
        # within 2e-4 of it without presolve (cvxpy's solve too: the masked name's two active
        # bounds and the singular X make the problem degenerate), within 3e-5 with it.
        np.testing.assert_allclose(sol.values["w"], [1.0, 0.0, 0.0], atol=5e-4)
        np.testing.assert_allclose(sol.values["X"], np.ones((2, 2)), atol=5e-4)
        np.testing.assert_allclose(sol.values["w"], w.value, atol=5e-4)
        np.testing.assert_allclose(sol.values["X"], x.value, atol=5e-4)
        for con in cons[2:]:  # unique duals (the masked name's bound duals are not)
            want = np.asarray(con.dual_value, dtype=float)
            got = np.asarray(sol.duals[con], dtype=float).reshape(want.shape)
            np.testing.assert_allclose(got, want, atol=5e-4, err_msg=str(con))
