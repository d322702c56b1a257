"""The capped-QP problem written independently in cvxpy, and the random inputs, shared by the
fast-path tests (``test_fastpath.py``, ``test_fastpath_turnover.py``)."""

from __future__ import annotations

import cvxpy as cp
import numpy as np

TIGHT = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}


def risk_model(n: int, k: int, rng: np.random.Generator):
    f = rng.normal(0.0, 1.0, (n, k)) * np.r_[1.0, np.full(k - 1, 0.5)]
    a = rng.normal(0.0, 0.1, (k, k))
    omega = a @ a.T + np.diag(np.full(k, 0.01))
    d = rng.uniform(0.01, 0.06, n)
    return f, omega, d


def masks(b: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((b, n))
    for i in range(b):
        out[i, rng.choice(n, size, replace=False)] = 1.0
    return out


def cvxpy_solve(
    s, bench, f, omega, d, gamma, lo, hi, groups=None, glo=None, ghi=None, prev=None, cost=None
):
    """The same problem written in cvxpy (tracking-error form, plus ``cost @ |w - prev|`` when
    ``prev`` is given), solved by Clarabel; ``(None, None)`` when infeasible."""
    n = len(s)
    w = cp.Variable(n)
    obj = -s @ w
    if prev is not None:
        obj = obj + cp.sum(cp.multiply(cost, cp.abs(w - prev)))
    if gamma > 0:
        chol = np.linalg.cholesky(omega)
        diff = w - (np.zeros(n) if bench is None else bench)
        obj = obj + gamma / 2 * (
            cp.sum_squares(chol.T @ (f.T @ diff)) + cp.sum_squares(cp.multiply(np.sqrt(d), diff))
        )
    cons = [cp.sum(w) == 1, w >= lo, w <= hi]
    if groups is not None:
        for r in range(groups.shape[0]):
            if np.isfinite(glo[r]):
                cons.append(groups[r] @ w >= glo[r])
            if np.isfinite(ghi[r]):
                cons.append(groups[r] @ w <= ghi[r])
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver=cp.CLARABEL, **TIGHT)
    if prob.status in ("infeasible", "infeasible_inaccurate"):
        return None, None
    assert prob.status == "optimal", prob.status
    return np.asarray(w.value), float(prob.value)


def multiplier_columns(w, groups, glo, ghi, tol: float) -> tuple[list, list]:
    """The budget's column and each active group side's, with the sign its multiplier may
    take (the columns of the stationarity LP of :func:`smallest_violation`)."""
    cols, bounds = [np.ones(len(w))], [(None, None)]
    if groups is not None:
        for r in range(groups.shape[0]):
            gw = groups[r] @ w
            if abs(gw - ghi[r]) < tol:
                cols.append(groups[r])
                bounds.append((0, None))
            elif abs(gw - glo[r]) < tol:
                cols.append(groups[r])
                bounds.append((None, 0))
    return cols, bounds


def smallest_violation(a, bounds, grad, interior, at_lo, at_hi):
    """The multipliers (columns ``a``, with ``bounds``) that minimise the largest violation of
    stationarity: ``grad + a @ y`` zero on interior names, >= 0 at a lower bound, <= 0 at an
    upper one. An LP (HiGHS); its last variable is that violation."""
    from scipy.optimize import linprog

    rows, rhs = [], []
    for mask, sign in ((interior, 1.0), (interior, -1.0), (at_lo, -1.0), (at_hi, 1.0)):
        rows.append(np.column_stack([sign * a[mask], -np.ones(mask.sum())]))
        rhs.append(-sign * grad[mask])
    res = linprog(
        np.r_[np.zeros(a.shape[1]), 1.0],
        A_ub=np.vstack(rows),
        b_ub=np.concatenate(rhs),
        bounds=[*bounds, (0, None)],
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    assert res.status == 0, res.message
    return res
