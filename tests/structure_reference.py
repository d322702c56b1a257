"""A random factor risk model and cvxpy's own tight Clarabel solve of one instance, shared by
the structure-recognition tests (``test_structure.py``, ``test_structure_turnover.py``)."""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
from indexlab.optimise import RiskModel


def factor_risk(rng: np.random.Generator, n: int) -> RiskModel:
    """Three factors with variances 4%, 2% and 1%, specific variances 1-5%."""
    return RiskModel(
        rng.normal(0, 0.3, (n, 3)), np.diag([0.04, 0.02, 0.01]), rng.uniform(0.01, 0.05, n)
    )


def cvxpy_instance(
    prob: cp.Problem, params: dict[str, np.ndarray], i: int
) -> tuple[str, float, dict]:
    """Status, objective and variable values of cvxpy's solve of instance ``i``."""
    by_name = {p.name(): p for p in prob.parameters()}
    for name, v in params.items():
        by_name[name].value = v[i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return prob.status, prob.value, {v.name(): v.value for v in prob.variables()}
