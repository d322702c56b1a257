"""indexlab.optimise: batch solves of compiled cvxpy problems against cvxpy's own Clarabel solve.

Every expected number comes from cvxpy (``problem.solve(solver=cp.CLARABEL)`` or
``get_problem_data``) or plain numpy, instance by instance.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any

import cvxpy as cp
import indexlab
import numpy as np
import pytest
import scipy.sparse as sp
from indexlab.errors import DataError
from indexlab.optimise import (
    RiskModel,
    ai_chain_model,
    compile,
    group_bounds,
    liquidity_cap,
    min_weight_if_held,
    tracking_error,
    turnover,
    weight_cap,
)

Case = tuple[cp.Problem, dict[str, np.ndarray], bool]  # problem, batch params, unique solution


def _cvxpy_solve(problem: cp.Problem, params: dict[str, np.ndarray], i: int) -> str:
    """Solve instance i with cvxpy + Clarabel; return cvxpy's status."""
    by_name = {p.name(): p for p in problem.parameters()}
    for name, values in params.items():
        by_name[name].value = values[i]
    # A fresh Clarabel solver per instance: with warm_start cvxpy updates the previous solver
    # in place and keeps its equilibration, so its answer depends on the instance before.
    with warnings.catch_warnings():  # "may be inaccurate": the status is what we compare
        warnings.simplefilter("ignore", UserWarning)
        try:
            problem.solve(solver=cp.CLARABEL, warm_start=False)
        except cp.error.SolverError:
            return "solver_error"  # cvxpy raises instead of setting the status
    return str(problem.status)


def _assert_matches_cvxpy(case: Case, presolve: bool = True) -> indexlab.optimise.BatchSolution:
    """Same status as cvxpy, objective within 1e-7 relative, variables within 1e-6 (unreduced:
    the same data as cvxpy hands Clarabel) or 5e-5 (presolved: a smaller but equivalent problem,
    so the interior point stops at a different point within Clarabel's 1e-8 gap tolerance;
    variables near a bound with a small multiplier move the most)."""
    problem, params, unique = case
    atol = 5e-5 if presolve else 1e-6
    sol = compile(problem).solve_batch(params, presolve=presolve)
    b = next(iter(params.values())).shape[0]
    assert len(sol) == b
    for i in range(b):
        status = _cvxpy_solve(problem, params, i)
        assert sol.status[i] == status, f"instance {i}"
        if status == "optimal":
            assert sol.objective[i] == pytest.approx(problem.value, rel=1e-7, abs=1e-9)
            if unique:
                for v in problem.variables():
                    np.testing.assert_allclose(
                        sol.values[v.name()][i], v.value, atol=atol, err_msg=f"instance {i}"
                    )
        elif status.startswith(("infeasible", "unbounded")):
            assert sol.objective[i] == problem.value  # +/- inf, as cvxpy reports it
            assert np.isnan(sol.values[problem.variables()[0].name()][i]).all()
    return sol


def qp_case(seed: int, n: int = 12, b: int = 8) -> Case:
    """Masked capped least squares; some masks too small for the cap (infeasible)."""
    rng = np.random.default_rng(seed)
    w = cp.Variable(n, name="w")
    target = cp.Parameter(n, name="target")
    mask = cp.Parameter(n, nonneg=True, name="mask")
    scale = cp.Parameter(nonneg=True, name="scale")
    prob = cp.Problem(
        cp.Minimize(cp.sum_squares(w - target) + scale * cp.sum(w)),
        [cp.sum(w) == 1, w >= 0, w <= 0.3 * mask],
    )
    masks = (rng.random((b, n)) < 0.6).astype(float)
    masks[0, :3] = 0.0
    masks[1] = 0.0
    masks[1, :2] = 1.0  # 2 names x 0.3 cap < 1: infeasible
    params = {
        "target": rng.normal(0.1, 0.2, (b, n)),
        "mask": masks,
        "scale": rng.random(b),
    }
    return prob, params, True


def socp_case(seed: int, n: int = 10, b: int = 6) -> Case:
    """Norm-constrained portfolio with a matrix parameter; a too-small radius is infeasible."""
    rng = np.random.default_rng(seed)
    w = cp.Variable(n, name="w")
    mu = cp.Parameter(n, name="mu")
    expo = cp.Parameter((3, n), name="expo")
    radius = cp.Parameter(nonneg=True, name="radius")
    prob = cp.Problem(
        cp.Maximize(mu @ w - 0.5 * cp.sum_squares(w)),
        [cp.sum(w) == 1, cp.norm(expo @ w, 2) <= 1.0, cp.norm(w, 2) <= radius, w >= -0.2],
    )
    radii = rng.uniform(0.5, 1.5, b)
    radii[2] = 0.1  # ||w|| >= 1/sqrt(n) > 0.1 when sum(w) = 1
    params = {
        "mu": rng.normal(0, 1, (b, n)),
        "expo": rng.normal(0, 0.3, (b, 3, n)),
        "radius": radii,
    }
    return prob, params, True


def turnover_case(seed: int, n: int = 15, b: int = 6) -> Case:
    """L1 turnover penalty vs previous weights (parameter), plus a quadratic term."""
    rng = np.random.default_rng(seed)
    w = cp.Variable(n, name="w")
    prev = cp.Parameter(n, nonneg=True, name="prev")
    alpha = cp.Parameter(n, name="alpha")
    prob = cp.Problem(
        cp.Maximize(alpha @ w - cp.sum_squares(w) - 0.05 * turnover(w, prev)),
        [cp.sum(w) == 1, w >= 0],
    )
    prevs = rng.dirichlet(np.ones(n), b)
    return prob, {"prev": prevs, "alpha": rng.normal(0, 0.1, (b, n))}, True


def groups_case(seed: int, n: int = 12, b: int = 6) -> Case:
    """Equality group totals from a parameter; inconsistent totals are infeasible."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    member = np.array([(labels == g).astype(float) for g in range(3)])
    w = cp.Variable(n, name="w")
    totals = cp.Parameter(3, nonneg=True, name="totals")
    center = cp.Parameter(n, name="center")
    prob = cp.Problem(
        cp.Minimize(cp.sum_squares(w - center)),
        [member @ w == totals, cp.sum(w) == 1, w >= 0],
    )
    tot = rng.dirichlet(np.ones(3), b)
    tot[3] = [0.5, 0.5, 0.5]  # sums to 1.5: infeasible
    return prob, {"totals": tot, "center": rng.normal(0, 0.1, (b, n))}, True


def lp_case(seed: int, n: int = 8, b: int = 6) -> Case:
    """An LP that is unbounded when some cost is negative."""
    rng = np.random.default_rng(seed)
    x = cp.Variable(n, name="x")
    c = cp.Parameter(n, name="c")
    prob = cp.Problem(cp.Minimize(c @ x), [x >= 0, cp.sum(x) >= 1])
    costs = rng.uniform(0.1, 1.0, (b, n))
    costs[1, 3] = -0.5
    costs[4, 0] = -0.1
    return prob, {"c": costs}, False


def exp_case(seed: int, n: int = 6, b: int = 5) -> Case:
    """Entropy-regularised allocation (exponential cones)."""
    rng = np.random.default_rng(seed)
    w = cp.Variable(n, name="w")
    mu = cp.Parameter(n, name="mu")
    prob = cp.Problem(cp.Maximize(mu @ w + 0.1 * cp.sum(cp.entr(w))), [cp.sum(w) == 1])
    return prob, {"mu": rng.normal(0, 0.2, (b, n))}, True


def masked_socp_case(seed: int, n: int = 14, b: int = 6) -> Case:
    """Masked long-only weights under a second-order risk budget (presolve + SOC rows)."""
    rng = np.random.default_rng(seed)
    w = cp.Variable(n, name="w")
    mask = cp.Parameter(n, nonneg=True, name="mask")
    alpha = cp.Parameter(n, name="alpha")
    expo = rng.normal(0, 0.5, (4, n))
    prob = cp.Problem(
        cp.Maximize(alpha @ w - cp.sum_squares(w)),
        [cp.sum(w) == 1, w >= 0, w <= 0.25 * mask, cp.norm(expo @ w, 2) <= 0.6],
    )
    masks = (rng.random((b, n)) < 0.7).astype(float)
    masks[0] = 1.0
    masks[3] = 0.0
    masks[3, :3] = 1.0  # 3 names x 0.25 < 1: infeasible
    return prob, {"mask": masks, "alpha": rng.normal(0, 0.2, (b, n))}, True


CASES: list[Callable[[int], Case]] = [
    qp_case,
    socp_case,
    masked_socp_case,
    turnover_case,
    groups_case,
    lp_case,
    exp_case,
]


@pytest.mark.parametrize("make", CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("presolve", [True, False])
def test_matches_cvxpy(make: Callable[[int], Case], seed: int, presolve: bool) -> None:
    _assert_matches_cvxpy(make(seed), presolve=presolve)


def test_statuses_cover_infeasible_and_unbounded() -> None:
    assert "infeasible" in _assert_matches_cvxpy(qp_case(0)).status
    assert "unbounded" in _assert_matches_cvxpy(lp_case(0)).status
    assert "infeasible_inaccurate" in _assert_matches_cvxpy(groups_case(0)).status


@pytest.mark.parametrize("make", CASES, ids=lambda f: f.__name__)
def test_golden_canonical_data(make: Callable[[int], Case]) -> None:
    """The Rust-built (P, q, A, b) equals cvxpy's get_problem_data for the same values."""
    problem, params, _ = make(3)
    compiled = compile(problem)
    for i in range(2):
        instance = {k: v[i] for k, v in params.items()}
        ours = compiled._canonical(instance)
        _cvxpy_solve(problem, params, i)  # sets the parameter values
        data, _, inverse = problem.get_problem_data(cp.CLARABEL)
        p_ref = sp.triu(data["P"]) if "P" in data else sp.csc_array(ours["P"].shape)
        np.testing.assert_allclose(ours["P"].toarray(), p_ref.toarray(), atol=1e-12)
        np.testing.assert_allclose(ours["q"], data["c"], atol=1e-12)
        np.testing.assert_allclose(ours["A"].toarray(), data["A"].toarray(), atol=1e-12)
        np.testing.assert_allclose(ours["b"], data["b"], atol=1e-12)
        assert ours["offset"] == pytest.approx(inverse[-1]["offset"], abs=1e-12)


def test_presolve_removes_masked_names_and_still_matches() -> None:
    problem, params, _ = qp_case(5, n=20, b=6)
    params["mask"][:] = 1.0
    params["mask"][2, 10:] = 0.0  # 10 names out
    params["mask"][3, 5:] = 0.0  # 15 names out
    sol = _assert_matches_cvxpy((problem, params, True), presolve=True)
    full = compile(problem).solve_batch(params, presolve=False)
    # cvxpy's canonical form: w (20) and the residual t = w - target of sum_squares (20).
    assert (full.n_variables == 40).all()
    # Presolve fixes masked w_j at 0 (pass 1) and their t_j at -target_j (pass 2), and
    # substitutes each remaining t_j = w_j - target_j into the objective (pass 3): only the
    # held names' w_j are left.
    np.testing.assert_array_equal(sol.n_variables[[0, 2, 3]], [20, 10, 5])
    np.testing.assert_allclose(sol.values["w"][3, 5:], 0.0)


def test_single_instance_solve() -> None:
    problem, params, _ = qp_case(2)
    one = compile(problem).solve(**{k: v[0] for k, v in params.items()})
    _cvxpy_solve(problem, params, 0)
    assert one.status == problem.status
    assert one.objective == pytest.approx(problem.value, rel=1e-7)
    assert one.values["w"].shape == (12,)


def test_variable_shapes_follow_fortran_order() -> None:
    rng = np.random.default_rng(0)
    x = cp.Variable((3, 2), name="X")
    t = cp.Parameter((3, 2), name="T")
    y = cp.Variable(nonneg=True, name="y")
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x - t) + cp.square(y - 1)), [cp.sum(x) <= y])
    params = {"T": rng.normal(size=(4, 3, 2))}
    sol = _assert_matches_cvxpy((prob, params, True))
    assert sol.values["X"].shape == (4, 3, 2)
    assert sol.values["y"].shape == (4,)


def test_threads_do_not_change_results() -> None:
    problem, params, _ = socp_case(7, b=24)
    compiled = compile(problem)
    ref = compiled.solve_batch(params, threads=1)
    for threads in (2, 3, None):
        other = compiled.solve_batch(params, threads=threads)
        np.testing.assert_array_equal(other.values["w"], ref.values["w"])
        np.testing.assert_array_equal(other.objective, ref.objective)
        assert other.status == ref.status


def test_four_python_threads_at_once() -> None:
    problem, params, _ = qp_case(8, n=30, b=40)
    compiled = compile(problem)
    ref = compiled.solve_batch(params, threads=1)
    out: list[Any] = [None] * 4

    def work(k: int) -> None:
        out[k] = compiled.solve_batch(params, threads=2)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in out:
        np.testing.assert_array_equal(got.values["w"], ref.values["w"])
        assert got.status == ref.status


def test_parameter_errors_name_parameter_and_instance() -> None:
    problem, params, _ = qp_case(0)
    compiled = compile(problem)
    with pytest.raises(DataError, match="missing.*scale"):
        compiled.solve_batch({k: v for k, v in params.items() if k != "scale"})
    with pytest.raises(DataError, match="unknown parameters.*'bogus'"):
        compiled.solve_batch({**params, "bogus": params["scale"]})
    with pytest.raises(DataError, match=r"'target'.*expected shape \(B, 12\).*\(8, 11\)"):
        compiled.solve_batch({**params, "target": params["target"][:, :11]})
    bad = params["target"].copy()
    bad[5, 2] = np.nan
    with pytest.raises(DataError, match="'target' instance 5: expected finite"):
        compiled.solve_batch({**params, "target": bad})
    neg = params["mask"].copy()
    neg[6, 4] = -1.0
    with pytest.raises(DataError, match=r"'mask' instance 6: expected nonnegative.*-1\.0"):
        compiled.solve_batch({**params, "mask": neg})
    with pytest.raises(DataError, match="'scale'.*expected 8 instances"):
        compiled.solve_batch({**params, "scale": params["scale"][:5]})


@pytest.mark.parametrize(
    ("attr", "good", "bad", "word"),
    [
        ("nonneg", 0.0, -0.5, "nonnegative"),
        ("pos", 0.5, 0.0, "positive"),
        ("nonpos", 0.0, 0.5, "nonpositive"),
        ("neg", -0.5, 0.0, "negative"),
    ],
)
def test_parameter_sign_attributes_are_checked_on_every_instance(
    attr: str, good: float, bad: float, word: str
) -> None:
    x = cp.Variable(2)
    a = cp.Parameter(2, name="a", **{attr: True})
    compiled = compile(cp.Problem(cp.Minimize(cp.sum_squares(x - a))))
    values = np.full((4, 2), good)
    values[:, 1] = -0.25 if attr in ("nonpos", "neg") else 0.25
    np.testing.assert_allclose(compiled.solve_batch({"a": values}).values[x.name()], values)
    # A wrong value at either end of the range of values is named.
    for i, k in [(0, 0), (3, 1)]:
        wrong = values.copy()
        wrong[i, k] = bad
        with pytest.raises(DataError, match=rf"'a' instance {i}: expected {word}.*flat index {k}"):
            compiled.solve_batch({"a": wrong})


def test_non_dpp_problem_names_the_expression() -> None:
    w = cp.Variable(3)
    a = cp.Parameter(name="a")
    s = cp.Parameter(3, name="s")
    prob = cp.Problem(cp.Maximize(a * (s @ w)), [cp.sum(w) == 1, w >= 0])
    with pytest.raises(DataError, match=r"not DPP.*in the objective, a \* s @ var"):
        compile(prob)
    loadings = cp.Parameter((2, 3), name="L")
    bench = cp.Parameter(3, name="bench")
    prob = cp.Problem(cp.Minimize(cp.sum_squares(loadings @ (w - bench))), [cp.sum(w) == 1])
    with pytest.raises(DataError, match=r"not DPP.*L @ \(var\d+ \+ -bench\)"):
        compile(prob)
    with pytest.raises(DataError, match="not DCP"):
        compile(cp.Problem(cp.Maximize(cp.sum_squares(w - s))))


def test_psd_constraint_on_a_plain_variable_matches_cvxpy() -> None:
    # More PSD problems in tests/test_psd.py.
    x = cp.Variable((2, 2), name="X")
    t = cp.Parameter((2, 2), name="T")
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x - t)), [x >> 0])
    t.value = np.array([[1.0, 2.0], [2.0, -3.0]])
    sol = compile(prob).solve(T=t.value)
    prob.solve(solver=cp.CLARABEL)
    assert sol.status == prob.status == "optimal"
    assert sol.objective == pytest.approx(prob.value, rel=1e-6)
    np.testing.assert_allclose(sol.values["X"], x.value, atol=2e-5)
    np.testing.assert_allclose(
        sol.duals[prob.constraints[0]], prob.constraints[0].dual_value, atol=2e-5
    )


# Building blocks and the AI-chain model -----------------------------------------------------


def _risk_model(n: int, k: int, seed: int) -> RiskModel:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.01, (300, k)) @ rng.normal(0, 1, (k, n)) + rng.normal(
        0, 0.01, (300, n)
    )
    return RiskModel.from_returns(returns, n_factors=k, halflife=60)


def test_tracking_error_equals_quadratic_form() -> None:
    n = 15
    rm = _risk_model(n, 3, 0)
    rng = np.random.default_rng(1)
    w0, b0 = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
    w, bench = cp.Variable(n), cp.Parameter(n, value=b0)
    te, cons = tracking_error(w, bench, rm)
    prob = cp.Problem(cp.Minimize(te), [*cons, w == w0])
    prob.solve(solver=cp.CLARABEL)
    a = w0 - b0
    assert prob.value == pytest.approx(a @ rm.covariance() @ a, rel=1e-6)


def test_risk_model_from_returns_against_numpy() -> None:
    rng = np.random.default_rng(2)
    r = rng.normal(0, 0.02, (120, 6))
    rm = RiskModel.from_returns(r, n_factors=6, halflife=30, shrinkage=0.0)
    wt = 0.5 ** (np.arange(119, -1, -1) / 30)
    wt /= wt.sum()
    x = r - wt @ r
    cov = (x.T * wt) @ x
    np.testing.assert_allclose(rm.covariance(), cov, atol=1e-10)
    shrunk = RiskModel.from_returns(r, n_factors=2, shrinkage=1.0)
    assert np.ptp(shrunk.specific_var) < 1e-15
    with pytest.raises(DataError, match="n_factors"):
        RiskModel.from_returns(r, n_factors=7)


def test_blocks_hold_at_cvxpy_optimum() -> None:
    n = 8
    rng = np.random.default_rng(3)
    w = cp.Variable(n)
    adv = rng.uniform(1e6, 1e8, n)
    held = np.zeros(n)
    held[:2] = 1.0
    layers = ["up", "mid", "down", "up", "mid", "down", "up", "mid"]
    cons = [
        cp.sum(w) == 1,
        w >= 0,
        *weight_cap(w, 0.3),
        *liquidity_cap(w, aum=2e8, adv=adv, participation=0.5, days=3.0),
        *group_bounds(w, layers, lo={"down": 0.2}, hi=0.5),
        *min_weight_if_held(w, held, 0.05),
    ]
    prob = cp.Problem(cp.Maximize(rng.normal(size=n) @ w - cp.sum_squares(w)), cons)
    prob.solve(solver=cp.CLARABEL)
    v = w.value
    tol = 1e-7
    assert (v <= 0.3 + tol).all()
    assert (v * 2e8 <= 0.5 * adv * 3.0 * (1 + 1e-6) + tol).all()
    for g in ("up", "mid"):
        assert v[[i for i, x in enumerate(layers) if x == g]].sum() <= 0.5 + tol
    assert v[[2, 5]].sum() >= 0.2 - tol
    assert (v[:2] >= 0.05 - tol).all()


def test_ai_chain_model_batch_matches_cvxpy() -> None:
    n, b = 40, 6
    rng = np.random.default_rng(4)
    rm = _risk_model(n, 4, 5)
    parent = rng.dirichlet(np.ones(n))
    scores = rng.random(n)
    prob, _w = ai_chain_model(
        [f"id{i}" for i in range(n)],
        parent,
        scores,
        rm,
        te_weight=5.0,
        turnover_weight=0.01,
        adv=rng.uniform(5e6, 5e7, n),
        aum=1e8,
        layers=np.arange(n) % 3,
        layer_lo=0.1,
        layer_hi=0.6,
    )
    assert {p.name() for p in prob.parameters()} == {"mask", "scores", "bench", "prev"}
    masks = np.zeros((b, n))
    for i in range(b):
        masks[i, rng.choice(n, 20, replace=False)] = 1.0
    params = {
        "mask": masks,
        "scores": rng.random((b, n)),
        "bench": np.tile(parent, (b, 1)),
        "prev": rng.dirichlet(np.ones(n), b),
    }
    assert compile(prob).path == "fast"  # turnover, liquidity and layer bounds included
    sol = _assert_matches_cvxpy((prob, params, True))
    ok = np.array([s == "optimal" for s in sol.status])
    assert ok.sum() >= 3
    np.testing.assert_allclose(sol.values["w"][ok].sum(axis=1), 1.0, atol=1e-7)
    # The generic path: presolved where optimal; other outcomes are confirmed on the unreduced
    # problem.
    generic = compile(prob, fast_path=False)
    gsol = generic.solve_batch(params)
    assert gsol.status == sol.status
    np.testing.assert_allclose(gsol.objective[ok], sol.objective[ok], rtol=1e-7)
    assert (gsol.n_variables[ok] < generic.n_variables).all()
    assert (gsol.n_variables[~ok] == generic.n_variables).all()


# Fast-path hand-off ----------------------------------------------------------------------------


def _reference_fastpath() -> types.ModuleType:
    """A stand-in for indexlab.optimise.fastpath with its documented contract, solved with
    cvxpy: minimise gamma/2 (w-b)' Sigma (w-b) - s'w, sum w = 1, lo <= w <= hi, groups."""

    def capped_qp_batch(scores: Any, bench: Any = None, **kw: Any) -> Any:
        sigma = kw["loadings"] @ kw["factor_cov"] @ kw["loadings"].T + np.diag(kw["specific_var"])
        weights, objective, status = [], [], []
        for i, s in enumerate(scores):
            w = cp.Variable(len(s))
            hi = np.broadcast_to(kw["hi"], scores.shape)[i]
            lo = np.broadcast_to(kw["lo"], scores.shape)[i]
            cons = [cp.sum(w) == 1, w >= lo, w <= hi]
            if kw["groups"] is not None:
                cons += [kw["groups"] @ w >= kw["group_lo"], kw["groups"] @ w <= kw["group_hi"]]
            a = w if bench is None else w - bench[i]
            obj = kw["gamma"] / 2 * cp.quad_form(a, cp.psd_wrap(sigma)) - s @ w
            prob = cp.Problem(cp.Minimize(obj), cons)
            with warnings.catch_warnings():  # psd_wrap: cvxpy's SCIPY-backend notice
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=cp.CLARABEL)
            ok = prob.status == "optimal"
            status.append("optimal" if ok else "infeasible")
            weights.append(w.value if ok else np.full(len(s), np.nan))
            objective.append(prob.value if ok else np.nan)
        return types.SimpleNamespace(
            weights=np.array(weights),
            objective=np.array(objective),
            status=status,
            iterations=np.zeros(len(status), dtype=np.uint32),
        )

    module = types.ModuleType("indexlab.optimise.fastpath")
    module.capped_qp_batch = capped_qp_batch  # type: ignore[attr-defined]
    return module


def _flagship_like(seed: int, b: int = 5) -> tuple[cp.Problem, dict[str, np.ndarray]]:
    n = 30
    rng = np.random.default_rng(seed)
    parent = rng.dirichlet(np.ones(n))
    prob, _w = ai_chain_model(
        range(n),
        parent,
        rng.random(n),
        _risk_model(n, 3, seed),
        cap=0.1,
        te_weight=3.0,
        adv=rng.uniform(1e7, 5e7, n),
        aum=1e8,
        layers=np.arange(n) % 3,
        layer_lo=0.1,
        layer_hi=0.6,
    )
    masks = np.zeros((b, n))
    for i in range(b):
        masks[i, rng.choice(n, 15, replace=False)] = 1.0
    masks[2] = 0.0
    masks[2, :5] = 1.0  # 5 names x 10% cap < 100%: infeasible
    params = {"mask": masks, "scores": rng.random((b, n)), "bench": np.tile(parent, (b, 1))}
    return prob, params


def test_fast_path_hand_off_matches_generic_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "indexlab.optimise.fastpath", _reference_fastpath())
    prob, params = _flagship_like(0)
    fast = compile(prob, fast_path=True)
    generic = compile(prob, fast_path=False)
    assert fast.uses_fast_path and not generic.uses_fast_path
    got, ref = fast.solve_batch(params), generic.solve_batch(params)
    assert got.status == ref.status
    assert "infeasible" in got.status
    np.testing.assert_allclose(got.objective, ref.objective, rtol=1e-6)
    for name, values in ref.values.items():
        np.testing.assert_allclose(got.values[name], values, atol=2e-5, err_msg=name)


def test_fast_path_needs_structure_and_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "indexlab.optimise.fastpath", None)  # import fails
    prob, _ = _flagship_like(1)
    assert not compile(prob).uses_fast_path
    with pytest.raises(DataError, match="no fastpath module"):
        compile(prob, fast_path=True)
    monkeypatch.setitem(sys.modules, "indexlab.optimise.fastpath", _reference_fastpath())
    with pytest.raises(DataError, match="no fast-path structure"):
        compile(socp_case(0)[0], fast_path=True)  # a cone and a matrix parameter


def test_real_fast_path_agrees_with_generic_path() -> None:
    """Runs where the fast path is built (indexlab.optimise.fastpath)."""
    pytest.importorskip("indexlab.optimise.fastpath")
    prob, params = _flagship_like(2, b=8)
    got = compile(prob, fast_path=True).solve_batch(params)
    ref = compile(prob, fast_path=False).solve_batch(params)
    assert got.status == ref.status
    np.testing.assert_allclose(got.objective, ref.objective, rtol=1e-6)
