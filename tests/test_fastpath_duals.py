"""Dual values on the fast path (``IndexStructure.canonical_duals``), against cvxpy's own
Clarabel solve of the same problem where the duals are unique: the budget ``sum w = 1``, the
sector bounds, and the caps of the names an instance may hold. For the names a mask removes
(both bounds active, duals not unique) the fast path's choice is checked for sign and for
stationarity of the weight's column."""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from indexlab.optimise import RiskModel, compile
from indexlab.optimise.blocks import group_bounds

N, K, HELD, B = 30, 3, 14, 5


def build(
    risk_weight: float, cap: float
) -> tuple[cp.Problem, dict[str, np.ndarray], list[cp.Constraint], cp.Variable]:
    rng = np.random.default_rng(8)
    rm = RiskModel(rng.normal(0, 0.3, (N, K)), np.diag([0.04, 0.02, 0.01]), np.full(N, 0.03))
    bench = rng.dirichlet(np.ones(N))
    w = cp.Variable(N, name="w")
    mask = cp.Parameter(N, nonneg=True, name="mask")
    scores = cp.Parameter(N, name="scores")
    g = rm.factor_root()
    f = cp.Variable(K, name="f")
    active = w - bench
    risk = cp.sum_squares(f) + cp.sum_squares(cp.multiply(np.sqrt(rm.specific_var), active))
    sectors = [i % 3 for i in range(N)]
    cons = [
        cp.sum(w) == 1,
        w >= 0,
        w <= cap * mask,
        # Sectors 0 and 1 bounded, sector 2 not: their rows stay independent of sum w = 1.
        *group_bounds(w, sectors, lo={0: 0.2, 1: 0.2}, hi={0: 0.35, 1: 0.35}),
        f == g @ active,
    ]
    problem = cp.Problem(cp.Maximize(scores @ w - risk_weight * risk), cons)
    masks = np.zeros((B, N))
    for i in range(B):
        masks[i, rng.choice(N, HELD, replace=False)] = 1.0
        for s in range(3):  # every sector can meet its bounds
            masks[i, [j for j in range(N) if sectors[j] == s][:2]] = 1.0
    params = {"mask": masks, "scores": rng.random((B, N))}
    return problem, params, cons, w


def test_fast_path_duals_match_cvxpy_where_unique() -> None:
    # A strong risk penalty and a loose cap keep many held weights strictly inside their
    # bounds, so the duals of the budget, the sectors and the held names' bounds are unique.
    problem, params, cons, _w = build(risk_weight=20.0, cap=0.3)
    compiled = compile(problem)
    assert compiled.path == "fast"
    sol = compiled.solve_batch(params)
    assert len(sol.duals) == len(cons)
    by_name = {p.name(): p for p in problem.parameters()}
    binding = 0
    for i in range(B):
        for name, values in params.items():
            by_name[name].value = values[i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        assert sol.status[i] == problem.status == "optimal"
        d = sol.duals.instance(i)
        # sum w = 1 and the sector bounds: unique.
        assert d[cons[0]] == pytest.approx(cons[0].dual_value, abs=1e-6)
        for c in cons[3:5]:
            np.testing.assert_allclose(d[c], c.dual_value, atol=1e-6, err_msg=str(c))
            binding += int((np.abs(c.dual_value) > 1e-4).sum())
        # The auxiliary definition f == G (w - bench): unique.
        np.testing.assert_allclose(d[cons[5]], cons[5].dual_value, atol=1e-6)
        held = params["mask"][i] > 0
        np.testing.assert_allclose(d[cons[1]][held], cons[1].dual_value[held], atol=1e-6)
        np.testing.assert_allclose(d[cons[2]][held], cons[2].dual_value[held], atol=1e-6)
        # Removed names: signed duals whose difference is the weight's reduced cost, as in
        # cvxpy's (any split is a valid one).
        out = ~held
        assert (d[cons[1]][out] >= 0).all() and (d[cons[2]][out] >= 0).all()
        np.testing.assert_allclose(
            (d[cons[1]] - d[cons[2]])[out],
            (cons[1].dual_value - cons[2].dual_value)[out],
            atol=1e-6,
        )
    assert binding > 0  # a sector bound binds somewhere


def test_degenerate_fast_path_duals_satisfy_the_kkt_conditions() -> None:
    # Most weights at a bound: many duals are valid (Clarabel's is one); the fast path's must
    # make the canonical program's KKT conditions hold to rounding.
    problem, params, _cons, _w = build(risk_weight=2.0, cap=0.12)
    compiled = compile(problem)
    res = compiled._structure.solve_theta(compiled.theta(params))
    assert res.z is not None
    z = res.z()
    zero = compiled._structure.dual_rows.def_rows.size + 1  # definitions and sum w = 1
    for i in range(B):
        can = compiled._canonical({k: v[i] for k, v in params.items()})
        x, p_up = res.x[i], can["P"]
        p_full = p_up + p_up.T - sp.diags_array(p_up.diagonal())
        stationarity = p_full @ x + can["q"] + can["A"].T @ z[i]
        slack = can["b"] - can["A"] @ x
        assert np.abs(stationarity).max() < 1e-10
        assert z[i][zero:].min() > -1e-12
        assert np.abs(z[i][zero:] * slack[zero:]).max() < 1e-12


def assert_kkt(problem: cp.Problem, params: dict[str, np.ndarray], compiled: object) -> None:
    """The fast path's primal and dual solutions satisfy the canonical program's KKT
    conditions (Clarabel's form ``A x + s = b``, ``s`` in the cones, ``z`` in their duals)."""
    dims = problem.get_problem_data(cp.CLARABEL)[0]["dims"]
    res = compiled._structure.solve_theta(compiled.theta(params))  # type: ignore[attr-defined]
    assert res.z is not None
    z = res.z()
    zero, nonneg = int(dims.zero), int(dims.nonneg)
    for i in range(res.x.shape[0]):
        assert res.status[i] == "optimal"
        can = compiled._canonical({k: v[i] for k, v in params.items()})  # type: ignore[attr-defined]
        x, p_up = res.x[i], can["P"]
        p_full = p_up + p_up.T - sp.diags_array(p_up.diagonal())
        stationarity = p_full @ x + can["q"] + can["A"].T @ z[i]
        slack = can["b"] - can["A"] @ x
        assert np.abs(stationarity).max() < 1e-9
        ineq = slice(zero, zero + nonneg)
        assert z[i][ineq].min() > -1e-12
        assert np.abs(z[i][ineq] * slack[ineq]).max() < 1e-11
        start = zero + nonneg
        for size in dims.soc:
            zc, sc = z[i][start : start + size], slack[start : start + size]
            assert zc[0] >= np.linalg.norm(zc[1:]) - 1e-12
            assert abs(zc @ sc) < 1e-10
            start += size


def _budget_problem(budget: float) -> tuple[cp.Problem, dict[str, np.ndarray], list]:
    from indexlab.optimise import tracking_error

    rng = np.random.default_rng(2)
    rm = RiskModel(rng.normal(0, 0.3, (N, K)), np.diag([0.04, 0.02, 0.01]), np.full(N, 0.03))
    w = cp.Variable(N, name="w")
    scores = cp.Parameter(N, name="scores")
    te = tracking_error(w, np.full(N, 1 / N), rm)
    cons = [cp.sum(w) == 1, w >= 0, w <= 0.1, te.norm <= budget, *te.constraints]
    return cp.Problem(cp.Maximize(scores @ w)), {"scores": rng.random((3, N))}, cons


def test_fast_path_duals_with_a_te_budget_match_cvxpy() -> None:
    # The binding budget's multiplier is unique: the marginal score per unit of tracking error.
    _p, params, cons = _budget_problem(0.01)
    problem = cp.Problem(_p.objective, cons)
    compiled = compile(problem)
    assert compiled.path == "fast"
    sol = compiled.solve_batch(params)
    assert len(sol.duals) == len(cons)
    for i in range(3):
        problem.parameters()[0].value = params["scores"][i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        d = sol.duals.instance(i)
        assert cons[3].dual_value > 1e-3  # the budget binds
        assert d[cons[3]] == pytest.approx(cons[3].dual_value, rel=1e-5)
        assert d[cons[0]] == pytest.approx(cons[0].dual_value, rel=1e-5, abs=1e-7)
    assert_kkt(problem, params, compiled)


def test_fast_path_duals_with_turnover_satisfy_the_kkt_conditions() -> None:
    # Weights at their kinks make the duals non-unique (even the budget's): the check is the
    # KKT conditions, including the epigraph rows of every turnover term.
    problem, params, _cons, w = build(risk_weight=5.0, cap=0.15)
    prev = cp.Parameter(N, name="prev")
    rng = np.random.default_rng(3)
    params["prev"] = np.where(params["mask"] > 0, rng.dirichlet(np.ones(N), B), 0.0)
    params["prev"] /= params["prev"].sum(axis=1, keepdims=True)
    turnover = cp.Problem(
        cp.Maximize(problem.objective.args[0] - 0.02 * cp.norm1(w - prev)), problem.constraints
    )
    compiled = compile(turnover)
    assert compiled.path == "fast"
    assert_kkt(turnover, params, compiled)
    sol = compiled.solve_batch(params)
    at_kink = np.abs(sol.values["w"] - params["prev"]) < 1e-12
    assert (at_kink & (params["prev"] > 0)).any()  # some weights stay at their previous value


def test_duals_belong_to_their_batch_when_the_caller_refills_and_solves_again() -> None:
    # The duals are computed on first read, from a snapshot of the batch's parameters: a
    # caller reusing its arrays for the next batches (and earlier results being dropped, so
    # that their snapshots' memory is reused) must not change them.
    problem, params, cons, _w = build(risk_weight=20.0, cap=0.3)
    compiled = compile(problem)
    assert compiled.path == "fast"
    reference = compiled.solve_batch({k: v.copy() for k, v in params.items()})
    expected = [np.array(reference.duals[c]) for c in cons]
    kept = compiled.solve_batch(params)
    rng = np.random.default_rng(3)
    for _ in range(3):
        params["scores"][:] = rng.random(params["scores"].shape)
        dropped = compiled.solve_batch(params)
        _ = dropped.duals[cons[0]]
        del dropped
    for c, want in zip(cons, expected, strict=True):
        np.testing.assert_array_equal(kept.duals[c], want, err_msg=str(c))
