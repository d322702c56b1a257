"""L1 turnover on the generic path: presolve fixes the auxiliary ``t >= |w - prev|`` of every
name the mask removes at ``|prev|`` (``rust/indexlab-core/src/solve/presolve.rs``, pass 3).

Weights, objectives and the duals that are unique are compared with cvxpy's own Clarabel solve
and with the unreduced program (``presolve=False``).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from indexlab.optimise import RiskModel, compile, tracking_error

N, K, B = 40, 3, 6


@pytest.fixture(scope="module")
def case() -> tuple[cp.Problem, dict[str, np.ndarray], list[cp.Constraint]]:
    rng = np.random.default_rng(11)
    rm = RiskModel(rng.normal(0, 0.3, (N, K)), np.diag([0.04, 0.02, 0.01]), np.full(N, 0.02))
    w = cp.Variable(N, name="w")
    trade = cp.Variable(N, name="trade")  # written out, so that its rows have duals to compare
    mask = cp.Parameter(N, nonneg=True, name="mask")
    scores = cp.Parameter(N, name="scores")
    prev = cp.Parameter(N, name="prev")
    bench = np.full(N, 1.0 / N)
    te, te_cons = tracking_error(w, bench, rm)
    turnover = [trade >= w - prev, trade >= prev - w]
    problem = cp.Problem(
        cp.Maximize(scores @ w - 2.0 * te - 0.01 * cp.sum(trade)),
        [cp.sum(w) == 1, w >= 0, w <= 0.1 * mask, *te_cons, *turnover],
    )
    masks = np.zeros((B, N))
    prevs = np.zeros((B, N))
    for i in range(B):
        masks[i, rng.choice(N, 15, replace=False)] = 1.0
        prevs[i, rng.choice(N, 12, replace=False)] = 1.0 / 12
    params = {"mask": masks, "scores": rng.random((B, N)), "prev": prevs}
    return problem, params, turnover


def test_turnover_matches_cvxpy_and_the_unreduced_program(
    case: tuple[cp.Problem, dict[str, np.ndarray], list[cp.Constraint]],
) -> None:
    problem, params, turnover = case
    assert compile(problem).path == "fast"  # the turnover shape; here the generic path's presolve
    compiled = compile(problem, fast_path=False)
    sol = compiled.solve_batch(params)
    full = compiled.solve_batch(params, presolve=False)
    # Removed names and their trade variables leave the reduced program.
    assert (sol.n_variables < full.n_variables - 2 * 20).all()
    by_name = {p.name(): p for p in problem.parameters()}
    for i in range(B):
        for name, values in params.items():
            by_name[name].value = values[i]
        problem.solve(solver=cp.CLARABEL)
        assert sol.status[i] == full.status[i] == problem.status == "optimal"
        assert sol.objective[i] == pytest.approx(problem.value, abs=1e-7)
        assert full.objective[i] == pytest.approx(problem.value, abs=1e-7)
        w = problem.var_dict["w"].value
        np.testing.assert_allclose(sol.values["w"][i], w, atol=1e-6)
        held = params["mask"][i] > 0
        prev = params["prev"][i]
        out = ~held & (prev > 0)
        # A removed name's trade is exactly |prev|; the active row's dual is the cost 0.01.
        np.testing.assert_array_equal(sol.values["trade"][i][~held], prev[~held])
        np.testing.assert_allclose(sol.duals[turnover[1]][i][out], 0.01, rtol=1e-12)
        np.testing.assert_array_equal(sol.duals[turnover[0]][i][out], 0.0)
        want = turnover[1].dual_value
        assert want is not None
        np.testing.assert_allclose(sol.duals[turnover[1]][i][out], want[out], atol=1e-7)
