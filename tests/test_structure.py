"""The fast path is chosen from the compiled data (indexlab.optimise.structure), whoever wrote
the problem; every number is checked against cvxpy's own solve of the same problem."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import RiskModel, ai_chain_model, compile
from indexlab.optimise.blocks import group_bounds, liquidity_cap, tracking_error, weight_cap
from structure_reference import cvxpy_instance, factor_risk

N, K, HELD = 40, 3, 15


def _risk(rng: np.random.Generator) -> RiskModel:
    return factor_risk(rng, N)


_cvxpy = cvxpy_instance


def _instances(rng: np.random.Generator, batch: int, bench: np.ndarray, scores: np.ndarray):
    masks = np.zeros((batch, N))
    for i in range(batch):
        masks[i, rng.choice(N, HELD, replace=False)] = 1.0
    return {
        "mask": masks,
        "scores": np.clip(scores + rng.normal(0, 0.1, (batch, N)), 0, 1),
        "bench": np.tile(bench, (batch, 1)),
    }


def _hand_written(
    rm: RiskModel, adv: np.ndarray, sectors: list[int]
) -> tuple[cp.Problem, cp.Variable]:
    """The flagship shape written directly in cvxpy, no indexlab model."""
    w = cp.Variable(N, name="w")
    mask = cp.Parameter(N, nonneg=True, name="mask")
    scores = cp.Parameter(N, name="scores")
    bench = cp.Parameter(N, name="bench")
    chol = rm.factor_root()
    diff = cp.Variable(N, name="diff")
    risk = cp.sum_squares(chol @ diff) + cp.sum_squares(cp.multiply(np.sqrt(rm.specific_var), diff))
    cons = [
        diff == w - bench,
        cp.sum(w) == 1,
        w >= 0,
        w <= 0.12 * mask,
        w <= 0.2 * adv / 5e8,
        *group_bounds(w, sectors, hi=0.45),
    ]
    return cp.Problem(cp.Maximize(scores @ w - 8.0 * risk), cons), w


def test_hand_written_index_problem_takes_the_fast_path_and_matches_cvxpy() -> None:
    rng = np.random.default_rng(3)
    rm = _risk(rng)
    bench = rng.lognormal(0, 1, N)
    bench /= bench.sum()
    adv = rng.lognormal(19, 1, N)
    sectors = rng.integers(0, 4, N).tolist()
    prob, _w = _hand_written(rm, adv, sectors)
    compiled = compile(prob)
    assert compiled.path == "fast"
    assert compile(prob, fast_path=False).path == "conic"
    params = _instances(rng, 6, bench, rng.random(N))
    sol = compiled.solve_batch(params)
    for i in range(6):
        status, value, values = _cvxpy(prob, params, i)
        assert sol.status[i] == status
        if status == "optimal":
            assert sol.objective[i] == pytest.approx(value, abs=1e-6)
            np.testing.assert_allclose(sol.values["w"][i], values["w"], atol=1e-6)
            np.testing.assert_allclose(sol.values["diff"][i], values["diff"], atol=1e-6)


def test_a_shape_the_fast_path_cannot_solve_stays_on_the_conic_path() -> None:
    rng = np.random.default_rng(4)
    rm = _risk(rng)
    w = cp.Variable(N, name="w")
    s = cp.Parameter(N, name="s")
    sigma = rm.covariance()
    base = [cp.sum(w) == 1, w >= 0]
    # A dense quadratic (not diagonal plus low rank in the canonical data).
    dense = cp.Problem(cp.Maximize(s @ w - cp.quad_form(w, sigma)), base)
    # A weight without a lower bound.
    free = cp.Problem(cp.Maximize(s @ w - cp.sum_squares(w)), [cp.sum(w) == 1, w[1:] >= 0])
    # Turnover (L1) whose cost is a parameter: the cost is not known when compiling.
    rate = cp.Parameter(nonneg=True, name="rate")
    prev = np.full(N, 1.0 / N)
    l1 = cp.Problem(cp.Maximize(s @ w - cp.sum_squares(w) - rate * cp.norm1(w - prev)), base)
    # A budget other than 1.
    half = cp.Problem(cp.Maximize(s @ w - cp.sum_squares(w)), [cp.sum(w) == 0.5, w >= 0])
    for prob in (dense, free, l1, half):
        c = compile(prob)
        assert c.path == "conic"
        params = {p.name(): rng.random((1, *p.shape)) for p in prob.parameters()}
        _status, value, _ = _cvxpy(prob, params, 0)
        assert c.solve_batch(params).objective[0] == pytest.approx(value, rel=1e-6, abs=1e-7)
    with pytest.raises(Exception, match="fast_path=True"):
        compile(dense, fast_path=True)


def test_ai_chain_model_owns_both_forms_and_later_edits_cannot_split_them() -> None:
    rng = np.random.default_rng(5)
    rm = _risk(rng)
    bench = rng.lognormal(0, 1, N)
    bench /= bench.sum()
    adv = rng.lognormal(19, 1, N)
    model = ai_chain_model(
        range(N), bench, rng.random(N), rm, cap=0.12, te_weight=6.0, adv=adv, aum=5e8
    )
    assert not hasattr(model.problem, "_indexlab_structure")
    compiled = model.compile()
    assert compiled.path == "fast"
    params = _instances(rng, 5, bench, rng.random(N))
    before = compiled.solve_batch(params)
    # Editing the caller's arrays afterwards changes neither form.
    rm.loadings[:] *= 3.0
    rm.specific_var[:] = 0.5
    adv[:] = 1.0
    after = compiled.solve_batch(params)
    generic = model.compile(fast_path=False).solve_batch(params)
    direct = model.fast.solve_batch(params["mask"], params["scores"], params["bench"])
    assert after.status == generic.status == before.status == direct.status
    ok = [i for i, s in enumerate(after.status) if s == "optimal"]
    assert ok
    np.testing.assert_array_equal(before.values["w"][ok], after.values["w"][ok])
    # The generic path is an interior-point solve of the presolved program: its weights are
    # the exact optimum's to Clarabel's accuracy (objective gap 1e-8): about 1e-6 here.
    np.testing.assert_allclose(after.values["w"][ok], generic.values["w"][ok], atol=2e-6)
    np.testing.assert_allclose(direct.weights[ok], after.values["w"][ok], atol=1e-9)
    for i in ok[:2]:
        _status, value, values = _cvxpy(model.problem, params, i)
        assert after.objective[i] == pytest.approx(value, abs=1e-6)
        np.testing.assert_allclose(after.values["w"][i], values["w"], atol=1e-6)
    prob, w = model  # still unpacks as (problem, w)
    assert prob is model.problem and w is model.weights


def test_unused_blocks_stay_importable() -> None:
    w = cp.Variable(3)
    assert len(weight_cap(w, 0.5)) == 1 and len(liquidity_cap(w, 1.0, [1.0, 1.0, 1.0])) == 1
    rm = RiskModel(np.ones((3, 1)), np.eye(1), np.full(3, 0.01))
    assert len(tracking_error(w, np.full(3, 1 / 3), rm) <= 0.1) == 2


@pytest.mark.parametrize("te_budget", [None, 0.05])
def test_an_instance_gives_the_same_bits_alone_or_in_a_batch(te_budget: float | None) -> None:
    # A search may solve an instance alone or with others (chunks, shards): its objective and
    # weights must not move in the last bit with the batch size.
    rng = np.random.default_rng(8)
    rm = _risk(rng)
    bench = rng.lognormal(0, 1, N)
    bench /= bench.sum()
    model = ai_chain_model(
        range(N), bench, rng.random(N), rm, cap=0.12, te_weight=6.0, te_budget=te_budget
    )
    compiled = model.compile()
    assert compiled.path == "fast"
    params = _instances(rng, 7, bench, rng.random(N))
    if te_budget is not None:
        params["te_budget"] = np.linspace(0.02, 0.08, 7)  # some bind, some do not
    batch = compiled.solve_batch(params)
    assert "optimal" in batch.status
    for i in range(7):
        one = compiled.solve_batch({k: v[i : i + 1] for k, v in params.items()})
        assert one.objective[0] == batch.objective[i] or (
            np.isnan(one.objective[0]) and np.isnan(batch.objective[i])
        )
        np.testing.assert_array_equal(one.values["w"][0], batch.values["w"][i])


def test_a_solved_structure_pickles_and_solves_the_same() -> None:
    # Searches send compiled problems to Dask workers after solving with them locally.
    import pickle

    rng = np.random.default_rng(12)
    rm = _risk(rng)
    bench = rng.dirichlet(np.ones(N))
    compiled = ai_chain_model(range(N), bench, rng.random(N), rm, cap=0.15).compile()
    assert compiled.path == "fast"
    params = _instances(rng, 4, bench, rng.random(N))
    before = compiled.solve_batch(params)
    again = pickle.loads(pickle.dumps(compiled)).solve_batch(params)
    np.testing.assert_array_equal(again.values["w"], before.values["w"])
    np.testing.assert_array_equal(again.objective, before.objective)
