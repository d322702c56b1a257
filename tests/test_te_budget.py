"""Tracking-error budget ``blocks.tracking_error(...) <= budget`` on both solve paths, checked
against cvxpy's own solve of the same constrained problem."""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import RiskModel, ai_chain_model, compile
from indexlab.optimise.blocks import tracking_error

N, HELD = 30, 14
TIGHT = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}


def _setup(seed: int) -> tuple[RiskModel, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rm = RiskModel(rng.normal(0, 0.4, (N, 2)), np.diag([0.05, 0.02]), rng.uniform(0.02, 0.08, N))
    bench = rng.lognormal(0, 1, N)
    bench /= bench.sum()
    masks = np.zeros((5, N))
    for i in range(5):
        masks[i, rng.choice(N, HELD, replace=False)] = 1.0
    masks[:, np.argsort(bench)[-3:]] = 1.0
    return rm, bench, rng.random(N), masks


def _cvxpy(prob: cp.Problem, values: dict[str, np.ndarray]) -> cp.Problem:
    for p in prob.parameters():
        p.value = values[p.name()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver=cp.CLARABEL, **TIGHT)
    return prob


def _te(w: np.ndarray, bench: np.ndarray, rm: RiskModel) -> float:
    a = w - bench
    return float(np.sqrt(a @ rm.covariance() @ a))


@pytest.mark.parametrize("te_weight", [0.0, 4.0])
def test_te_budget_on_both_paths_matches_cvxpy(te_weight: float) -> None:
    rm, bench, scores, masks = _setup(1)
    model = ai_chain_model(range(N), bench, scores, rm, cap=0.2, te_weight=te_weight, te_budget=0.1)
    fast, conic = model.compile(), model.compile(fast_path=False)
    assert fast.path == "fast" and conic.path == "conic"
    budgets = np.array([0.02, 0.05, 0.08, 0.12, 0.5])
    params = {
        "mask": masks,
        "scores": np.tile(scores, (5, 1)),
        "bench": np.tile(bench, (5, 1)),
        "te_budget": budgets,
    }
    sf, sc = fast.solve_batch(params), conic.solve_batch(params)
    for i in range(5):
        ref = _cvxpy(model.problem, {k: v[i] for k, v in params.items()})
        assert sf.status[i] == sc.status[i] == ref.status
        if ref.status != "optimal":
            continue
        w = sf.values["w"][i]
        assert _te(w, bench, rm) <= budgets[i] * (1 + 1e-8)  # the certificate
        assert sf.objective[i] == pytest.approx(ref.value, abs=1e-6)
        assert sc.objective[i] == pytest.approx(ref.value, abs=1e-6)
        np.testing.assert_allclose(w, model.weights.value, atol=2e-5)


def test_infeasible_budget_states_the_smallest_feasible_budget() -> None:
    rm, bench, scores, masks = _setup(2)
    model = ai_chain_model(range(N), bench, scores, rm, cap=0.2, te_weight=0.0, te_budget=0.0)
    fast = model.compile()
    params = {"mask": masks[:2], "scores": np.tile(scores, (2, 1)), "bench": np.tile(bench, (2, 1))}
    sol = fast.solve_batch({**params, "te_budget": np.array([0.001, 1.0])})
    assert sol.status == ["infeasible", "optimal"]
    assert sol.smallest_te_budget is not None
    # Independent: minimise TE with cvxpy over the same constraints.
    w = cp.Variable(N)
    sigma_root = np.linalg.cholesky(rm.covariance())
    for i in range(2):
        hi = 0.2 * masks[i]
        lowest = cp.Problem(
            cp.Minimize(cp.norm(sigma_root.T @ (w - bench), 2)), [cp.sum(w) == 1, w >= 0, w <= hi]
        )
        lowest.solve(solver=cp.CLARABEL, **TIGHT)
        assert sol.smallest_te_budget[i] == pytest.approx(lowest.value, rel=1e-6)


def test_hand_written_budget_constraint_uses_the_block() -> None:
    rm, bench, scores, masks = _setup(3)
    w = cp.Variable(N, name="w")
    s = cp.Parameter(N, name="s")
    hi = cp.Parameter(N, nonneg=True, name="hi")
    cons = [cp.sum(w) == 1, w >= 0, w <= hi, *(tracking_error(w, bench, rm) <= 0.06)]
    prob = cp.Problem(cp.Maximize(s @ w), cons)
    compiled = compile(prob)
    assert compiled.path == "fast"
    params = {"s": np.tile(scores, (3, 1)), "hi": 0.25 * masks[:3]}
    sol = compiled.solve_batch(params)
    for i in range(3):
        ref = _cvxpy(prob, {k: v[i] for k, v in params.items()})
        assert sol.status[i] == ref.status
        if ref.status == "optimal":
            assert sol.objective[i] == pytest.approx(ref.value, abs=1e-6)
            assert _te(sol.values["w"][i], bench, rm) <= 0.06 * (1 + 1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("te_weight", [0.0, 3.0])
def test_random_budgets_with_turnover_and_layers_match_cvxpy(te_weight: float) -> None:
    # The budget's search on many instances at once: binding, slack and infeasible budgets,
    # turnover kinks, layer rows. Each instance's optimum must be cvxpy's and meet the budget.
    rng = np.random.default_rng(11)
    rm, bench, scores, _ = _setup(4)
    layers = rng.integers(0, 3, N).tolist()
    model = ai_chain_model(
        range(N),
        bench,
        scores,
        rm,
        cap=0.15,
        te_weight=te_weight,
        turnover_weight=0.01,
        layers=layers,
        layer_hi=0.6,
        te_budget=0.1,
    )
    fast = model.compile()
    assert fast.path == "fast"
    b = 24
    masks = (rng.random((b, N)) < 0.5).astype(float)
    masks[:, np.argsort(bench)[-4:]] = 1.0
    prev = rng.dirichlet(np.ones(N), b)
    params = {
        "mask": masks,
        "scores": np.clip(scores + rng.normal(0, 0.2, (b, N)), 0, None),
        "bench": np.tile(bench, (b, 1)),
        "prev": prev,
        "te_budget": rng.uniform(0.0, 0.15, b),
    }
    sol = fast.solve_batch(params)
    seen = set()
    for i in range(b):
        ref = _cvxpy(model.problem, {k: v[i] for k, v in params.items()})
        assert sol.status[i] == ref.status, i
        seen.add(ref.status)
        if ref.status != "optimal":
            continue
        w = sol.values["w"][i]
        assert _te(w, bench, rm) <= params["te_budget"][i] * (1 + 1e-8)
        assert sol.objective[i] == pytest.approx(ref.value, abs=1e-6), i
    assert seen == {"optimal", "infeasible"}
