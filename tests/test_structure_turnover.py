"""L1 turnover on the fast path: ``norm1(w - prev)`` and ``cost @ abs(w - prev)`` are found in
the compiled data whoever wrote them, and every number is checked against cvxpy's own solve."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import RiskModel, ai_chain_model, compile
from indexlab.optimise.blocks import group_bounds
from structure_reference import cvxpy_instance, factor_risk

N, K, HELD = 30, 3, 12


def _risk(rng: np.random.Generator) -> RiskModel:
    return factor_risk(rng, N)


_cvxpy = cvxpy_instance


def _params(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    masks = np.zeros((batch, N))
    prev = np.zeros((batch, N))
    for i in range(batch):
        masks[i, rng.choice(N, HELD, replace=False)] = 1.0
        held = rng.choice(N, 15, replace=False)  # last review: some names in, some out
        prev[i, held] = rng.dirichlet(np.ones(15))
    return {"mask": masks, "scores": rng.random((batch, N)), "prev": prev}


def _problem(
    rm: RiskModel, bench: np.ndarray, sectors: list[int], cost: float | np.ndarray, kind: str
) -> cp.Problem:
    """Tracking error against a dense benchmark, an 10% cap, sector bounds and turnover,
    written by hand."""
    w = cp.Variable(N, name="w")
    mask = cp.Parameter(N, nonneg=True, name="mask")
    scores = cp.Parameter(N, name="scores")
    prev = cp.Parameter(N, name="prev")
    f = cp.Variable(K, name="f")
    active = w - bench
    risk = cp.sum_squares(f) + cp.sum_squares(cp.multiply(np.sqrt(rm.specific_var), active))
    if kind == "norm1":
        trade = cost * cp.norm1(w - prev)
    else:
        trade = cp.sum(cp.multiply(cost, cp.abs(w - prev)))
    cons = [
        cp.sum(w) == 1,
        w >= 0,
        w <= 0.1 * mask,
        f == rm.factor_root() @ active,
        *group_bounds(w, sectors, hi=0.5),
    ]
    return cp.Problem(cp.Maximize(0.05 * scores @ w - 4.0 * risk - trade), cons)


def _setup(seed: int) -> tuple[RiskModel, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    bench = rng.lognormal(0, 1, N)
    return _risk(rng), bench / bench.sum(), rng.integers(0, 4, N).tolist()


@pytest.mark.parametrize(
    ("kind", "cost"),
    [("norm1", 0.004), ("norm1", 0.05), ("abs", np.linspace(0.0, 0.02, N))],
)
def test_turnover_takes_the_fast_path_and_matches_cvxpy(kind: str, cost: object) -> None:
    rm, bench, sectors = _setup(1)
    prob = _problem(rm, bench, sectors, cost, kind)  # type: ignore[arg-type]
    compiled = compile(prob)
    assert compiled.path == "fast"
    params = _params(np.random.default_rng(2), 8)
    sol = compiled.solve_batch(params)
    at_prev = 0
    for i in range(8):
        status, value, values = _cvxpy(prob, params, i)
        assert sol.status[i] == status == "optimal"
        assert sol.objective[i] == pytest.approx(value, rel=1e-7, abs=1e-9)
        np.testing.assert_allclose(sol.values["w"][i], values["w"], atol=2e-6)
        w = sol.values["w"][i]
        at_prev += int(np.sum((np.abs(w - params["prev"][i]) < 1e-12) & (w > 0)))
    assert at_prev > 0  # some weights stay exactly at their previous value: the kink binds


def test_turnover_and_a_tracking_error_budget_together() -> None:
    rm, bench, _sectors = _setup(3)
    w = cp.Variable(N, name="w")
    mask = cp.Parameter(N, nonneg=True, name="mask")
    scores = cp.Parameter(N, name="scores")
    prev = cp.Parameter(N, name="prev")
    f = cp.Variable(K, name="f")
    active = w - bench
    specific = cp.multiply(np.sqrt(rm.specific_var), active)
    cons = [
        cp.sum(w) == 1,
        w >= 0,
        w <= 0.1 * mask,
        f == rm.factor_root() @ active,
        cp.norm(cp.hstack([f, specific]), 2) <= 0.09,
    ]
    prob = cp.Problem(cp.Maximize(0.05 * scores @ w - 0.003 * cp.norm1(w - prev)), cons)
    compiled = compile(prob)
    assert compiled.path == "fast"
    params = _params(np.random.default_rng(4), 6)
    sol = compiled.solve_batch(params)
    for i in range(6):
        status, value, values = _cvxpy(prob, params, i)
        assert sol.status[i] == status
        if status == "optimal":
            assert sol.objective[i] == pytest.approx(value, rel=1e-6, abs=1e-8)
            np.testing.assert_allclose(sol.values["w"][i], values["w"], atol=1e-5)


def test_ai_chain_model_with_turnover_is_on_the_fast_path() -> None:
    rm, bench, _ = _setup(5)
    rng = np.random.default_rng(6)
    model = ai_chain_model(range(N), bench, rng.random(N), rm, cap=0.1, turnover_weight=0.01)
    compiled = model.compile()
    assert compiled.path == "fast"
    params = _params(rng, 4)
    params["bench"] = np.tile(bench, (4, 1))
    sol = compiled.solve_batch(params)
    ref = model.compile(fast_path=False).solve_batch(params)
    np.testing.assert_allclose(sol.objective, ref.objective, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sol.values["w"], ref.values["w"], atol=2e-6)
    # The model's own fast-path form gives the same weights.
    assert model.fast is not None
    direct = model.fast.solve_batch(
        params["mask"], params["scores"], params["bench"], prev=params["prev"]
    )
    np.testing.assert_allclose(direct.weights, sol.values["w"], atol=1e-9)


def test_two_turnover_terms_on_one_weight_stay_on_the_conic_path() -> None:
    w = cp.Variable(N, name="w")
    prev = cp.Parameter(N, name="prev")
    other = cp.Parameter(N, name="other")
    prob = cp.Problem(
        cp.Maximize(-cp.sum_squares(w) - 0.01 * cp.norm1(w - prev) - 0.01 * cp.norm1(w - other)),
        [cp.sum(w) == 1, w >= 0],
    )
    compiled = compile(prob)
    assert compiled.path == "conic"
    rng = np.random.default_rng(8)
    params = {"prev": rng.dirichlet(np.ones(N), 2), "other": rng.dirichlet(np.ones(N), 2)}
    sol = compiled.solve_batch(params)
    _status, value, _ = _cvxpy(prob, params, 1)
    assert sol.objective[1] == pytest.approx(value, rel=1e-6)
