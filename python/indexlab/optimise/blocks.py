"""cvxpy building blocks for index optimisation, all DPP-safe.

Each block returns a cvxpy expression (objective terms) or a list of constraints. Arguments
that vary between candidates should be ``cp.Parameter``s; the blocks never multiply a parameter
by an expression that contains another parameter (DPP forbids it), introducing auxiliary
variables where needed instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import cvxpy as cp
import numpy as np

from indexlab.errors import DataError
from indexlab.optimise.risk import RiskModel

_COUNTER = itertools.count()

__all__ = [
    "TrackingError",
    "ai_exposure",
    "group_bounds",
    "liquidity_cap",
    "min_weight_if_held",
    "tracking_error",
    "turnover",
    "weight_cap",
]


def _n(w: cp.Expression) -> int:
    if len(w.shape) != 1:
        raise DataError(f"w: expected a 1-D weight vector, found shape {w.shape}")
    return int(w.shape[0])


def _vec(name: str, a: Any, n: int) -> Any:
    """A parameter/expression as is, or a length-n float array (scalars broadcast)."""
    if isinstance(a, cp.Expression):
        if a.shape not in ((n,), ()):
            raise DataError(f"{name}: expected shape ({n},), found {a.shape}")
        return a
    v = np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)) if np.ndim(a) == 0 else a
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise DataError(f"{name}: expected {n} values (one per name), found shape {v.shape}")
    if not np.isfinite(v).all():
        raise DataError(
            f"{name}: expected finite values, found NaN at {np.flatnonzero(~np.isfinite(v))[:5]}"
        )
    return v


def ai_exposure(w: cp.Expression, scores: Any) -> cp.Expression:
    """AI exposure ``scores @ w``.

    Examples
    --------
    >>> import cvxpy as cp
    >>> w = cp.Variable(3)
    >>> ai_exposure(w, [1.0, 0.5, 0.0]).shape
    ()
    """
    return _vec("scores", scores, _n(w)) @ w


class TrackingError(tuple):  # type: ignore[type-arg]
    """What :func:`tracking_error` returns: the pair ``(squared, constraints)`` (unpack it as
    before), plus the tracking error itself, ``norm``, so that ``tracking_error(...) <= budget``
    is a constraint (a second-order cone; a budget may be a ``cp.Parameter``).

    Attributes
    ----------
    squared : cvxpy.Expression
        ``TE^2``, for a penalty in the objective.
    constraints : list of cvxpy.Constraint
        The auxiliary variable's definition; add it to the problem.
    norm : cvxpy.Expression
        ``TE = ||(G (w - b), sqrt(d) (w - b))||_2``.
    """

    norm: cp.Expression

    def __new__(
        cls, squared: cp.Expression, constraints: list[cp.Constraint], norm: cp.Expression
    ) -> TrackingError:
        obj = super().__new__(cls, (squared, constraints))
        obj.norm = norm
        return obj

    @property
    def squared(self) -> cp.Expression:
        return self[0]  # type: ignore[no-any-return]

    @property
    def constraints(self) -> list[cp.Constraint]:
        return self[1]  # type: ignore[no-any-return]

    def __le__(self, budget: Any) -> list[cp.Constraint]:  # type: ignore[override]
        """``TE <= budget``: the definition constraints and the cone."""
        if not isinstance(budget, cp.Expression):
            b = float(budget)
            if not np.isfinite(b) or b < 0:
                raise DataError(f"tracking-error budget: expected a finite number >= 0, found {b}")
        return [*self.constraints, self.norm <= budget]


def tracking_error(w: cp.Expression, bench: Any, risk_model: RiskModel) -> TrackingError:
    """Squared tracking error vs ``bench`` under a factor risk model, and its constraints.

    ``||G (w - b)||^2 + ||sqrt(d) * (w - b)||^2`` with ``G = L' F'`` (see
    :meth:`RiskModel.factor_root`). An auxiliary variable ``f == G (w - b)`` keeps the factor
    part at k variables and keeps the term DPP when ``bench`` is a parameter.

    Returns
    -------
    TrackingError
        Unpacks as ``(expression, constraints)``: add the constraints to the problem. As a
        budget, ``tracking_error(w, bench, rm) <= 0.08`` gives the constraints of
        ``TE <= 0.08`` (in the risk model's units, e.g. annualised), which
        :func:`indexlab.optimise.compile` solves exactly on either path.

    Examples
    --------
    >>> import cvxpy as cp, numpy as np
    >>> rm = RiskModel(np.ones((3, 1)), np.eye(1), np.full(3, 0.01))
    >>> w, b = cp.Variable(3), cp.Parameter(3)
    >>> te, cons = tracking_error(w, b, rm)
    >>> te.is_dcp(dpp=True)
    True
    >>> len(tracking_error(w, b, rm) <= 0.05)
    2
    """
    n = _n(w)
    if risk_model.n_names != n:
        raise DataError(f"risk_model: expected {n} names like w, found {risk_model.n_names}")
    b = _vec("bench", bench, n)
    g = risk_model.factor_root()
    f = cp.Variable(g.shape[0], name=f"te_factors_{next(_COUNTER)}")
    active = w - b
    specific = cp.multiply(np.sqrt(risk_model.specific_var), active)
    expr = cp.sum_squares(f) + cp.sum_squares(specific)
    return TrackingError(expr, [f == g @ active], cp.norm(cp.hstack([f, specific]), 2))


def weight_cap(w: cp.Expression, cap: Any, mask: Any = None) -> list[cp.Constraint]:
    """``w <= cap`` (per name or scalar), or ``w <= cap * mask`` with a 0/1 membership mask.

    A mask of 0 fixes the name at zero (with ``w >= 0``), which the batch presolve removes.

    Examples
    --------
    >>> import cvxpy as cp
    >>> w, mask = cp.Variable(3), cp.Parameter(3, nonneg=True)
    >>> len(weight_cap(w, 0.08, mask))
    1
    """
    n = _n(w)
    c = _vec("cap", cap, n)
    if mask is None:
        return [w <= c]
    m = _vec("mask", mask, n)
    if isinstance(c, cp.Expression) and isinstance(m, cp.Expression):
        raise DataError("weight_cap: cap and mask cannot both be parameters (not DPP)")
    return [w <= cp.multiply(c, m)]


def liquidity_cap(
    w: cp.Expression,
    aum: float,
    adv: Any,
    participation: float = 0.2,
    days: float = 1.0,
) -> list[cp.Constraint]:
    """Trade within a share of daily volume: ``w_i * aum <= participation * adv_i * days``.

    ``adv`` is average daily traded value (same currency as ``aum``); NaN is not allowed (use 0
    for names that do not trade).

    Examples
    --------
    >>> import cvxpy as cp
    >>> w = cp.Variable(2)
    >>> len(liquidity_cap(w, aum=1e9, adv=[5e7, 1e8]))
    1
    """
    n = _n(w)
    if not aum > 0:
        raise DataError(f"aum: expected > 0, found {aum}")
    if not participation > 0 or not days > 0:
        raise DataError(f"participation and days: expected > 0, found {participation} and {days}")
    a = _vec("adv", adv, n)
    if isinstance(a, cp.Expression):
        return [w <= (participation * days / aum) * a]
    if (a < 0).any():
        raise DataError(f"adv: expected >= 0, found {a[a < 0][0]} at name {np.argmin(a)}")
    return [w <= participation * days * a / aum]


def group_bounds(
    w: cp.Expression,
    groups: Sequence[Any],
    lo: float | Mapping[Any, float] = 0.0,
    hi: float | Mapping[Any, float] = 1.0,
) -> list[cp.Constraint]:
    """Bounds on each group's total weight: ``lo_g <= sum(w[group == g]) <= hi_g``.

    ``groups`` labels each name (industry, AI layer, ...); ``lo``/``hi`` are scalars or dicts
    by label (missing labels: 0 and 1).

    Examples
    --------
    >>> import cvxpy as cp
    >>> w = cp.Variable(3)
    >>> len(group_bounds(w, ["a", "a", "b"], lo={"b": 0.1}, hi=0.7))
    2
    """
    n = _n(w)
    member, lo_v, hi_v = group_matrix(n, groups, lo, hi)
    s = member @ w
    return [s >= lo_v, s <= hi_v]


def group_matrix(
    n: int,
    groups: Sequence[Any],
    lo: float | Mapping[Any, float] = 0.0,
    hi: float | Mapping[Any, float] = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 0/1 membership matrix (groups sorted by label) and bounds of :func:`group_bounds`."""
    labels = list(groups)
    if len(labels) != n:
        raise DataError(f"groups: expected {n} labels (one per name), found {len(labels)}")
    keys = sorted(set(labels), key=str)
    member = np.array([[1.0 if lab == k else 0.0 for lab in labels] for k in keys])

    def bound(b: float | Mapping[Any, float], default: float) -> np.ndarray:
        if isinstance(b, Mapping):
            unknown = set(b) - set(keys)
            if unknown:
                raise DataError(f"group bounds name unknown groups {sorted(unknown, key=str)}")
            return np.array([float(b.get(k, default)) for k in keys])
        return np.full(len(keys), float(b))

    lo_v, hi_v = bound(lo, 0.0), bound(hi, 1.0)
    bad = np.flatnonzero(lo_v > hi_v)
    if bad.size:
        k = keys[bad[0]]
        raise DataError(f"group {k!r}: lower bound {lo_v[bad[0]]} above upper {hi_v[bad[0]]}")
    return member, lo_v, hi_v


def turnover(w: cp.Expression, prev: Any) -> cp.Expression:
    """One-way-and-back (L1) turnover ``sum |w - prev|``.

    Examples
    --------
    >>> import cvxpy as cp
    >>> w, prev = cp.Variable(3), cp.Parameter(3)
    >>> turnover(w, prev).is_convex()
    True
    """
    return cp.norm1(w - _vec("prev", prev, _n(w)))


def min_weight_if_held(w: cp.Expression, held_mask: Any, min_w: float) -> list[cp.Constraint]:
    """``w_i >= min_w`` for names with ``held_mask_i = 1`` (0/1 mask, array or parameter).

    Examples
    --------
    >>> import cvxpy as cp
    >>> w, held = cp.Variable(3), cp.Parameter(3, nonneg=True)
    >>> len(min_weight_if_held(w, held, 0.005))
    1
    """
    if not min_w >= 0:
        raise DataError(f"min_w: expected >= 0, found {min_w}")
    return [w >= min_w * _vec("held_mask", held_mask, _n(w))]
