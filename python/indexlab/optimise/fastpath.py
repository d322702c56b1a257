"""Exact batch fast path for capped long-only weights with a factor tracking-error penalty.

Solves, for each instance ``i`` of a batch (no conic solver, pure Rust, in parallel)::

    minimise   gamma/2 (w - b)' (F Omega F' + diag d) (w - b) - s'w + sum_j c_j |w_j - prev_j|
    subject to sum(w) = 1,  lo <= w <= hi,  group_lo <= G w <= group_hi

where the turnover term (cost ``c_j`` per unit traded from ``prev``) is optional. Names with
``lo == hi`` (e.g. ``hi = mask * cap`` with the mask at zero) are fixed and removed before
solving, so the cost grows with the number of names an instance may hold. The reduced problem
is solved exactly (KKT residuals at rounding level, not an iteration tolerance): by safeguarded
primal-dual active-set iterations on the factor form of the KKT system when the Hessian is
positive definite on the held names, else (or if those do not settle) by an inertia-controlling
primal active-set method started from the greedy fill "highest score first, up to ``hi``", which
is already the optimum of the linear case (``gamma = 0``) without groups. Group rows the greedy
start violates get a phase 1 that also proves infeasibility. A turnover kink ``prev_j`` inside
``(lo_j, hi_j)`` is one more place a weight can be held at, exactly as a bound is (the module
docs of ``rust/indexlab-core/src/solve/fastpath.rs`` describe the method).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from indexlab import _core
from indexlab._checks import numeric_array
from indexlab.errors import DataError

__all__ = ["FastSolution", "capped_qp_batch"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FastSolution:
    """Results of :func:`capped_qp_batch`, in instance order.

    Attributes
    ----------
    weights
        ``(B, N)`` optimal weights; NaN rows for infeasible and solver-error instances.
    objective
        ``(B,)`` ``gamma/2 (w-b)'Sigma(w-b) - s'w + sum_j c_j |w_j - prev_j|`` at the optimum
        (the turnover term only when given; NaN when infeasible), comparable with the value of
        the same problem written in cvxpy.
    status
        ``"optimal"``, ``"infeasible"`` or ``"solver_error"`` per instance. ``"solver_error"``
        (the active-set method stopped without an optimum: a bug or an extremely
        ill-conditioned risk model) only flags that instance; the rest of the batch is solved.
    iterations
        Active-set iterations per instance.
    """

    weights: Array
    objective: Array
    status: list[str]
    iterations: npt.NDArray[np.uint32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights.tolist(),
            "objective": self.objective.tolist(),
            "status": list(self.status),
            "iterations": self.iterations.tolist(),
        }


def _float(values: Any, name: str) -> Array:
    """``values`` as float64; text, complex and object values are refused, not coerced."""
    return numeric_array(values, name, allow_bool=True)


def _rows(values: Any, name: str, batch: int, width: int, what: str) -> Array:
    """A scalar, a ``(width,)`` row shared by the batch or ``(batch, width)``, as 2-D."""
    arr = _float(values, name)
    if arr.ndim == 0:
        return np.full((1, width), float(arr))
    if arr.ndim == 1 and arr.shape[0] == width:
        return np.ascontiguousarray(arr[None, :])
    if arr.ndim == 2 and arr.shape == (batch, width):
        return np.ascontiguousarray(arr)
    raise DataError(
        f"{name} has shape {arr.shape}: expected a scalar, ({width},) shared by the batch, "
        f"or ({batch}, {width}) with one row per instance ({what})"
    )


def capped_qp_batch(
    scores: Any,
    bench: Any = None,
    loadings: Any = None,
    factor_cov: Any = None,
    specific_var: Any = None,
    gamma: float = 0.0,
    lo: Any = 0.0,
    hi: Any = 1.0,
    groups: Any = None,
    group_lo: Any = None,
    group_hi: Any = None,
    threads: int | None = None,
    *,
    prev: Any = None,
    turnover_cost: Any = None,
) -> FastSolution:
    """Solve a batch of capped long-only weight problems exactly, in parallel.

    Parameters
    ----------
    scores
        ``(B, N)`` linear rewards ``s`` (e.g. ``lambda * ai_score``), one row per instance.
    bench
        Benchmark weights ``b``, ``(N,)`` shared or ``(B, N)``; ``None`` means zero.
    loadings, factor_cov, specific_var
        The risk model shared by the batch: ``F`` ``(N, k)``, ``Omega`` ``(k, k)`` symmetric
        positive semidefinite, ``d`` ``(N,)`` >= 0. Required when ``gamma > 0``.
    gamma
        Risk aversion >= 0; ``0`` gives a linear objective.
    lo, hi
        Per-name bounds: scalar, ``(N,)`` or ``(B, N)``, finite, ``lo <= hi``. A membership mask
        is ``hi = mask * cap``.
    groups
        ``(m, N)`` group matrix ``G`` (e.g. 0/1 rows for an industry or AI layer).
    group_lo, group_hi
        Bounds on ``G w``: scalar, ``(m,)`` or ``(B, m)``; ``None`` means unbounded on that side.
    threads
        Worker threads (``None``: all cores), at most ``indexlab._core.max_threads()`` (4 x the
        available cores). Results do not depend on it.
    prev, turnover_cost
        The turnover term ``sum_j turnover_cost_j * |w_j - prev_j|``: previous weights (finite)
        and the cost per unit of turnover (finite, >= 0), each a scalar, ``(N,)`` shared or
        ``(B, N)``. Give both or neither (``None``: no turnover term).

    Returns
    -------
    FastSolution
        Weights, objectives (with the turnover term), status (``"optimal"``/``"infeasible"``/
        ``"solver_error"``) and iterations. Infeasible instances (e.g. 30 names x 3% cap <
        100%) and solver-error ones get NaN weights; they never stop the batch.

    Raises
    ------
    DataError
        NaN or infinite inputs, negative specific variances or turnover costs, ``lo > hi``, a
        shape mismatch, only one of ``prev`` and ``turnover_cost``; the message names the
        argument and the instance. Also a bad ``threads``, or outputs needing more memory than
        the limit (``INDEXLAB_MAX_ALLOC_BYTES``).

    Examples
    --------
    >>> import numpy as np
    >>> from indexlab.optimise import capped_qp_batch
    >>> sol = capped_qp_batch(np.array([[0.9, 0.5, 0.1, 0.3]]), hi=0.4)
    >>> sol.weights.round(3).tolist(), sol.status
    ([[0.4, 0.4, 0.0, 0.2]], ['optimal'])

    With a turnover cost of 0.3 per unit traded away from ``prev``, moving weight from the third
    name to the fourth (a score gain of 0.2 per unit) no longer pays: it costs 0.3 on each side.

    >>> sol = capped_qp_batch(
    ...     np.array([[0.9, 0.5, 0.1, 0.3]]),
    ...     hi=0.4,
    ...     prev=[0.4, 0.4, 0.1, 0.1],
    ...     turnover_cost=0.3,
    ... )
    >>> sol.weights.round(3).tolist(), round(float(sol.objective[0]), 3)
    ([[0.4, 0.4, 0.1, 0.1]], -0.6)
    """
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not gamma >= 0.0:
        raise DataError(f"gamma is {gamma!r}: expected a real number >= 0")
    if not np.isfinite(float(gamma)):
        raise DataError(f"gamma is {gamma!r}: expected a finite number >= 0")
    s = _float(scores, "scores")
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2:
        raise DataError(f"scores has shape {s.shape}: expected (B, N)")
    s = np.ascontiguousarray(s)
    batch, n = s.shape
    b = None if bench is None else _rows(bench, "bench", batch, n, "benchmark weights")
    risk: list[Array | None] = [None, None, None]
    if loadings is not None or factor_cov is not None or specific_var is not None:
        if loadings is None or factor_cov is None or specific_var is None:
            raise DataError("give all of loadings, factor_cov and specific_var, or none of them")
        f = np.ascontiguousarray(_float(loadings, "loadings"))
        if f.ndim != 2 or f.shape[0] != n:
            raise DataError(f"loadings has shape {f.shape}: expected ({n}, k) for {n} names")
        k = f.shape[1]
        om = np.ascontiguousarray(_float(factor_cov, "factor_cov"))
        if om.shape != (k, k):
            raise DataError(f"factor_cov has shape {om.shape}: expected ({k}, {k})")
        d = _float(specific_var, "specific_var")
        if d.shape != (n,):
            raise DataError(f"specific_var has shape {d.shape}: expected ({n},)")
        if np.all(np.isfinite(om)) and np.allclose(om, om.T, rtol=1e-12, atol=0.0):
            smallest = float(np.linalg.eigvalsh(om).min()) if k else 0.0
            if smallest < -1e-10 * max(1.0, float(np.abs(om).max())):
                raise DataError(
                    f"factor_cov is not positive semidefinite: smallest eigenvalue {smallest:.3g}"
                )
        risk = [f, om, np.ascontiguousarray(d[None, :])]
    elif gamma > 0:
        raise DataError(
            f"gamma is {gamma} but no risk model was given: pass loadings, factor_cov and "
            "specific_var, or gamma=0 for a linear objective"
        )
    g = glo = ghi = None
    if groups is not None:
        g = np.ascontiguousarray(_float(groups, "groups"))
        if g.ndim == 1:
            g = g[None, :]
        if g.ndim != 2 or g.shape[1] != n:
            raise DataError(f"groups has shape {g.shape}: expected (m, {n})")
        m = g.shape[0]
        glo = _rows(-np.inf if group_lo is None else group_lo, "group_lo", batch, m, "per group")
        ghi = _rows(np.inf if group_hi is None else group_hi, "group_hi", batch, m, "per group")
    elif group_lo is not None or group_hi is not None:
        raise DataError("group_lo/group_hi given without groups")
    args = (
        s,
        b,
        risk[0],
        risk[1],
        risk[2],
        float(gamma),
        _rows(lo, "lo", batch, n, "per-name lower bounds"),
        _rows(hi, "hi", batch, n, "per-name upper bounds"),
        g,
        glo,
        ghi,
    )
    if (prev is None) != (turnover_cost is None):
        raise DataError(
            "prev and turnover_cost go together: give both for a turnover term, or neither"
        )
    turnover: dict[str, Array] = {}
    if prev is not None:
        turnover = {
            "prev": _rows(prev, "prev", batch, n, "previous weights"),
            "turnover_cost": _rows(turnover_cost, "turnover_cost", batch, n, "costs per name"),
        }
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1
    ):
        raise DataError(f"threads is {threads!r}: expected a positive integer or None")
    # The core also bounds it by the machine (indexlab._core.max_threads()).
    nthreads = None if threads is None else int(threads)
    w, obj, status, iters = _core.capped_qp_batch(*args, threads=nthreads, **turnover)
    return FastSolution(weights=w, objective=obj, status=list(status), iterations=iters)
