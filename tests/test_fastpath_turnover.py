"""The L1 turnover term of the capped-QP fast path (``prev``, ``turnover_cost``) against
cvxpy + Clarabel on the same instances, and its input errors."""

from __future__ import annotations

import numpy as np
import pytest
from fastpath_reference import (
    cvxpy_solve,
    masks,
    multiplier_columns,
    risk_model,
    smallest_violation,
)
from indexlab.errors import DataError
from indexlab.optimise import capped_qp_batch


def previous_weights(hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Previous weights with entries inside the boxes, at zero, at the cap and beyond it, and on
    names the mask now fixes at zero."""
    b, n = hi.shape
    prev = rng.uniform(0.0, 0.06, (b, n))
    pick = rng.uniform(0.0, 1.0, (b, n))
    prev[pick < 0.15] = 0.0
    prev[(pick >= 0.15) & (pick < 0.25)] = 0.08
    prev[(pick >= 0.25) & (pick < 0.3)] = 0.12
    return prev


def kkt_residual(w, s, bench, risk, gamma, hi, groups, glo, ghi, prev, cost) -> float:
    """Largest KKT violation of ``w`` (lo = 0), computed with numpy + scipy only.

    The smooth gradient plus a turnover subgradient ``t`` (``cost * sign(w - prev)``, or any
    value in ``[-cost, cost]`` where ``w == prev``) plus the row multipliers must vanish on the
    interior names and point the right way at the bounds. ``t`` at the kinks and the
    multipliers (budget, active groups) are those minimising the largest violation, by an LP.
    """
    n = len(w)
    tol = 1e-9
    grad = -s.copy()
    if gamma > 0:
        f, omega, d = risk
        e = w - (np.zeros(n) if bench is None else bench)
        grad += gamma * (f @ (omega @ (f.T @ e)) + d * e)
    movable = hi > 0
    kink = movable & (np.abs(w - prev) <= tol) & (cost > 0)
    grad = grad + np.where(kink, 0.0, cost * np.sign(w - prev))
    cols, bounds = multiplier_columns(w, groups, glo, ghi, tol)
    kinks = np.flatnonzero(kink)
    # Columns: row multipliers, one t per kink, the largest violation.
    a = np.column_stack([*cols, *(np.eye(n)[:, j] for j in kinks)])
    bounds += [(-cost[j], cost[j]) for j in kinks]
    interior = movable & (w > tol) & (w < hi - tol)
    at_lo = movable & (w <= tol)
    at_hi = movable & (w >= hi - tol)
    res = smallest_violation(a, bounds, grad, interior, at_lo, at_hi)
    return max(float(res.x[-1]), abs(w.sum() - 1.0), float(np.max(-w)), float(np.max(w - hi)))


def check_against_cvxpy(sol, s, bench, risk, gamma, hi, groups, glo, ghi, prev, cost) -> int:
    """Compare every instance with cvxpy; returns how many were feasible. Where the weights
    differ by more than 1e-6 (a flat objective, on which the interior-point answer is itself
    only that accurate), the fast path must be the better point and satisfy the KKT
    conditions, checked independently."""
    b, n = s.shape
    f, omega, d = risk if risk is not None else (None, None, None)
    prev_rows = np.broadcast_to(prev, (b, n))
    cost_rows = np.broadcast_to(cost, (b, n))
    feasible = 0
    for i in range(b):
        bi = None if bench is None else bench[i]
        w_ref, v_ref = cvxpy_solve(
            s[i], bi, f, omega, d, gamma, 0.0, hi[i], groups, glo, ghi, prev_rows[i], cost_rows[i]
        )
        if w_ref is None:
            assert sol.status[i] == "infeasible", i
            continue
        feasible += 1
        assert sol.status[i] == "optimal", i
        assert abs(sol.objective[i] - v_ref) <= 1e-7 * max(1.0, abs(v_ref)), (i, v_ref)
        if np.abs(sol.weights[i] - w_ref).max() > 1e-6:
            args = (s[i], bi, risk, gamma, hi[i], groups, glo, ghi, prev_rows[i], cost_rows[i])
            assert kkt_residual(sol.weights[i], *args) < 1e-9, i
            assert sol.objective[i] <= v_ref + 1e-12, i
    return feasible


@pytest.mark.parametrize("gamma", [2.0, 20.0])
def test_factor_model_groups_masks_per_instance_turnover(gamma: float) -> None:
    rng = np.random.default_rng(11 + int(gamma))
    b, n, k = 8, 60, 4
    f, omega, d = risk_model(n, k, rng)
    hi = masks(b, n, 20, rng) * 0.1
    s = 0.05 * rng.uniform(0, 1, (b, n))
    bench = hi * rng.lognormal(0, 1, (b, n))
    bench /= bench.sum(axis=1, keepdims=True)
    layer = rng.integers(0, 3, n)
    groups = np.stack([(layer == 0), (layer == 1)]).astype(float)
    glo = np.array([-np.inf, 0.2])
    ghi = np.array([0.4, np.inf])
    prev = previous_weights(hi, rng)
    cost = rng.uniform(0.0, 0.02, (b, n))
    cost[:, ::5] = 0.0  # some names trade for free
    sol = capped_qp_batch(
        s,
        bench,
        f,
        omega,
        d,
        gamma=gamma,
        hi=hi,
        groups=groups,
        group_lo=glo,
        group_hi=ghi,
        prev=prev,
        turnover_cost=cost,
    )
    feasible = check_against_cvxpy(
        sol, s, bench, (f, omega, d), gamma, hi, groups, glo, ghi, prev, cost
    )
    assert feasible >= b // 2


def test_shared_prev_and_scalar_cost() -> None:
    rng = np.random.default_rng(12)
    b, n, k = 6, 40, 3
    f, omega, d = risk_model(n, k, rng)
    hi = masks(b, n, 16, rng) * 0.12
    s = 0.05 * rng.uniform(0, 1, (b, n))
    prev = previous_weights(hi[:1], rng)[0]  # one row shared by the batch
    sol = capped_qp_batch(s, None, f, omega, d, gamma=5.0, hi=hi, prev=prev, turnover_cost=0.01)
    feasible = check_against_cvxpy(
        sol, s, None, (f, omega, d), 5.0, hi, None, None, None, prev, 0.01
    )
    assert feasible == b


def test_linear_objective_with_turnover() -> None:
    rng = np.random.default_rng(13)
    b, n = 6, 50
    hi = masks(b, n, 20, rng) * 0.1
    s = rng.uniform(0, 0.05, (b, n))
    prev = previous_weights(hi, rng)
    cost = np.full(n, 0.004)  # (N,) shared
    groups = (rng.uniform(0, 1, (1, n)) < 0.4).astype(float)
    glo, ghi = np.array([0.1]), np.array([0.5])
    sol = capped_qp_batch(
        s, hi=hi, groups=groups, group_lo=glo, group_hi=ghi, prev=prev, turnover_cost=cost
    )
    check_against_cvxpy(sol, s, None, None, 0.0, hi, groups, glo, ghi, prev, cost)


def test_zero_cost_is_no_turnover_term() -> None:
    rng = np.random.default_rng(14)
    b, n, k = 5, 40, 3
    f, omega, d = risk_model(n, k, rng)
    hi = masks(b, n, 15, rng) * 0.12
    s = 0.05 * rng.uniform(0, 1, (b, n))
    plain = capped_qp_batch(s, None, f, omega, d, gamma=5.0, hi=hi)
    zero = capped_qp_batch(
        s, None, f, omega, d, gamma=5.0, hi=hi, prev=previous_weights(hi, rng), turnover_cost=0.0
    )
    assert zero.status == plain.status
    np.testing.assert_allclose(zero.weights, plain.weights, atol=1e-12, rtol=0)
    np.testing.assert_allclose(zero.objective, plain.objective, atol=1e-12, rtol=0)


def test_deterministic_across_thread_counts() -> None:
    rng = np.random.default_rng(15)
    b, n, k = 60, 100, 5
    f, omega, d = risk_model(n, k, rng)
    hi = masks(b, n, 25, rng) * 0.1
    s = rng.uniform(0, 0.1, (b, n))
    kw = {"prev": previous_weights(hi, rng), "turnover_cost": 0.005, "hi": hi, "gamma": 5.0}
    one = capped_qp_batch(s, None, f, omega, d, threads=1, **kw)
    many = capped_qp_batch(s, None, f, omega, d, threads=3, **kw)
    assert np.array_equal(one.weights, many.weights, equal_nan=True)
    assert np.array_equal(one.objective, many.objective, equal_nan=True)
    assert one.status == many.status


def test_bad_turnover_inputs() -> None:
    rng = np.random.default_rng(16)
    s = rng.uniform(0, 1, (3, 6))
    prev = np.full((3, 6), 0.1)
    prev[2, 4] = np.nan
    with pytest.raises(DataError, match=r"prev is NaN at instance 2, name 4"):
        capped_qp_batch(s, hi=0.5, prev=prev, turnover_cost=0.01)
    cost = np.full(6, 0.01)
    cost[3] = -0.1
    with pytest.raises(DataError, match=r"turnover_cost is -0.1 at instance 0, name 3"):
        capped_qp_batch(s, hi=0.5, prev=0.1, turnover_cost=cost)
    with pytest.raises(DataError, match=r"turnover_cost is inf at instance 0, name 0"):
        capped_qp_batch(s, hi=0.5, prev=0.1, turnover_cost=np.inf)
    with pytest.raises(DataError, match=r"prev and turnover_cost go together"):
        capped_qp_batch(s, hi=0.5, prev=0.1)
    with pytest.raises(DataError, match=r"prev and turnover_cost go together"):
        capped_qp_batch(s, hi=0.5, turnover_cost=0.01)
    with pytest.raises(DataError, match=r"prev has shape \(2, 6\)"):
        capped_qp_batch(s, hi=0.5, prev=np.zeros((2, 6)), turnover_cost=0.01)


def _stress(models: int, seed: int) -> None:
    """Random small instances (3..12 names held, gamma in {0, 1, 20, 500}, caps partly from
    round values so that exact fills make degenerate vertices, previous weights inside, at and
    beyond the caps, some costs zero, some with group rows): the fast path must agree with
    cvxpy + Clarabel on each."""
    rng = np.random.default_rng(seed)
    n, k, m, b = 12, 3, 2, 40
    checked = 0
    for _ in range(models):
        f, omega, d = risk_model(n, k, rng)
        gamma = float(rng.choice([0.0, 1.0, 20.0, 500.0]))
        groups = (rng.random((m, n)) < 0.4).astype(float)
        with_groups = bool(rng.random() < 0.5)
        s = rng.uniform(0, 1, (b, n)) * (0.05 if gamma == 0 else 1.0)
        bench = rng.dirichlet(np.ones(n), b)
        hi = np.zeros((b, n))
        for i in range(b):
            round_cap = float(rng.choice([0.1, 0.125, 0.2, 0.25, 1 / 3, 0.5]))
            cap = round_cap if rng.random() < 0.5 else rng.uniform(0.1, 0.5)
            hi[i, rng.choice(n, int(rng.integers(3, 13)), replace=False)] = cap
        prev = np.where(rng.random((b, n)) < 0.5, rng.dirichlet(np.ones(n), b), 0.0)
        prev[rng.random((b, n)) < 0.2] = 0.2
        cost = rng.uniform(0, 0.05, (b, n)) * (rng.random((b, n)) < 0.8)
        glo = np.where(rng.random(m) < 0.5, rng.uniform(0.0, 0.2, m), -np.inf)
        ghi = np.where(rng.random(m) < 0.7, rng.uniform(0.25, 0.6, m), np.inf)
        grp = (groups, glo, ghi) if with_groups else (None, None, None)
        kw = dict(zip(("groups", "group_lo", "group_hi"), grp, strict=True))
        sol = capped_qp_batch(
            s, bench, f, omega, d, gamma=gamma, hi=hi, prev=prev, turnover_cost=cost, **kw
        )
        risk = (f, omega, d)
        checked += check_against_cvxpy(sol, s, bench, risk, gamma, hi, *grp, prev, cost)
    assert checked > models * b // 2


def test_random_small_instances_match_cvxpy() -> None:
    _stress(5, seed=20261202)


@pytest.mark.slow
def test_random_small_instances_match_cvxpy_many() -> None:
    _stress(40, seed=3)
