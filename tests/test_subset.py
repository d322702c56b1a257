"""best_subset against an exact mixed-integer solve (SCIP via cvxpy, HiGHS for the linear case).

The reference writes the same problem with boolean membership ``z``: ``w <= cap * z``,
``sum z <= k``, solved to proven optimality; best_subset must come within 0.5% of it.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from indexlab.errors import DataError, InfeasibleError
from indexlab.optimise import RiskModel, ai_chain_model, compile
from indexlab.search import SubsetResult, best_subset

N, K, FACTORS, CAP = 40, 8, 3, 0.2


def market(seed: int, n: int = N, factors: int = FACTORS):
    rng = np.random.default_rng(seed)
    f = rng.normal(0.0, 1.0, (n, factors))
    a = rng.normal(0.0, 0.1, (factors, factors))
    omega = a @ a.T + np.diag(np.full(factors, 0.01))
    d = rng.uniform(0.01, 0.05, n)
    scores = rng.uniform(0.0, 1.0, n)
    mcap = rng.lognormal(0.0, 1.0, n)
    return RiskModel(f, omega, d), scores, mcap / mcap.sum()


def exact(rm, scores, bench, te, cap, k, sense=cp.Maximize, solver=cp.SCIP):
    """The mixed-integer reference: ``scores @ w - te * TE^2`` with boolean membership."""
    n = scores.size
    w, z = cp.Variable(n), cp.Variable(n, boolean=True)
    a = w - bench
    risk = cp.sum_squares(rm.factor_root() @ a) + cp.sum_squares(
        cp.multiply(np.sqrt(rm.specific_var), a)
    )
    penalty = te * risk if te > 0 else 0.0  # te = 0: a MILP (HiGHS takes no quadratic term)
    obj = scores @ w - penalty if sense is cp.Maximize else penalty - scores @ w
    prob = cp.Problem(sense(obj), [cp.sum(w) == 1, w >= 0, w <= cap * z, cp.sum(z) <= k])
    prob.solve(solver=solver)
    assert prob.status == "optimal"
    return float(prob.value), z.value > 0.5


def gap(found: float, best: float, maximize: bool = True) -> float:
    return ((best - found) if maximize else (found - best)) / abs(best)


def plain_objective(rm, scores, bench, te, w):
    a = w - bench
    return float(scores @ w - te * a @ rm.covariance() @ a)


@pytest.mark.parametrize(("te", "seed"), [(1.0, 0), (10.0, 1), (10.0, 2), (100.0, 3), (1000.0, 4)])
def test_within_half_percent_of_scip(te: float, seed: int) -> None:
    rm, scores, bench = market(seed)
    best, _ = exact(rm, scores, bench, te, CAP, K)
    prob, w = ai_chain_model(range(N), bench, scores, rm, cap=CAP, te_weight=te)
    res = best_subset(compile(prob), k=K, seed=seed, progress=False)
    assert isinstance(res, SubsetResult)
    assert res.mask.dtype == bool and res.mask.shape == (N,) and res.mask.sum() <= K
    assert gap(res.objective, best) <= 0.005, (res.objective, best)
    # The reported weights are feasible for that mask and give the reported objective.
    wv = res.values[w.name()]
    assert abs(wv.sum() - 1) < 1e-7 and wv.min() > -1e-9 and wv.max() <= CAP + 1e-9
    assert np.all(wv[~res.mask] <= 1e-9)
    assert plain_objective(rm, scores, bench, te, wv) == pytest.approx(res.objective, abs=1e-8)
    # The relaxation bounds every subset.
    assert res.bound >= best - 1e-7
    h = res.history
    assert list(h.columns) == ["step", "method", "best_objective", "evaluations", "elapsed"]
    assert h["best_objective"].is_monotonic_increasing
    assert h["evaluations"].iloc[-1] == res.evaluations


def test_linear_case_against_highs() -> None:
    rm, scores, bench = market(7)
    best, _ = exact(rm, scores, bench, 0.0, 0.15, K, solver=cp.HIGHS)
    prob, _w = ai_chain_model(range(N), bench, scores, rm, cap=0.15, te_weight=0.0)
    res = best_subset(compile(prob), k=K, progress=False)
    assert gap(res.objective, best) <= 1e-9
    # The relaxation fills 7 names (6 x 15% + 10%) <= k: the rounded mask reaches the bound.
    assert res.stop_reason == "optimal" and len(res.history) == 1


def generic_model(rm, cap: float, te: float, n: int = N):
    """A Minimize problem written by hand (solved by the generic Clarabel batch path)."""
    w = cp.Variable(n, name="w")
    mask = cp.Parameter(n, nonneg=True, name="mask", value=np.ones(n))
    scores = cp.Parameter(n, name="scores")
    bench = cp.Parameter(n, name="bench")
    g = rm.factor_root()
    f = cp.Variable(g.shape[0], name="f")
    a = w - bench
    risk = cp.sum_squares(f) + cp.sum_squares(cp.multiply(np.sqrt(rm.specific_var), a))
    prob = cp.Problem(
        cp.Minimize(te * risk - scores @ w),
        [cp.sum(w) == 1, w >= 0, w <= cap * mask, f == g @ a],
    )
    return prob


@pytest.mark.parametrize("seed", [5, 6])
def test_minimize_sense(seed: int) -> None:
    rm, scores, bench = market(seed)
    te = 20.0
    best, _ = exact(rm, scores, bench, te, CAP, K, sense=cp.Minimize)
    # The index shape is recognised whoever wrote it: ask for the generic path explicitly.
    compiled = compile(generic_model(rm, CAP, te), fast_path=False)
    assert not compiled.uses_fast_path
    res = best_subset(compiled, k=K, params={"scores": scores, "bench": bench}, progress=False)
    assert gap(res.objective, best, maximize=False) <= 0.005, (res.objective, best)
    assert res.history["best_objective"].is_monotonic_decreasing
    # Maximising the negated objective would pick the worst masks: check we did not.
    assert res.objective <= res.history["best_objective"].iloc[0] + 1e-12


def small_problem(te: float = 10.0, cap: float = CAP, seed: int = 0):
    rm, scores, bench = market(seed)
    prob, w = ai_chain_model(range(N), bench, scores, rm, cap=cap, te_weight=te)
    return compile(prob), w


def test_deterministic_whatever_threads() -> None:
    compiled, _ = small_problem()
    runs = [
        best_subset(compiled, k=K, seed=3, threads=t, max_evaluations=1500, progress=False)
        for t in (1, 2, None)
    ]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.mask, runs[0].mask)
        assert r.objective == runs[0].objective
        assert r.history["evaluations"].tolist() == runs[0].history["evaluations"].tolist()
        assert r.history["method"].tolist() == runs[0].history["method"].tolist()


def test_max_evaluations_and_methods() -> None:
    compiled, _ = small_problem()
    res = best_subset(compiled, k=K, max_evaluations=200, progress=False)
    assert res.stop_reason == "max_evaluations"
    assert res.evaluations <= 200
    rounded = best_subset(compiled, k=K, method="round", progress=False)
    swapped = best_subset(compiled, k=K, method="swap", progress=False)
    full = best_subset(compiled, k=K, method="auto", progress=False)
    assert rounded.objective <= swapped.objective + 1e-12 <= full.objective + 2e-12
    assert set(rounded.history["method"]) == {"round"}


def test_callback_interrupt_returns_best_so_far() -> None:
    compiled, _ = small_problem(te=100.0)
    seen: list[dict] = []

    def stop_at_third(row: dict) -> None:
        seen.append(row)
        if row["step"] == 2:
            raise KeyboardInterrupt

    res = best_subset(compiled, k=K, callback=stop_at_third, progress=False)
    assert res.interrupted and res.stop_reason == "interrupted"
    assert len(seen) == 3
    assert res.objective == seen[-1]["best_objective"]
    assert res.mask.sum() <= K
    # A callback that returns True stops without "interrupted".
    res2 = best_subset(compiled, k=K, callback=lambda row: True, progress=False)
    assert res2.stop_reason == "callback" and not res2.interrupted


def test_progress_bar_goes_to_stderr(capsys) -> None:
    compiled, _ = small_problem()
    best_subset(compiled, k=K, method="swap", progress=True, time_limit=30)
    err = capsys.readouterr().err
    assert "best_subset" in err and "solves" in err and err.endswith("\n")


def test_errors() -> None:
    compiled, _ = small_problem()
    with pytest.raises(DataError, match="mask parameter 'membership' not found"):
        best_subset(compiled, mask="membership", k=K)
    with pytest.raises(DataError, match="k: expected an integer between 1 and 40"):
        best_subset(compiled, k=0)
    with pytest.raises(DataError, match="k: expected an integer between 1 and 40"):
        best_subset(compiled, k=N + 1)
    with pytest.raises(DataError, match="unknown parameters"):
        best_subset(compiled, k=K, params={"nope": 1.0})
    with pytest.raises(DataError, match="'scores': expected shape"):
        best_subset(compiled, k=K, params={"scores": np.ones(3)})
    with pytest.raises(DataError, match="method"):
        best_subset(compiled, k=K, method="exhaustive")
    # A matrix-shaped mask parameter.
    x = cp.Variable((2, 3), name="x")
    m = cp.Parameter((2, 3), nonneg=True, name="mask", value=np.ones((2, 3)))
    bad = compile(cp.Problem(cp.Minimize(cp.sum_squares(x)), [x <= m, cp.sum(x) == 1]))
    with pytest.raises(DataError, match=r"expected a vector \(N,\).*\(2, 3\)"):
        best_subset(bad, k=2)


def test_k_times_cap_below_one_is_infeasible() -> None:
    compiled, _ = small_problem(cap=0.1)
    with pytest.raises(InfeasibleError, match=r"k x cap = 8 x 0.1 = 0.8 < 1") as info:
        best_subset(compiled, k=K)
    assert "infeasible" in str(info.value) and "at least 10" in str(info.value)
    # The generic path has no known cap: the message reports the solver statuses.
    rm, _, _ = market(0)
    generic = compile(generic_model(rm, cap=0.1, te=1.0))
    _, scores, bench = market(0)
    with pytest.raises(InfeasibleError, match=r"every 8-name mask tried is infeasible.*infeas"):
        best_subset(generic, k=K, params={"scores": scores, "bench": bench})


def test_k_equal_to_n_is_the_relaxation() -> None:
    rm, scores, bench = market(0)
    prob, _w = ai_chain_model(range(N), bench, scores, rm, cap=CAP, te_weight=10.0)
    res = best_subset(compile(prob), k=N, progress=False)
    assert res.mask.all()
    prob.solve(solver=cp.CLARABEL)  # cvxpy's own solve, mask parameter at its all-ones value
    assert res.objective == pytest.approx(prob.value, rel=1e-6)
    assert res.bound == pytest.approx(prob.value, rel=1e-6)


class _FlagFirst:
    """A fast-path compiled problem whose batches report their first instance as
    ``"solver_error"`` (NaN values), as the fast path does for an instance it cannot solve."""

    def __init__(self, compiled) -> None:
        self._compiled = compiled
        self.flagged = 0

    def __getattr__(self, name: str):
        return getattr(self._compiled, name)

    def solve_batch(self, params, threads=None):
        sol = self._compiled.solve_batch(params, threads=threads)
        for v in sol.values.values():
            v[0] = np.nan
        sol.status[0] = "solver_error"
        sol.objective[0] = np.nan
        self.flagged += 1
        return sol


def test_solver_error_instances_fall_back_to_clarabel() -> None:
    compiled, _ = small_problem()
    assert compiled.uses_fast_path
    ref = best_subset(compiled, k=K, seed=1, max_evaluations=300, progress=False)
    flagged = _FlagFirst(compiled)
    res = best_subset(flagged, k=K, seed=1, max_evaluations=300, progress=False)
    assert flagged.flagged > 0
    np.testing.assert_array_equal(res.mask, ref.mask)
    assert res.objective == pytest.approx(ref.objective, rel=1e-7, abs=1e-9)
