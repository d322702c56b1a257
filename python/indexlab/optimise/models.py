"""Ready-made index models built from :mod:`indexlab.optimise.blocks`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
import numpy.typing as npt

from indexlab.errors import DataError
from indexlab.optimise.blocks import (
    ai_exposure,
    group_bounds,
    group_matrix,
    liquidity_cap,
    tracking_error,
    turnover,
    weight_cap,
)
from indexlab.optimise.risk import RiskModel

__all__ = ["CappedFactorStructure", "ai_chain_model"]


@dataclass(frozen=True)
class CappedFactorStructure:
    """What :func:`ai_chain_model` built, for :func:`indexlab.optimise.compile` to hand the
    problem to the pure-Rust fast path (``indexlab.optimise.fastpath``) when it is installed:
    ``max scores @ w - te_weight (w - bench)' Sigma (w - bench)`` over ``sum w = 1``,
    ``0 <= w <= min(cap * mask, name_cap)``, ``group_lo <= groups @ w <= group_hi``."""

    cap: float
    te_weight: float
    risk_model: RiskModel
    name_cap: npt.NDArray[np.float64] | None
    groups: npt.NDArray[np.float64] | None
    group_lo: npt.NDArray[np.float64] | None
    group_hi: npt.NDArray[np.float64] | None
    weights: str
    factors: str


def ai_chain_model(
    universe: Any,
    parent_weights: npt.ArrayLike,
    scores: npt.ArrayLike,
    risk_model: RiskModel,
    cap: float = 0.08,
    te_weight: float = 10.0,
    turnover_weight: float = 0.0,
    adv: npt.ArrayLike | None = None,
    aum: float | None = None,
    participation: float = 0.2,
    days: float = 1.0,
    layers: Sequence[Any] | None = None,
    layer_lo: float | Mapping[Any, float] = 0.0,
    layer_hi: float | Mapping[Any, float] = 1.0,
) -> tuple[cp.Problem, cp.Variable]:
    """The AI-chain index model: most AI exposure for a tracking-error budget vs the parent.

    ``maximise scores @ w - te_weight * TE^2(w, bench) - turnover_weight * |w - prev|_1``
    subject to ``sum w = 1``, ``w >= 0``, ``w <= cap * mask`` (the 8% cap and the candidate's
    membership), liquidity caps (when ``adv`` and ``aum`` are given) and layer bounds (when
    ``layers`` is given).

    Parameters ``mask`` (nonneg), ``scores``, ``bench`` and, when ``turnover_weight > 0``,
    ``prev`` vary per candidate; they start at all-ones, ``scores``, ``parent_weights`` and
    ``parent_weights``. Compile the problem with :func:`indexlab.optimise.compile` and pass a
    batch of values by those names.

    Parameters
    ----------
    universe : sequence of ids, or an object with ``.ids``
        The names, in the order of every array argument.
    parent_weights, scores : array_like, shape (n,)
        Parent index weights (the tracking benchmark) and AI scores.
    risk_model : RiskModel
        Risk model over the same names.

    Returns
    -------
    (problem, w)

    Examples
    --------
    >>> import numpy as np
    >>> from indexlab.optimise import RiskModel, ai_chain_model, compile
    >>> n = 20
    >>> rm = RiskModel(np.ones((n, 1)), np.eye(1) * 0.04, np.full(n, 0.01))
    >>> prob, w = ai_chain_model(range(n), np.full(n, 1 / n), np.linspace(0, 1, n), rm)
    >>> sorted(p.name() for p in prob.parameters())
    ['bench', 'mask', 'scores']
    >>> compile(prob).solve(mask=np.ones(n), scores=np.linspace(0, 1, n),
    ...                     bench=np.full(n, 1 / n)).status
    'optimal'
    """
    ids = list(universe.ids if hasattr(universe, "ids") else universe)
    n = len(ids)
    pw = np.asarray(parent_weights, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    for name, a in (("parent_weights", pw), ("scores", sc)):
        if a.shape != (n,):
            raise DataError(f"{name}: expected {n} values (one per name), found shape {a.shape}")
        if not np.isfinite(a).all():
            raise DataError(f"{name}: expected finite values, found NaN or inf")
    if not 0 < cap <= 1:
        raise DataError(f"cap: expected within (0, 1], found {cap}")
    if te_weight < 0 or turnover_weight < 0:
        raise DataError("te_weight and turnover_weight: expected >= 0")

    w = cp.Variable(n, name="w")
    mask = cp.Parameter(n, nonneg=True, name="mask", value=np.ones(n))
    scores_p = cp.Parameter(n, name="scores", value=sc)
    bench = cp.Parameter(n, name="bench", value=pw)
    te, te_cons = tracking_error(w, bench, risk_model)
    objective = ai_exposure(w, scores_p) - te_weight * te
    constraints = [cp.sum(w) == 1, w >= 0, *weight_cap(w, cap, mask), *te_cons]
    if turnover_weight > 0:
        prev = cp.Parameter(n, name="prev", value=pw)
        objective = objective - turnover_weight * turnover(w, prev)
    name_cap = None
    if adv is not None:
        if aum is None:
            raise DataError("liquidity caps need aum together with adv")
        constraints += liquidity_cap(w, aum, adv, participation, days)
        name_cap = participation * days * np.asarray(adv, dtype=np.float64) / aum
    groups = group_lo = group_hi = None
    if layers is not None:
        constraints += group_bounds(w, layers, layer_lo, layer_hi)
        groups, group_lo, group_hi = group_matrix(n, layers, layer_lo, layer_hi)
    problem = cp.Problem(cp.Maximize(objective), constraints)
    if turnover_weight == 0:
        factors = next(v for v in te_cons[0].variables() if v.name().startswith("te_factors"))
        problem._indexlab_structure = CappedFactorStructure(  # type: ignore[attr-defined]
            cap=cap,
            te_weight=te_weight,
            risk_model=risk_model,
            name_cap=name_cap,
            groups=groups,
            group_lo=group_lo,
            group_hi=group_hi,
            weights=w.name(),
            factors=factors.name(),
        )
    return problem, w
