"""The review-by-review solves of :class:`~indexlab.search.OptimisedCandidate` for
:func:`indexlab.search.evaluate`.

At each review every candidate of a chunk gets its mask (membership, listing, market, Connect
and ADV screens, ``top_k``), its benchmark (the parent index's weights, or the candidate's own
parent weights over the names listed) and its upper bounds (``cap x mask``, the liquidity
participation cap). Candidates are solved together, one fast-path batch per kind (sign of
``te_weight``, TE budget or not, turnover penalty or not):
:func:`indexlab.optimise.capped_qp_batch`, with each candidate's turnover cost against its
previous review's weights, or the exact budget search of :func:`indexlab.optimise.compile`
with a TE budget. Candidates with
both a TE budget and a turnover penalty are one batch of the compiled cvxpy model of
:func:`review_model` (their turnover weights are parameters) on the generic (Clarabel) path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cvxpy as cp
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from indexlab.errors import DataError
from indexlab.optimise.blocks import tracking_error
from indexlab.optimise.compile import compile as compile_problem
from indexlab.optimise.fastpath import capped_qp_batch
from indexlab.optimise.models import ai_chain_model
from indexlab.optimise.risk import RiskModel
from indexlab.optimise.structure import row_dot
from indexlab.search.candidates import OptimisedCandidate

if TYPE_CHECKING:
    from indexlab.search.evaluate import _Context

__all__ = ["OptimisedRun", "ex_ante_te", "optimised_schedules", "realised_te", "review_model"]

FloatArray = npt.NDArray[np.float64]

#: Solver statuses whose weights are used ("optimal_inaccurate": the budget search stopped at
#: the feasible end of its bracket, so the budget is still met).
SOLVED = ("optimal", "optimal_inaccurate")
#: Trading days per year (the realised TE is annualised with it, like ``backtest.metrics``).
YEAR = 252


@dataclass
class OptimisedRun:
    """What :func:`optimised_schedules` returns for a chunk of candidates.

    ``weights[k]`` and ``bench[k]`` are ``(R, N)`` (``None`` where candidate ``k`` is
    infeasible); ``ex_ante`` is the mean over reviews of the ex-ante TE (NaN if infeasible).
    """

    weights: list[sp.csr_matrix | None]
    bench: list[sp.csr_matrix | None]
    status: list[str]
    ex_ante: FloatArray


def review_model(
    n: int, risk_model: RiskModel, linear: bool, budgeted: bool, turnover: bool
) -> tuple[cp.Problem, cp.Variable]:
    """The cvxpy form of one review of an optimiser candidate, with every per-candidate value a
    parameter (``scores``, ``bench``, ``hi``; ``te_budget`` when ``budgeted``; ``prev`` and
    ``turnover_weight`` when ``turnover``)::

        maximise  scores @ w - TE^2(w, bench) - turnover_weight * sum |w - prev|
        s.t.      sum w = 1,  0 <= w <= hi,  TE(w, bench) <= te_budget

    (no ``TE^2`` when ``linear``). The caller folds ``te_weight`` into ``scores`` and
    ``turnover_weight`` and the cap, mask and liquidity caps into ``hi``.

    Examples
    --------
    >>> import numpy as np
    >>> from indexlab.optimise import RiskModel
    >>> rm = RiskModel(np.ones((4, 1)), np.eye(1) * 0.04, np.full(4, 0.01))
    >>> prob, w = review_model(4, rm, linear=False, budgeted=False, turnover=True)
    >>> sorted(p.name() for p in prob.parameters())
    ['bench', 'hi', 'prev', 'scores', 'turnover_weight']
    """
    w = cp.Variable(n, name="w")
    scores = cp.Parameter(n, name="scores", value=np.zeros(n))
    bench = cp.Parameter(n, name="bench", value=np.full(n, 1.0 / n))
    hi = cp.Parameter(n, nonneg=True, name="hi", value=np.ones(n))
    te = tracking_error(w, bench, risk_model)
    objective: Any = scores @ w
    constraints = [cp.sum(w) == 1, w >= 0, w <= hi, *te.constraints]
    if not linear:
        objective = objective - te.squared
    if budgeted:
        budget = cp.Parameter(nonneg=True, name="te_budget", value=1.0)
        constraints.append(te.norm <= budget)
    if turnover:
        prev = cp.Parameter(n, name="prev", value=np.zeros(n))
        weight = cp.Parameter(nonneg=True, name="turnover_weight", value=0.0)
        # |w - prev| through an auxiliary variable: a parameter may multiply sum(t) (DPP), not
        # norm1(w - prev), which holds the parameter prev.
        t = cp.Variable(n, name="trade")
        constraints += [t >= w - prev, t >= prev - w]
        objective = objective - weight * cp.sum(t)
    return cp.Problem(cp.Maximize(objective), constraints), w


def drifted(ctx: _Context, prev: FloatArray, j: int) -> FloatArray:
    """Review ``j - 1``'s weights drifted with the market to review ``j``'s implementation:
    what a candidate holds when it trades, so what its turnover penalty measures against. The
    levels are those the backtest compounds (price or total return)."""
    start, end = int(ctx.impl[j - 1] - ctx.t0), int(ctx.impl[j] - ctx.t0)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = ctx.tr[end] / ctx.tr[start]
    held = prev * np.where(np.isfinite(growth), growth, 1.0)[None, :]
    total = held.sum(axis=1, keepdims=True)
    return np.asarray(np.where(total > 0, held / np.where(total > 0, total, 1.0), 0.0))


def ex_ante_te(rm: RiskModel, active: FloatArray) -> FloatArray:
    """Annualised ex-ante TE of each row of active weights ``w - bench`` under ``rm``."""
    f = active @ rm.loadings
    # Row sums in a fixed order (see indexlab.optimise.structure.row_dot): the same bits for a
    # candidate whatever else shares its batch.
    specific = ((active**2) * rm.specific_var[None, :]).sum(axis=1)
    var = row_dot(f @ rm.factor_cov, f) + specific
    return np.asarray(np.sqrt(np.maximum(var, 0.0)), dtype=np.float64)


def _base(
    ctx: _Context, cands: list[OptimisedCandidate], names: list[str]
) -> npt.NDArray[np.bool_]:
    """Each candidate's membership before the review's screens: members or mask (within its
    markets), or every name of its markets (HK by default)."""
    n = len(ctx.id_pos)
    base = np.zeros((len(cands), n), dtype=bool)
    for k, c in enumerate(cands):
        if c.members is not None:
            cols = ctx.id_pos.get_indexer(pd.Index(c.members))
            if (cols < 0).any():
                bad = [i for i, p in zip(c.members, cols, strict=True) if p < 0][:5]
                raise DataError(f"candidate {names[k]!r} holds ids not in the dataset: {bad}")
            base[k, cols] = True
        elif c.mask is not None:
            if c.mask.shape != (n,):
                raise DataError(
                    f"candidate {names[k]!r}: mask has shape {c.mask.shape}, expected ({n},) "
                    "(one entry per dataset id)"
                )
            base[k] = c.mask
        else:
            base[k] = True
        if c.markets is not None or (c.members is None and c.mask is None):
            base[k] &= np.isin(ctx.markets, c.markets or ("HK",))
    return base


def _parent_vectors(
    ctx: _Context, cands: list[OptimisedCandidate], names: list[str]
) -> dict[int, FloatArray]:
    """Candidate position -> its parent weights over the dataset's ids (zeros elsewhere)."""
    out: dict[int, FloatArray] = {}
    for k, c in enumerate(cands):
        if c.parent_weights is None:
            continue
        pw = c.parent_weights
        cols = ctx.id_pos.get_indexer(pw.index)
        if (cols < 0).any():
            bad = pw.index[cols < 0][:5].tolist()
            raise DataError(
                f"candidate {names[k]!r}: parent_weights name ids not in the dataset: {bad}"
            )
        v = np.zeros(len(ctx.id_pos))
        v[cols] = pw.to_numpy()
        out[k] = v
    return out


def optimised_schedules(
    ctx: _Context, cands: list[OptimisedCandidate], names: list[str]
) -> OptimisedRun:
    """Solve every review for a chunk of optimiser candidates (see the module docs)."""
    b, n, r = len(cands), len(ctx.id_pos), len(ctx.cut)
    base = _base(ctx, cands, names)
    parents = _parent_vectors(ctx, cands, names)
    needs_connect = np.array([c.connect_only for c in cands], dtype=bool)
    top_k = np.array([c.top_k or 0 for c in cands], dtype=np.int64)
    cap = np.array([c.cap for c in cands])
    te = np.array([c.te_weight for c in cands])
    budget = np.array([np.nan if c.te_budget is None else c.te_budget for c in cands])
    min_adv = np.array([c.min_adv_hkd or 0.0 for c in cands])
    aum = np.array([np.nan if c.aum_hkd is None else c.aum_hkd for c in cands])
    part = np.array([c.participation for c in cands])
    tw = np.array([c.turnover_weight for c in cands])
    status = ["ok"] * b
    alive = np.ones(b, dtype=bool)
    weights = np.zeros((b, r, n))
    bench = np.zeros((b, r, n))
    ex_ante = np.zeros((b, r))
    for j in range(r):
        mask = base & ctx.listed[j]
        # Connect eligibility as known at this review's cut-off (point in time).
        mask[needs_connect] &= ctx.connect_at(j)
        adv = None
        screened = (min_adv > 0) | np.isfinite(aum)
        if screened.any():
            # Point in time: the trailing ADV at the cut-off; a name without one is screened out
            # (only for the candidates that use ADV, whatever else shares the chunk).
            adv = np.nan_to_num(ctx.adv(int(ctx.cut[j])), nan=-np.inf)
            mask[screened] &= adv[None, :] >= min_adv[screened, None]
        if top_k.any():
            key = np.nan_to_num(ctx.prep.ff_mcap[ctx.cut[j]] * ctx.scores[j])
            for k in np.flatnonzero(top_k):
                held = np.flatnonzero(mask[k])
                if held.size > top_k[k]:
                    keep = held[np.argsort(-key[held], kind="stable")[: top_k[k]]]
                    mask[k] = False
                    mask[k, keep] = True
        hi = cap[:, None] * mask
        liquid = np.isfinite(aum)
        if liquid.any() and adv is not None:
            room = part[liquid, None] * np.maximum(adv, 0.0)[None, :] / aum[liquid, None]
            hi[liquid] = np.minimum(hi[liquid], room)
        counts = mask.sum(axis=1)
        room_total = hi.sum(axis=1)
        for k in np.flatnonzero(alive & (room_total < 1.0 - 1e-12)):
            if counts[k] * cap[k] < 1.0 - 1e-12:
                why = (
                    f"weight cap: {counts[k]} names listed x {cap[k]:.2%} cap = "
                    f"{counts[k] * cap[k]:.2%} < 100%"
                )
            else:
                why = (
                    f"liquidity cap: at AUM {aum[k]:.4g} HKD and {part[k]:.2%} of ADV the "
                    f"names can hold {room_total[k]:.2%} < 100%"
                )
            status[k] = f"infeasible at {ctx.review_label(j)}: {why}"
            alive[k] = False
        bench[:, j] = ctx.bench_w[j]
        for k, v in parents.items():
            listed_w = np.where(ctx.listed[j], v, 0.0)
            total = listed_w.sum()
            if alive[k] and total <= 0:
                status[k] = (
                    f"infeasible at {ctx.review_label(j)}: none of the parent_weights names "
                    "is listed"
                )
                alive[k] = False
            bench[k, j] = listed_w / total if total > 0 else 0.0
        rm = ctx.risk(j)
        for linear in (True, False):
            for budgeted in (False, True):
                for turnover in (False, True):
                    rows = np.flatnonzero(
                        alive
                        & ((te == 0) if linear else (te > 0))
                        & (np.isnan(budget) != budgeted)
                        & ((tw > 0) == turnover)
                    )
                    if rows.size == 0:
                        continue
                    # max s'w - te TE^2 - tw L1  <=>  min TE^2 - (s/te)'w + (tw/te) L1.
                    scale = np.ones(rows.size) if linear else te[rows]
                    s = ctx.scores[j][None, :] / scale[:, None]
                    args = (rm, s, hi[rows], bench[rows, j], budget[rows], linear)
                    prev = cost = None
                    if turnover:
                        prev = (
                            drifted(ctx, weights[rows, j - 1], j) if j else np.zeros((rows.size, n))
                        )
                        cost = tw[rows] / scale
                    if turnover and budgeted:
                        assert prev is not None and cost is not None
                        w, st, smallest = _turnover_budget_batch(ctx, *args, prev, cost)
                    elif budgeted:
                        w, st, smallest = _budget_batch(ctx, *args)
                    else:
                        w, st = _fast_batch(ctx, *args[:4], linear, prev, cost)
                        smallest = None
                    for i, k in enumerate(rows):
                        if st[i] == "infeasible" and smallest is not None:
                            status[k] = (
                                f"infeasible at {ctx.review_label(j)}: smallest feasible TE "
                                f"budget {100 * smallest[i]:.4g}% (budget {100 * budget[k]:.4g}%)"
                            )
                            alive[k] = False
                        elif st[i] not in SOLVED:
                            # "infeasible" (e.g. bounds that cannot hold) or "solver_error".
                            status[k] = f"{st[i]} at {ctx.review_label(j)}: optimiser"
                            alive[k] = False
                    ok = np.isin(np.asarray(st), SOLVED)
                    wk = np.clip(w[ok], 0.0, None)
                    wk = wk / wk.sum(axis=1, keepdims=True)
                    weights[rows[ok], j] = wk
                    ex_ante[rows[ok], j] = ex_ante_te(rm, wk - bench[rows[ok], j])
    return OptimisedRun(
        weights=[sp.csr_matrix(weights[k]) if alive[k] else None for k in range(b)],
        bench=[sp.csr_matrix(bench[k]) if alive[k] else None for k in range(b)],
        status=status,
        ex_ante=np.where(alive, ex_ante.mean(axis=1), np.nan),
    )


def _budget_batch(
    ctx: _Context,
    rm: RiskModel,
    scores: FloatArray,
    hi: FloatArray,
    bench: FloatArray,
    budget: FloatArray,
    linear: bool,
) -> tuple[FloatArray, list[str], FloatArray | None]:
    """``max s'w - TE^2`` (``max s'w`` when ``linear``) with ``TE <= budget``:
    :func:`~indexlab.optimise.ai_chain_model` with a TE budget, compiled (the fast path's exact
    budget search) and solved for the batch. Returns weights, statuses and the smallest
    feasible budget per row."""
    n = len(ctx.id_pos)
    # cap = 1 with the candidate's bounds folded into the mask parameter: w <= 1 * mask.
    model = ai_chain_model(
        range(n),
        bench[0],
        scores[0],
        rm,
        cap=1.0,
        te_weight=0.0 if linear else 1.0,
        te_budget=float(budget[0]),
    )
    sol = model.compile().solve_batch(
        {
            "mask": np.ascontiguousarray(hi),
            "scores": np.ascontiguousarray(scores),
            "bench": np.ascontiguousarray(bench),
            "te_budget": np.asarray(budget, dtype=np.float64),
        },
        threads=ctx.threads,
    )
    return sol.values["w"], sol.status, sol.smallest_te_budget


def _fast_batch(
    ctx: _Context,
    rm: RiskModel,
    scores: FloatArray,
    hi: FloatArray,
    bench: FloatArray,
    linear: bool,
    prev: FloatArray | None,
    turnover_weight: FloatArray | None,
) -> tuple[FloatArray, list[str]]:
    """``min TE^2 - s'w`` (``-s'w`` when ``linear``), plus each candidate's turnover cost
    against ``prev`` when given, on the fast path. Returns weights and statuses."""
    turnover: dict[str, Any] = {}
    if prev is not None and turnover_weight is not None:
        cost = np.repeat(np.asarray(turnover_weight, np.float64)[:, None], prev.shape[1], axis=1)
        turnover = {"prev": np.ascontiguousarray(prev), "turnover_cost": cost}
    sol = capped_qp_batch(
        np.ascontiguousarray(scores),
        bench=np.ascontiguousarray(bench),
        loadings=rm.loadings,
        factor_cov=rm.factor_cov,
        specific_var=rm.specific_var,
        gamma=0.0 if linear else 2.0,
        lo=0.0,
        hi=np.ascontiguousarray(hi),
        threads=ctx.threads,
        **turnover,
    )
    return sol.weights, sol.status


def _turnover_budget_batch(
    ctx: _Context,
    rm: RiskModel,
    scores: FloatArray,
    hi: FloatArray,
    bench: FloatArray,
    budget: FloatArray,
    linear: bool,
    prev: FloatArray,
    turnover_weight: FloatArray,
) -> tuple[FloatArray, list[str], FloatArray | None]:
    """One review of candidates with a turnover penalty and a TE budget: :func:`review_model`
    compiled and solved for the batch (their turnover weights are parameters; no
    smallest-budget report: an impossible budget is "infeasible")."""
    prob, _w = review_model(len(ctx.id_pos), rm, linear, budgeted=True, turnover=True)
    params: dict[str, Any] = {
        "scores": np.ascontiguousarray(scores),
        "bench": np.ascontiguousarray(bench),
        "hi": np.ascontiguousarray(hi),
        "prev": np.ascontiguousarray(prev),
        "turnover_weight": np.asarray(turnover_weight, dtype=np.float64),
        "te_budget": np.asarray(budget, dtype=np.float64),
    }
    sol = compile_problem(prob).solve_batch(params, threads=ctx.threads)
    return sol.values["w"], sol.status, None


def realised_te(
    ctx: _Context, reb: npt.NDArray[np.int64], weights: list[sp.csr_matrix], bench: list[Any]
) -> FloatArray:
    """Annualised ex-post TE of each schedule against its benchmark's schedule, both backtested
    over the search window with the same costs: ``std(r - b, ddof=1) * sqrt(252)`` of their
    daily returns (``backtest.metrics``' definition). NaN where the benchmark cannot be
    backtested (e.g. it holds a name past its last price)."""
    from indexlab.backtest import backtest_batch

    out = np.full(len(weights), np.nan)
    if not weights:
        return out
    try:
        got = backtest_batch(
            ctx.tr,
            reb,
            sp.vstack([*weights, *bench], format="csr"),
            cost_rate=ctx.rates,
            threads=ctx.threads,
        )
    except DataError:
        return out
    levels = got.levels
    k = len(weights)
    rets = levels[:, 1:] / levels[:, :-1] - 1.0
    diff = rets[:k] - rets[k:]
    if diff.shape[1] >= 2:
        out = np.std(diff, axis=1, ddof=1) * np.sqrt(YEAR)
    return np.asarray(out, dtype=np.float64)
