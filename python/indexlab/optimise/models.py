"""Ready-made index models built from :mod:`indexlab.optimise.blocks`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
from indexlab.optimise.compile import CompiledProblem
from indexlab.optimise.compile import compile as compile_problem
from indexlab.optimise.fastpath import FastSolution, capped_qp_batch
from indexlab.optimise.risk import RiskModel

__all__ = ["AIChainModel", "CappedFactorForm", "ai_chain_model"]

Array = npt.NDArray[np.float64]


def _copy(a: Any) -> Array | None:
    return None if a is None else np.array(a, dtype=np.float64, copy=True)


@dataclass(frozen=True)
class CappedFactorForm:
    """The fast-path form of an :class:`AIChainModel` (no TE budget), with its own copies of
    every array: ``max scores @ w - te_weight (w - bench)' Sigma (w - bench) - turnover_weight
    |w - prev|_1`` over ``sum w = 1``, ``0 <= w <= min(cap * mask, name_cap)``, ``group_lo <=
    groups @ w <= group_hi``, solved directly by :func:`indexlab.optimise.capped_qp_batch`.

    :func:`indexlab.optimise.compile` does not need it: it finds the same shape in the cvxpy
    form's canonical data. It is here for callers that want the arrays (and as a cross-check:
    both forms give the same weights, see ``tests/test_structure.py``).
    """

    cap: float
    te_weight: float
    loadings: Array
    factor_cov: Array
    specific_var: Array
    name_cap: Array | None
    groups: Array | None
    group_lo: Array | None
    group_hi: Array | None
    turnover_weight: float = 0.0

    def solve_batch(
        self,
        mask: Any,
        scores: Any,
        bench: Any,
        prev: Any = None,
        threads: int | None = None,
    ) -> FastSolution:
        """Solve a batch of ``(B, n)`` masks, scores and benchmarks (and previous weights with
        a turnover weight) on the fast path.

        Examples
        --------
        >>> import numpy as np
        >>> from indexlab.optimise import RiskModel, ai_chain_model
        >>> n = 4
        >>> rm = RiskModel(np.ones((n, 1)), np.eye(1) * 0.04, np.full(n, 0.01))
        >>> m = ai_chain_model(range(n), np.full(n, 0.25), np.arange(n) / n, rm, cap=0.4)
        >>> ones = np.ones((1, n))
        >>> m.fast.solve_batch(ones, np.arange(n)[None] / n, ones / n).status
        ['optimal']
        """
        hi = self.cap * np.asarray(mask, dtype=np.float64)
        if self.name_cap is not None:
            hi = np.minimum(hi, self.name_cap)
        turnover: dict[str, Any] = {}
        if self.turnover_weight > 0:
            if prev is None:
                raise DataError("prev: this model has a turnover weight; give previous weights")
            turnover = {"prev": prev, "turnover_cost": self.turnover_weight}
        return capped_qp_batch(
            scores,
            bench=bench,
            loadings=self.loadings,
            factor_cov=self.factor_cov,
            specific_var=self.specific_var,
            gamma=2.0 * self.te_weight,  # gamma/2 TE^2 - s'w, minimised
            lo=0.0,
            hi=hi,
            groups=self.groups,
            group_lo=self.group_lo,
            group_hi=self.group_hi,
            threads=threads,
            **turnover,
        )


@dataclass(frozen=True, eq=False)
class AIChainModel:
    """An AI-chain index model in its two forms, both owned here.

    Attributes
    ----------
    problem : cvxpy.Problem
        The cvxpy form (parameters ``mask``, ``scores``, ``bench``; ``prev`` with turnover;
        ``te_budget`` with a TE budget).
    weights : cvxpy.Variable
        The weight variable ``w``.
    fast : CappedFactorForm or None
        The fast-path form, its arrays copied when the model was built (``None`` with a TE
        budget, which :func:`indexlab.optimise.capped_qp_batch` does not take; ``compile``
        still takes the fast path for it, with its exact budget search).

    Unpacks as ``problem, w = ai_chain_model(...)``.
    """

    problem: cp.Problem
    weights: cp.Variable
    fast: CappedFactorForm | None

    def __iter__(self) -> Iterator[Any]:
        yield self.problem
        yield self.weights

    @property
    def parameters(self) -> dict[str, cp.Parameter]:
        """The cvxpy parameters by name."""
        return {p.name(): p for p in self.problem.parameters()}

    def compile(self, fast_path: bool | None = None) -> CompiledProblem:
        """:func:`indexlab.optimise.compile` of the cvxpy form (it picks the path itself)."""
        return compile_problem(self.problem, fast_path=fast_path)


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
    te_budget: float | None = None,
) -> AIChainModel:
    """The AI-chain index model: most AI exposure for a tracking-error budget vs the parent.

    ``maximise scores @ w - te_weight * TE^2(w, bench) - turnover_weight * |w - prev|_1``
    subject to ``sum w = 1``, ``w >= 0``, ``w <= cap * mask`` (the 8% cap and the candidate's
    membership), liquidity caps (when ``adv`` and ``aum`` are given) and layer bounds (when
    ``layers`` is given) and, with ``te_budget``, ``TE(w, bench) <= te_budget`` (the
    budget is then a parameter, ``te_budget``, starting at the value given).

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
    AIChainModel
        The cvxpy form and the fast-path form; unpacks as ``(problem, w)``.

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
    if te_budget is not None and not (np.isfinite(te_budget) and te_budget >= 0):
        raise DataError(f"te_budget: expected a finite number >= 0, found {te_budget}")

    w = cp.Variable(n, name="w")
    mask = cp.Parameter(n, nonneg=True, name="mask", value=np.ones(n))
    scores_p = cp.Parameter(n, name="scores", value=sc)
    bench = cp.Parameter(n, name="bench", value=pw)
    te = tracking_error(w, bench, risk_model)
    objective = ai_exposure(w, scores_p) - te_weight * te.squared
    constraints = [cp.sum(w) == 1, w >= 0, *weight_cap(w, cap, mask), *te.constraints]
    if te_budget is not None:
        budget = cp.Parameter(nonneg=True, name="te_budget", value=float(te_budget))
        constraints.append(te.norm <= budget)
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
    fast = None
    if te_budget is None:
        fast = CappedFactorForm(
            cap=float(cap),
            te_weight=float(te_weight),
            loadings=np.array(risk_model.loadings, copy=True),
            factor_cov=np.array(risk_model.factor_cov, copy=True),
            specific_var=np.array(risk_model.specific_var, copy=True),
            name_cap=_copy(name_cap),
            groups=_copy(groups),
            group_lo=_copy(group_lo),
            group_hi=_copy(group_hi),
            turnover_weight=float(turnover_weight),
        )
    return AIChainModel(problem=problem, weights=w, fast=fast)
