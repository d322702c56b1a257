"""Coverage of what Clarabel solves, through ``compile``: variable attributes mapped back as
cvxpy maps them, every cone, problems without parameters or constraints, and dual values.
Expected values come from cvxpy's own Clarabel solve of the same problem."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from indexlab.errors import DataError
from indexlab.optimise import compile

from tests.test_cvxpy_routing import check_against_cvxpy


def _with(p: cp.Parameter, value: float) -> dict[str, float]:
    p.value = value
    return {p.name(): value}


def test_symmetric_variable_before_another_variable() -> None:
    # The reported wrong answer: X came back as [[1, 4], [2.5, 5]].
    x = cp.Variable((2, 2), symmetric=True, name="X")
    y = cp.Variable(2, name="y")
    t = cp.Parameter(name="t")
    target = np.array([[1.0, 2.5], [2.5, 4.0]])
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x - t * target) + cp.sum_squares(y - 5)))
    sol = compile(prob, fast_path=False).solve(t=1.0)
    np.testing.assert_allclose(sol.values["X"], target, atol=1e-6)
    np.testing.assert_allclose(sol.values["y"], [5.0, 5.0], atol=1e-6)


@pytest.mark.parametrize(
    "attrs",
    [
        {"symmetric": True},
        {"diag": True},
        {"nonneg": True},
        {"nonpos": True},
        {"bounds": [-0.3, 0.4]},
        {"sparsity": [(0, 1), (1, 0)]},
    ],
    ids=lambda a: next(iter(a)),
)
# cvxpy itself reads .value of the sparse variable while reducing it, and warns.
@pytest.mark.filterwarnings("ignore:Reading from a sparse CVXPY expression:RuntimeWarning")
def test_variable_attributes_match_cvxpy(attrs: dict[str, object]) -> None:
    a = cp.Variable(3, name="a")
    x = cp.Variable((2, 2), name="X", **attrs)  # type: ignore[arg-type]
    t = cp.Parameter((2, 2), name="t")
    prob = cp.Problem(
        cp.Minimize(cp.sum_squares(x - t) + cp.sum_squares(a)), [cp.sum(a) == 1, cp.sum(x) <= 1]
    )
    c = compile(prob, fast_path=False)
    for seed in range(3):
        t.value = np.random.default_rng(seed).normal(size=(2, 2))
        check_against_cvxpy(prob, c, t=t.value)


@pytest.mark.parametrize(
    ("attrs", "word"),
    [
        ({"integer": True}, "integer"),
        ({"boolean": True}, "boolean"),
        ({"complex": True}, "complex"),
    ],
)
def test_refused_attributes_name_the_variable(attrs: dict[str, bool], word: str) -> None:
    x = cp.Variable(2, name="z", **attrs)  # type: ignore[arg-type]
    prob = cp.Problem(cp.Minimize(cp.sum(cp.abs(x))), [cp.sum(cp.real(x)) >= 1])
    with pytest.raises(DataError, match=rf"variable 'z'.*{word}"):
        compile(prob)


def test_no_parameters_no_constraints() -> None:
    x = cp.Variable(3, name="x")
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x - np.arange(3.0))))
    c = compile(prob, fast_path=False)
    sol = c.solve_batch({})
    assert len(sol) == 1
    np.testing.assert_allclose(sol.values["x"][0], np.arange(3.0), atol=1e-7)
    check_against_cvxpy(prob, c)


def test_duals_of_a_small_lp_by_hand() -> None:
    # min x + 2y s.t. x + y >= t, x, y >= 0: x = t, dual of the first constraint 1, of y >= 0: 1.
    x, y = cp.Variable(name="x"), cp.Variable(name="y")
    t = cp.Parameter(name="t")
    cons = [x + y >= t, x >= 0, y >= 0]
    c = compile(cp.Problem(cp.Minimize(x + 2 * y), cons), fast_path=False)
    sol = c.solve_batch({"t": np.array([1.0, 3.0])})
    np.testing.assert_allclose(sol.duals[cons[0]], [1.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(sol.duals[cons[2]], [1.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(sol.duals[cons[1].id], [0.0, 0.0], atol=1e-7)


def test_small_qp_solved_exactly_with_one_valid_split_of_a_repeated_cap() -> None:
    # A projection onto capped weights: after presolve a strictly convex QP with only linear
    # rows, which the generic path solves with its exact dense method. The cap is written
    # twice, so the duals are not unique: the two caps' duals must add up to cvxpy's, each
    # nonnegative; everything else matches cvxpy's solve. Both targets bind a cap (names 0
    # and 1 in the first, name 0 in the second).
    w, t = cp.Variable(3, name="w"), cp.Parameter(3, name="t")
    cons = [cp.sum(w) == 1, w >= 0, w <= 0.45, w <= 0.45]
    prob = cp.Problem(cp.Minimize(cp.sum_squares(w) - 2 * t @ w), cons)
    c = compile(prob, fast_path=False)
    targets = np.array([[0.9, 0.8, -0.5], [0.5, 0.3, 0.2]])
    sol = c.solve_batch({"t": targets})
    for i, target in enumerate(targets):
        t.value = target
        prob.solve(solver=cp.CLARABEL)
        np.testing.assert_allclose(sol.values["w"][i], w.value, atol=1e-7)
        assert abs(sol.objective[i] - prob.value) < 1e-8
        for con in cons[:2]:
            np.testing.assert_allclose(sol.duals[con][i], con.dual_value, atol=1e-6)
        caps = sol.duals[cons[2]][i] + sol.duals[cons[3]][i]
        np.testing.assert_allclose(caps, cons[2].dual_value + cons[3].dual_value, atol=1e-6)
        assert (sol.duals[cons[2]][i] >= 0).all() and (sol.duals[cons[3]][i] >= 0).all()
        # One valid split (all on the first copy), not Clarabel's even one.
        np.testing.assert_allclose(sol.duals[cons[3]][i], 0.0, atol=1e-12)


# ---- random DPP problems of each cone type, one parameter each, compared with cvxpy


def _problem(kind: str, seed: int) -> tuple[cp.Problem, cp.Parameter]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    x = cp.Variable(n, name="x")
    p = cp.Parameter(n, name="p")
    a = rng.normal(size=(n, n))
    if kind == "lp":
        obj = cp.Minimize(p @ x)
        cons = [cp.sum(x) == 1, x >= -1, x <= 2, a @ x <= 3]
    elif kind == "qp":
        obj = cp.Minimize(cp.sum_squares(a @ x) + p @ x)
        cons = [cp.sum(x) == 1, x >= -rng.random(n)]
    elif kind == "soc":
        obj = cp.Minimize(cp.norm(a @ x - p, 2) + cp.sum(x))
        cons = [cp.norm(x, 2) <= 2, x >= -1]
    elif kind == "exp":
        obj = cp.Maximize(cp.sum(cp.log(x)) - p @ x)
        cons = [cp.sum(x) <= n, cp.sum(cp.exp(x)) <= 20]
    else:  # power
        obj = cp.Maximize(cp.sum(cp.power(x, 0.5 + 0.4 * rng.random(), approx=False)) - p @ x)
        cons = [cp.sum(x) <= n, cp.pnorm(x, 3) <= 5]
    return cp.Problem(obj, cons), p


@pytest.mark.parametrize("kind", ["lp", "qp", "soc", "exp", "pow"])
@settings(
    max_examples=5, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 2.0))
def test_random_dpp_problems_match_cvxpy(kind: str, seed: int, scale: float) -> None:
    prob, p = _problem(kind, seed)
    c = compile(prob, fast_path=False)
    value = scale * np.random.default_rng(seed + 1).random(p.shape)
    check_against_cvxpy(prob, c, **_with(p, value))  # type: ignore[arg-type]
