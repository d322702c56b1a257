"""Recognise the index shape in cvxpy's canonical data, for the pure-Rust fast path.

:func:`indexlab.optimise.compile` decides the solve path by looking at the compiled problem, the
way cvxpy picks a solver from a problem's form (``cvxpy/reductions/solvers/solving_chain.py``):
whoever wrote the problem, if its canonical data (``get_problem_data(cp.CLARABEL)["param_prob"]``,
constraints ``A x + b`` in a product of cones, objective ``1/2 x'Px + q'x``) has the shape
below, :func:`recognise` returns an :class:`IndexStructure` that solves it with
:func:`indexlab.optimise.fastpath.capped_qp_batch`. Otherwise it returns ``None`` and the problem
goes to the generic Clarabel path.

The shape, with every matrix constant and only right-hand sides and the linear objective
depending on the parameters:

* **auxiliary variables**: a variable that appears in exactly one equality row (and, possibly,
  the tracking-error cone) is defined by it as an affine function of the weights, ``u = T w + t``
  (what ``f == G (w - bench)`` and cvxpy's own ``sum_squares`` auxiliaries produce);
* **weights** ``w``: every other variable. Exactly one other equality row, ``sum w = 1``;
* **objective**: after substituting the auxiliaries, ``1/2 w' (diag d + F Omega F') w + c'w``,
  where ``d`` comes from the diagonal of ``P`` and from auxiliaries of one weight each, and the
  low-rank part from auxiliaries of several weights (``k`` of them, ``k < n``);
* **bounds**: one-weight inequality rows (``w >= 0``, ``w <= cap * mask``, liquidity caps);
  every weight needs a lower bound (an upper one is implied by the budget);
* **linear rows**: inequality rows over several weights (sector bounds), at most
  :data:`MAX_GROUP_ROWS`;
* optionally **L1 turnover**: a variable ``t_j`` in exactly two inequality rows,
  ``t_j >= sigma_j (w_j - p_j)`` and ``t_j >= -sigma_j (w_j - p_j)`` (``p`` any affine map of
  the parameters, the same in both), with a nonnegative constant objective coefficient
  ``kappa_j``: what cvxpy writes for ``norm1(w - prev)`` or ``cost @ abs(w - prev)``. At an
  optimum ``t_j = sigma_j |w_j - p_j|``, so it is the term ``sigma_j kappa_j |w_j - p_j|``,
  which the fast path solves exactly (each weight's kink is one more bound its active-set
  method can hold);
* optionally **one second-order cone** ``||M w + m||_2 <= budget`` (a tracking-error budget,
  ``blocks.tracking_error(...) <= budget``) whose quadratic ``M'M`` is proportional to the
  objective's (or the objective is linear). It is met exactly: the penalised problem
  ``min obj + lambda/2 ||M w + m||^2`` has weights piecewise affine in ``tau = 1/(alpha +
  lambda)``, so the root of ``||M w + m|| = budget`` is found on the affine piece through each
  solve (two or three solves when the budget binds), kept inside a bracket, and confirmed by a
  solve at it (KKT of the constrained problem, with multiplier ``lambda``); the search runs in
  Rust (``indexlab_core::solve::shape``). When the budget is below the smallest tracking error
  the constraints allow, the instance is ``"infeasible"`` and
  :attr:`FastResult.smallest_budget` says that smallest budget.

Anything else (other cones, parametric matrices, other equality rows, a turnover cost that
is a parameter, two turnover terms on one weight) is left to the generic path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.optimize import nnls

from indexlab import _core

__all__ = ["MAX_GROUP_ROWS", "FastResult", "IndexStructure", "recognise"]

Array = npt.NDArray[np.float64]

#: Inequality rows over several weights the fast path takes (each is an active-set row).
MAX_GROUP_ROWS = 64
#: Relative tolerance of the tracking-error budget certificate.
BUDGET_RTOL = 1e-9
_MAX_BUDGET_STEPS = 80


@dataclass(frozen=True)
class FastResult:
    """Canonical solutions of a batch from :meth:`IndexStructure.solve`.

    Attributes
    ----------
    x : ndarray, shape (B, n)
        Canonical variables (NaN rows where there is no solution).
    status : list[str]
        ``"optimal"``, ``"optimal_inaccurate"`` (a tracking-error budget whose search did not
        settle: the feasible end of its last bracket), ``"infeasible"`` or ``"solver_error"``.
    objective : ndarray, shape (B,)
        ``1/2 x'Px + q'x + offset`` of the canonical (minimised) problem.
    iterations : ndarray, shape (B,)
        Active-set iterations, summed over the fast-path solves of the instance.
    seconds : float
        Wall time per instance.
    held : ndarray, shape (B,)
        Weights not fixed by their bounds (``lo < hi``), i.e. variables after presolve.
    smallest_budget : ndarray or None, shape (B,)
        With a tracking-error budget: the smallest budget the other constraints allow at each
        instance (NaN where the instance has no feasible weights at all).
    """

    x: Array
    status: list[str]
    objective: Array
    iterations: npt.NDArray[np.int64]
    seconds: float
    held: npt.NDArray[np.int64]
    smallest_budget: Array | None
    #: The canonical points at each of ``gathers``' indices, ``(B, len)`` each.
    gathered: list[Array] = field(default_factory=list)
    #: Clarabel's ``z`` (``(B, m)``) of the canonical program, computed when called (see
    #: :meth:`IndexStructure.canonical_duals`).
    z: Callable[[], Array] | None = None


def row_dot(a: Array, b: Array) -> Array:
    """Row-wise dot products summed in the same order whatever the batch size and memory
    layout (``einsum`` picks its loop from the strides, so a batch of one could differ from
    the same row in a larger batch in the last bit): results never depend on how a search
    splits its instances."""
    return np.asarray((np.ascontiguousarray(a) * np.ascontiguousarray(b)).sum(axis=1))


def _per_row(mat: Any, cols: Array) -> Array:
    """``(mat @ cols).T`` in C order: each instance's row contiguous, so that row sums (numpy
    sums contiguous rows pairwise) give the same bits whatever the batch an instance is in."""
    return np.ascontiguousarray((mat @ cols).T, dtype=np.float64)


def _csr_arg(mat: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Array, int]:
    """A sparse matrix as ``(indptr, indices, data, cols)`` for ``_core.IndexShape``."""
    m = sp.csr_array(mat)
    return (
        np.asarray(m.indptr, dtype=np.int64),
        np.asarray(m.indices, dtype=np.int64),
        np.asarray(m.data, dtype=np.float64),
        int(m.shape[1]),
    )


def _index(a: Any) -> npt.NDArray[np.int64]:
    return np.ascontiguousarray(a, dtype=np.int64)


def _dense(a: Any) -> Array:
    return np.ascontiguousarray(a, dtype=np.float64)


class _Theta:
    """A batch of flattened parameters ``(B, n_theta)`` and, computed when a sparse map first
    needs it, its transpose in C order (sparse @ dense is fast on contiguous columns)."""

    def __init__(self, theta: Array) -> None:
        self.theta = theta

    @cached_property
    def t(self) -> Array:
        return np.ascontiguousarray(self.theta.T)


@dataclass(frozen=True)
class _Budget:
    """``||M w + m(theta)|| <= budget(theta)`` and ``M'M = H1`` in factor form."""

    m_mat: sp.csr_array  # (r, W)
    m_map: sp.csr_array  # (r, n_theta)
    budget_map: sp.csr_array  # (1, n_theta)
    d1: Array
    f1: Array  # (W, k1)
    alpha: float  # objective Hessian = alpha * H1
    var: int  # cvxpy's variable t of ||x|| <= t <= budget (-1: none)
    var_map: sp.csr_array | None  # (1, n_theta): t's bound


@dataclass(frozen=True)
class _Turnover:
    """L1 turnover ``sum_j cost_j |w_j - prev_j(theta)|`` found as epigraph variables
    ``t_j >= sigma_j |w_j - prev_j|`` with a nonnegative constant objective coefficient
    ``kappa_j``: ``cost_j = sigma_j kappa_j``. Arrays are over the weights that have one."""

    weights: npt.NDArray[np.int64]  # positions among the weights
    cols: npt.NDArray[np.int64]  # canonical columns of the epigraph variables
    sigma: Array
    cost: Array  # (W,) over every weight, 0 where there is none
    prev_map: sp.csr_array  # (T, n_theta)
    up_rows: npt.NDArray[np.int64]  # rows t >= sigma (w - prev)
    down_rows: npt.NDArray[np.int64]  # rows t >= -sigma (w - prev)
    up_coef: npt.NDArray[np.float64]  # the epigraph variable's coefficient in each row
    down_coef: npt.NDArray[np.float64]

    def prev(self, th: _Theta) -> Array:
        """``(B, T)`` previous weights of the batch."""
        return _per_row(self.prev_map, th.t)


@dataclass(frozen=True)
class _SocRows:
    """The tracking-error cone's rows ``s = C x + d(theta)`` (``s_0 >= ||s_1..||``) and, when
    cvxpy bounds its head by a variable ``t <= budget``, that row: its dual is ``t_ratio`` times
    the cone's first dual entry (stationarity in ``t``, which is in nothing else)."""

    rows: npt.NDArray[np.int64]
    c_soc: sp.csr_array  # (r, n)
    d_map: sp.csr_array  # (r, n_theta)
    t_row: int  # -1: none
    t_ratio: float


@dataclass(frozen=True)
class _DualRows:
    """Where the index shape's rows sit in the canonical program ``C x + d`` in the cones
    (cvxpy's form; Clarabel's ``A = -C``), for duals by stationarity: ``P x + q = C' z``."""

    m: int
    def_rows: npt.NDArray[np.int64]  # the auxiliaries' defining equality rows
    c_def_u: sp.csc_array  # (U, U): C[def_rows, aux], square and invertible
    c_def_w: sp.csr_array  # (U, W)
    sum_row: int
    sum_coef: Array  # (W,): C[sum_row, weights]
    lo_rows: npt.NDArray[np.int64]  # per lower-bound entry, in lo_map's order
    lo_coef: Array  # > 0
    hi_rows: npt.NDArray[np.int64]  # per upper-bound entry, in hi_map's order
    hi_coef: Array  # < 0
    hi_var: npt.NDArray[np.int64]  # the weight of each upper-bound entry
    grp_rows: npt.NDArray[np.int64]  # (G, 2): lower and upper side rows (-1: none)
    grp_scale: Array  # (G,): C_row = +scale * pattern (lower side), -scale * pattern (upper)
    soc: _SocRows | None = None


@dataclass(frozen=True)
class IndexStructure:
    """The index shape found in a compiled problem (see the module docs); build with
    :func:`recognise`. Every array is a copy made at compile time."""

    n: int
    weights: str | None  # the variable whose entries are exactly the weights, if one is
    weight_cols: npt.NDArray[np.int64]  # canonical columns of the weights
    aux: npt.NDArray[np.int64]  # canonical columns of the auxiliaries
    aux_t: sp.csr_array  # (U, W): aux = aux_t @ w + aux_map @ theta
    aux_map: sp.csr_array  # (U, n_theta)
    p_full: sp.csr_array  # (n, n) symmetric
    q_map: sp.csr_array  # (n + 1, n_theta): q and the offset
    c_map: sp.csr_array  # (W, n_theta): linear objective in w
    d: Array  # (W,)
    f: Array  # (W, k)
    omega: Array  # (k, k)
    linear: bool
    lo_vars: npt.NDArray[np.int64]  # sorted by variable; every weight appears
    lo_starts: npt.NDArray[np.int64]
    lo_map: sp.csr_array  # (R_lo, n_theta), rows in lo_vars order
    hi_vars: npt.NDArray[np.int64]
    hi_starts: npt.NDArray[np.int64]
    hi_map: sp.csr_array | None
    groups: Array | None  # (m, W)
    glo_map: sp.csr_array | None  # (m, n_theta), NaN-free; -inf filled via glo_inf
    ghi_map: sp.csr_array | None
    glo_inf: npt.NDArray[np.bool_] | None
    ghi_inf: npt.NDArray[np.bool_] | None
    budget: _Budget | None
    dual_rows: _DualRows | None = None
    turnover: _Turnover | None = None

    #: The common ``c`` when every weight's upper bound is ``w_j <= c * p_j`` for one entry of a
    #: parameter (``w <= cap * mask``), else NaN.
    cap: float = float("nan")

    @property
    def has_budget(self) -> bool:
        """Whether the problem has a tracking-error budget (a second-order cone)."""
        return self.budget is not None

    def __getstate__(self) -> dict[str, Any]:
        # A search ships compiled problems to Dask workers: the Rust shape does not pickle,
        # and is rebuilt from these arrays on its first use there.
        state = dict(self.__dict__)
        state.pop("_shape", None)
        return state

    # -- per-instance data ----------------------------------------------------------------------

    def _rows(self, name: str, th: _Theta) -> Array:
        """``(B, R)`` values of the map ``name`` for the batch ``th``."""
        return _per_row(getattr(self, name), th.t)

    def _group_bounds(self, th: _Theta) -> tuple[Array | None, Array | None]:
        if self.groups is None or self.glo_map is None or self.ghi_map is None:
            return None, None
        glo = self._rows("glo_map", th)
        ghi = self._rows("ghi_map", th)
        glo[:, self.glo_inf] = -np.inf
        ghi[:, self.ghi_inf] = np.inf
        return glo, ghi

    def _previous(self, th: _Theta) -> Array | None:
        """``(B, W)`` previous weights of the turnover term (0 where a weight has none)."""
        tv = self.turnover
        if tv is None:
            return None
        prev = np.zeros((th.theta.shape[0], self.weight_cols.size))
        prev[:, tv.weights] = tv.prev(th)
        return prev

    @cached_property
    def _shape(self) -> _core.IndexShape:
        """The shape handed to Rust once (``indexlab._core.IndexShape``), which solves each
        instance from its parameters to its canonical point in one pass."""
        hi_weight = None
        if self.hi_map is not None:
            sizes = np.diff(np.r_[self.hi_starts, self.hi_map.shape[0]])
            hi_weight = np.repeat(self.hi_vars, sizes).astype(np.int64)
        groups = None
        if self.groups is not None and self.glo_map is not None and self.ghi_map is not None:
            assert self.glo_inf is not None and self.ghi_inf is not None
            groups = (
                _dense(self.groups),
                _csr_arg(self.glo_map),
                _csr_arg(self.ghi_map),
                np.asarray(self.glo_inf, dtype=bool),
                np.asarray(self.ghi_inf, dtype=bool),
            )
        turnover = None
        if self.turnover is not None:
            tv = self.turnover
            turnover = (
                _index(tv.weights),
                _index(tv.cols),
                _dense(tv.sigma),
                _dense(tv.cost),
                _csr_arg(tv.prev_map),
            )
        budget = None
        if self.budget is not None:
            bud = self.budget
            k1 = bud.f1.shape[1]
            budget = (
                _csr_arg(bud.m_mat),
                _csr_arg(bud.m_map),
                _csr_arg(bud.budget_map),
                (_dense(bud.f1), np.eye(k1), _dense(bud.d1)),
                float(bud.alpha),
                int(bud.var),
                None if bud.var_map is None else _csr_arg(bud.var_map),
            )
        return _core.IndexShape(
            n=self.n,
            n_theta=self.q_map.shape[1],
            weight_cols=_index(self.weight_cols),
            lo=_csr_arg(self.lo_map),
            lo_weight=_index(self.lo_vars),
            hi=None if self.hi_map is None else _csr_arg(self.hi_map),
            hi_weight=hi_weight,
            c=_csr_arg(self.c_map),
            risk=None if self.linear else (_dense(self.f), _dense(self.omega), _dense(self.d)),
            groups=groups,
            turnover=turnover,
            aux_cols=_index(self.aux),
            aux_from_weights=_csr_arg(self.aux_t),
            aux_from_theta=_csr_arg(self.aux_map),
            p=_csr_arg(self.p_full),
            q_map=_csr_arg(self.q_map),
            budget=budget,
        )

    def solve_theta(self, theta: Array, threads: int | None = None) -> FastResult:
        """Solve a batch given as one ``(B, n_theta)`` array (as built by
        :meth:`indexlab.optimise.CompiledProblem.theta`): its entries before the constant are
        one part."""
        th = np.ascontiguousarray(theta, dtype=np.float64)
        return self.solve([(0, th[:, :-1].copy())], th.shape[0], lambda: th, threads)

    def solve(
        self,
        parts: list[tuple[int, Array]],
        batch: int,
        theta: Callable[[], Array],
        threads: int | None = None,
        rules: list[int] | None = None,
        theta_out: Array | None = None,
        gathers: list[npt.NDArray[np.int64]] | None = None,
    ) -> FastResult:
        """Solve a batch of ``batch`` instances given each parameter's ``(B, size)`` values
        with its first column in ``theta`` (``parts``; as flattened by
        :meth:`indexlab.optimise.CompiledProblem.theta`); ``theta`` gives the whole
        ``(B, n_theta)`` array, for the duals if they are read.

        ``rules`` (one per part, cvxpy's sign attributes as bits: 1 ``nonneg``, 2 ``pos``,
        4 ``nonpos``, 8 ``neg``) has the workers check every value as they read it, finite
        and of its sign (a refused value raises ``DataError``); ``theta_out``
        (``(B, n_theta)``) receives the rows of ``theta`` they read; ``gathers`` (canonical
        indices) gives :attr:`FastResult.gathered`, written by the workers too."""
        start = time.perf_counter()
        x, objective, status, iters, held, smallest, gathered = self._shape.solve_batch(
            parts, batch, threads=threads, rules=rules, theta_out=theta_out, gathers=gathers
        )
        # Read-only: the duals, computed later, read this solution.
        x.flags.writeable = False
        duals = None
        if self.dual_rows is not None:

            def duals() -> Array:
                return self.canonical_duals(x, theta(), np.asarray(status) == "optimal")

        return FastResult(
            x=x,
            status=list(status),
            objective=np.asarray(objective, dtype=np.float64),
            iterations=np.asarray(iters, dtype=np.int64),
            seconds=(time.perf_counter() - start) / max(batch, 1),
            held=np.asarray(held, dtype=np.int64),
            smallest_budget=smallest,
            gathered=gathered,
            z=duals,
        )

    # -- duals --------------------------------------------------------------------------------

    def canonical_duals(self, x: Array, theta: Array, ok: npt.NDArray[np.bool_]) -> Array:
        """Clarabel's dual ``z`` (``(B, m)``) of the canonical program at the fast path's
        solution ``x``, from stationarity ``P x + q = C' z`` (cvxpy's ``C``; Clarabel's
        ``A = -C``), per instance:

        * a turnover term off its kink has one active row, whose dual its epigraph variable's
          column gives (``kappa / alpha``);
        * the tracking-error cone, when it binds, has the dual ``mu (1, -s_1../s_0)`` for one
          unknown ``mu >= 0`` (complementary to ``s`` on the cone's boundary);
        * the auxiliaries' defining rows follow from their columns (affine in ``mu``);
        * ``sum w = 1``, the active group rows, the active bound of each weight with one side
          active, ``mu`` and the two rows of each turnover term at its kink come from the
          weights' columns (and the kink variables' own columns): a nonnegative least-squares
          problem, exact at an exact optimum;
        * a weight with both bounds active (a name its mask removes) puts its residual on the
          side its sign allows, as the generic path's presolve does.

        Rows not active get 0. Where several duals are valid this is one of them. NaN rows for
        instances without a solution."""
        dr = self.dual_rows
        assert dr is not None
        z = np.full((x.shape[0], dr.m), np.nan)
        if not ok.any():
            return z
        batch = _DualBatch.of(self, x, _Theta(np.ascontiguousarray(theta, dtype=np.float64)))
        for i in np.flatnonzero(ok):
            z[i] = batch.instance(i) + 0.0
        return z


@dataclass
class _DualBatch:
    """The batch arrays :meth:`IndexStructure.canonical_duals` reads, and its per-instance
    solve."""

    st: IndexStructure
    g: Array  # (B, n): P x + q
    w: Array  # (B, W)
    lo_act: npt.NDArray[np.bool_]  # (B, lower-bound entries)
    hi_act: npt.NDArray[np.bool_]
    grp_act: npt.NDArray[np.bool_]  # (B, G, 2): lower, upper side active
    prev: Array | None  # (B, W)
    soc_s: Array | None  # (B, r): the cone's slack s = C x + d
    lu: Any  # splu of C[def_rows, aux], or None

    @classmethod
    def of(cls, st: IndexStructure, x: Array, th: _Theta) -> _DualBatch:
        dr = st.dual_rows
        assert dr is not None
        b, tol = x.shape[0], 1e-9
        xs = np.nan_to_num(x)
        q = st._rows("q_map", th)
        g = np.asarray(st.p_full @ xs.T).T + q[:, : st.n] if st.p_full.nnz else q[:, : st.n]
        w = xs[:, st.weight_cols]
        lo_v = st._rows("lo_map", th)
        lo_act = np.abs(w[:, st.lo_vars] - lo_v) <= tol * (1.0 + np.abs(lo_v))
        hi_act = np.zeros((b, 0), dtype=bool)
        if st.hi_map is not None:
            hi_v = st._rows("hi_map", th)
            hi_act = np.abs(w[:, dr.hi_var] - hi_v) <= tol * (1.0 + np.abs(hi_v))
        glo, ghi = st._group_bounds(th)
        grp_act = np.zeros((b, 0, 2), dtype=bool)
        if st.groups is not None and glo is not None and ghi is not None:
            gw = w @ st.groups.T
            grp_act = np.stack(
                [
                    (dr.grp_rows[:, 0] >= 0) & (np.abs(gw - glo) <= tol * (1.0 + np.abs(glo))),
                    (dr.grp_rows[:, 1] >= 0) & (np.abs(gw - ghi) <= tol * (1.0 + np.abs(ghi))),
                ],
                axis=2,
            )
        soc_s = None
        if dr.soc is not None:
            soc_s = _per_row(dr.soc.c_soc, xs.T) + _per_row(dr.soc.d_map, th.t)
        lu = spla.splu(sp.csc_array(dr.c_def_u)) if st.aux.size else None
        return cls(st, g, w, lo_act, hi_act, grp_act, st._previous(th), soc_s, lu)

    def _def_solve(self, rhs: Array) -> Array:
        """``z_def`` with ``C[def_rows, aux]' z_def = rhs``."""
        if self.lu is None:
            return np.zeros(0)
        return np.asarray(self.lu.solve(np.ascontiguousarray(rhs), trans="T"), dtype=np.float64)

    def _cone_direction(self, i: int) -> Array | None:
        """``(1, -s_1../s_0)`` when instance ``i``'s tracking-error cone binds, else None."""
        if self.soc_s is None:
            return None
        s = self.soc_s[i]
        head, tail = float(s[0]), s[1:]
        if head <= 0 or head - float(np.sqrt(tail @ tail)) > 1e-9 * (1.0 + head):
            return None
        return np.r_[1.0, -tail / head]

    def instance(self, i: int) -> Array:
        """Instance ``i``'s ``z`` (see :meth:`IndexStructure.canonical_duals`)."""
        st, dr = self.st, self.st.dual_rows
        assert dr is not None
        nw = st.weight_cols.size
        zi = np.zeros(dr.m)
        g = self.g[i]
        r_w = g[st.weight_cols].copy()
        # Turnover off its kink: one active row, its dual from the epigraph variable's column.
        tv = st.turnover
        kinks = np.zeros(0, np.int64)
        if tv is not None and self.prev is not None:
            p = self.prev[i, tv.weights]
            gap = self.w[i, tv.weights] - p
            kappa = tv.cost[tv.weights] / tv.sigma
            up = gap > 1e-9 * (1.0 + np.abs(p))
            down = gap < -1e-9 * (1.0 + np.abs(p))
            zi[tv.up_rows[up]] = kappa[up] / tv.up_coef[up]
            zi[tv.down_rows[down]] = kappa[down] / tv.down_coef[down]
            r_w[tv.weights[up]] += tv.sigma[up] * kappa[up]  # C[up, w] = -sigma alpha_up
            r_w[tv.weights[down]] -= tv.sigma[down] * kappa[down]
            kinks = np.flatnonzero(~(up | down))
        # The cone: mu times a known direction; the auxiliaries' duals are affine in mu.
        direction = self._cone_direction(i)
        z_def = self._def_solve(g[st.aux])
        r_w -= dr.c_def_w.T @ z_def
        mu_w = np.zeros(nw)
        z_def_mu = np.zeros(st.aux.size)
        if direction is not None:
            assert dr.soc is not None
            col = dr.soc.c_soc.T @ direction
            z_def_mu = self._def_solve(col[st.aux])
            mu_w = col[st.weight_cols] - dr.c_def_w.T @ z_def_mu
        # Active rows of the weights' equations: sum w = 1 (free sign) and the group sides.
        cols, rows = [dr.sum_coef], [dr.sum_row]
        for k in range(self.grp_act.shape[1]):
            assert st.groups is not None
            pattern = dr.grp_scale[k] * st.groups[k]
            for side, sign in ((0, 1.0), (1, -1.0)):
                if self.grp_act[i, k, side]:
                    cols.append(sign * pattern)
                    rows.append(int(dr.grp_rows[k, side]))
        mat = np.stack(cols, axis=1)
        at_lo = np.zeros(nw, dtype=bool)
        at_lo[st.lo_vars[self.lo_act[i]]] = True
        at_hi = np.zeros(nw, dtype=bool)
        at_hi[dr.hi_var[self.hi_act[i]]] = True
        one = at_lo ^ at_hi
        eq = np.flatnonzero(~(at_lo & at_hi))
        sided = np.flatnonzero(one)
        # Unknowns: [-sum, rows..., sided bounds, mu, kink up, kink down], all >= 0; equations:
        # the weights not removed, then each kink's epigraph variable (alpha_up z_up +
        # alpha_down z_down = kappa).
        n_rows, n_mu = mat.shape[1], int(direction is not None)
        width = 1 + n_rows + sided.size + n_mu + 2 * kinks.size
        big = np.zeros((eq.size + kinks.size, width))
        rhs = np.zeros(eq.size + kinks.size)
        big[: eq.size, 0] = -mat[eq, 0]
        big[: eq.size, 1 : 1 + n_rows] = mat[eq]
        at = np.searchsorted(eq, sided)
        big[at, 1 + n_rows + np.arange(sided.size)] = np.where(at_lo[sided], 1.0, -1.0)
        rhs[: eq.size] = r_w[eq]
        base = 1 + n_rows + sided.size
        if n_mu:
            big[: eq.size, base] = mu_w[eq]
        if kinks.size and tv is not None:
            kw = tv.weights[kinks]
            pos = np.searchsorted(eq, kw)
            inside = (pos < eq.size) & (eq[np.minimum(pos, eq.size - 1)] == kw)
            up_col = base + n_mu + np.arange(kinks.size)
            down_col = up_col + kinks.size
            big[pos[inside], up_col[inside]] = -tv.sigma[kinks][inside] * tv.up_coef[kinks][inside]
            big[pos[inside], down_col[inside]] = (
                tv.sigma[kinks][inside] * tv.down_coef[kinks][inside]
            )
            t_eq = eq.size + np.arange(kinks.size)
            big[t_eq, up_col] = tv.up_coef[kinks]
            big[t_eq, down_col] = tv.down_coef[kinks]
            rhs[t_eq] = tv.cost[kw] / tv.sigma[kinks]
        sol = nnls(big, rhs, maxiter=50 * width)[0] if big.size else np.zeros(width)
        y = sol[1 : 1 + n_rows].copy()
        y[0] -= sol[0]
        zi[rows] = y
        e = r_w - mat @ y
        if n_mu:
            assert dr.soc is not None and direction is not None
            mu = sol[base]
            zi[dr.soc.rows] = mu * direction
            if dr.soc.t_row >= 0:
                zi[dr.soc.t_row] = dr.soc.t_ratio * mu
            e -= mu * mu_w
            z_def = z_def - mu * z_def_mu
        zi[dr.def_rows] = z_def
        if kinks.size and tv is not None:
            z_up = sol[base + n_mu : base + n_mu + kinks.size]
            z_down = sol[base + n_mu + kinks.size :]
            zi[tv.up_rows[kinks]] = z_up
            zi[tv.down_rows[kinks]] = z_down
            kw = tv.weights[kinks]
            e[kw] -= tv.sigma[kinks] * (tv.down_coef[kinks] * z_down - tv.up_coef[kinks] * z_up)
        # The bound duals: the residual of each weight on its active side (one side, or the
        # side its sign allows when both are active).
        lo_pick = at_lo & (~at_hi | (e >= 0))
        hi_pick = at_hi & ~lo_pick
        ent = np.flatnonzero(self.lo_act[i])
        ent = ent[lo_pick[st.lo_vars[ent]]]
        _, first = np.unique(st.lo_vars[ent], return_index=True)
        ent = ent[first]
        zi[dr.lo_rows[ent]] = e[st.lo_vars[ent]] / dr.lo_coef[ent]
        ent = np.flatnonzero(self.hi_act[i])
        ent = ent[hi_pick[dr.hi_var[ent]]]
        _, first = np.unique(dr.hi_var[ent], return_index=True)
        ent = ent[first]
        zi[dr.hi_rows[ent]] = e[dr.hi_var[ent]] / dr.hi_coef[ent]
        return zi


# -- recognition ------------------------------------------------------------------------------


def _const_matrix(reduced: Any, n_theta: int) -> tuple[sp.csc_array, sp.csr_array] | None:
    """cvxpy's reduced tensor as (constant part, parametric rows) of its CSC pattern."""
    idx, ptr, shape = reduced.problem_data_index
    mat = sp.csr_array(reduced.reduced_mat)
    if mat.shape[1] != n_theta:
        return None
    values = np.asarray(mat[:, [n_theta - 1]].toarray()).ravel()
    csc = sp.csc_array(
        (values, np.asarray(idx, np.int64), np.asarray(ptr, np.int64)),
        shape=(int(shape[0]), int(shape[1])),
    )
    return csc, mat


def _entry_cols(ptr: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.repeat(np.arange(ptr.size - 1), np.diff(ptr))


def _only_constant(mat: sp.csr_array, entries: npt.NDArray[np.int64], n_theta: int) -> bool:
    if entries.size == 0:
        return True
    sub = sp.csr_array(mat[entries])
    return bool((sub.indices == n_theta - 1).all())


def _decompose(
    rows: sp.csr_array, weights: Array | None, nw: int
) -> tuple[Array, sp.csr_array, Array]:
    """``sum_r weight_r (rows_r w)^2`` as ``diag d`` (one-weight rows) plus ``F diag(weights)
    F'`` over the rows with several weights (returned as their CSR rows and weights)."""
    rows = sp.csr_array(rows)
    rows.eliminate_zeros()
    wts = np.ones(rows.shape[0]) if weights is None else weights
    per_row = np.diff(rows.indptr)
    d = np.zeros(nw)
    single = np.flatnonzero(per_row == 1)
    if single.size:
        cols = rows.indices[rows.indptr[single]]
        vals = rows.data[rows.indptr[single]]
        np.add.at(d, cols, wts[single] * vals**2)
    multi = np.flatnonzero(per_row > 1)
    return d, sp.csr_array(rows[multi]), wts[multi]


def recognise(pp: Any, dims: Any) -> IndexStructure | None:
    """The index shape of a compiled problem, or ``None`` (see the module docs).

    Parameters
    ----------
    pp
        ``get_problem_data(cp.CLARABEL)[0]["param_prob"]``.
    dims
        ``get_problem_data(cp.CLARABEL)[0]["dims"]``.

    Examples
    --------
    >>> import cvxpy as cp, numpy as np
    >>> w, s = cp.Variable(3), cp.Parameter(3, name="s")
    >>> prob = cp.Problem(cp.Maximize(s @ w - cp.sum_squares(w)), [cp.sum(w) == 1, w >= 0])
    >>> data = prob.get_problem_data(cp.CLARABEL)[0]
    >>> recognise(data["param_prob"], data["dims"]) is not None
    True
    """
    try:
        return _recognise(pp, dims)
    except (ValueError, IndexError, TypeError, RuntimeError, np.linalg.LinAlgError):
        return None


def _recognise(pp: Any, dims: Any) -> IndexStructure | None:
    if int(dims.exp) or len(dims.psd) or len(dims.p3d) or len(getattr(dims, "pnd", [])):
        return None
    if len(dims.soc) > 1 or pp.is_mixed_integer():
        return None
    n = int(pp.x.size)
    n_theta = int(pp.total_param_size) + 1
    pp.reduced_A.cache()
    if pp.reduced_A.problem_data_index is None:
        return None
    got = _const_matrix(pp.reduced_A, n_theta)
    if got is None:
        return None
    ab, a_mat = got
    _idx, a_ptr, _shape = pp.reduced_A.problem_data_index
    cols = _entry_cols(np.asarray(a_ptr, np.int64))
    if not _only_constant(a_mat, np.flatnonzero(cols < n), n_theta):
        return None  # a parameter multiplies a variable
    m_rows = ab.shape[0]
    a = sp.csr_array(ab[:, :n])
    a.eliminate_zeros()
    b_entries = np.flatnonzero(cols == n)
    b_rows = np.asarray(_idx, np.int64)[b_entries]
    sel = sp.csr_array(a_mat[b_entries]).tocoo()
    b_map = sp.csr_array(
        sp.coo_array((sel.data, (b_rows[sel.row], sel.col)), shape=(m_rows, n_theta)).tocsr()
    )
    # P: constant, symmetric.
    if pp.P is not None:
        pp.reduced_P.cache()
    if pp.P is not None and pp.reduced_P.problem_data_index is not None:
        gotp = _const_matrix(pp.reduced_P, n_theta)
        if gotp is None:
            return None
        p_csc, p_mat = gotp
        if not _only_constant(p_mat, np.arange(p_mat.shape[0]), n_theta):
            return None
        p_full = sp.csr_array(p_csc)
    else:
        p_full = sp.csr_array((n, n))
    p_full.eliminate_zeros()
    q_map = sp.csr_array(pp.q)
    if q_map.shape != (n + 1, n_theta):
        return None

    z, nl = int(dims.zero), int(dims.nonneg)
    soc = [int(s) for s in dims.soc]
    if z + nl + sum(soc) != m_rows:
        return None
    zero_rows = np.arange(z)
    ineq_rows = np.arange(z, z + nl)
    soc_rows = np.arange(z + nl, m_rows)
    # cvxpy writes ||x|| <= budget as a cone (t, x) and a row t <= budget: take t out.
    bound_var, bound_map = -1, None
    t_row, t_ratio = -1, 0.0
    if soc:
        r0 = z + nl
        rc0, rv0 = (
            a.indices[a.indptr[r0] : a.indptr[r0 + 1]],
            a.data[a.indptr[r0] : a.indptr[r0 + 1]],
        )
        if rc0.size == 1 and rv0[0] > 0:
            t = int(rc0[0])
            a_t = sp.csc_array(a[:, [t]])
            t_rows = a_t.indices[a_t.indices != r0]
            if (
                t_rows.size != 1
                or not z <= t_rows[0] < z + nl
                or np.diff(a.indptr)[t_rows[0]] != 1
                or a_t.data[a_t.indices == t_rows[0]][0] >= 0
                or sp.csr_array(p_full[[t]]).count_nonzero()
                or sp.csr_array(q_map[[t]]).count_nonzero()
            ):
                return None
            coef_t = float(a_t.data[a_t.indices == t_rows[0]][0])
            t_row, t_ratio = int(t_rows[0]), -float(rv0[0]) / coef_t
            bound_var = t
            bound_map = sp.csr_array(b_map[[int(t_rows[0])]] / -coef_t)
            ineq_rows = ineq_rows[ineq_rows != t_rows[0]]
    tv = _find_turnover(a, b_map, q_map, p_full, ineq_rows, n_theta, bound_var)
    if tv is not None:
        ineq_rows = ineq_rows[~np.isin(ineq_rows, np.r_[tv["up_rows"], tv["down_rows"]])]
    # Weights: the variables with inequality rows (every weight has a lower bound). The rest
    # are auxiliaries, defined by the equality rows that mention them: A_zU u + A_zW w + b = 0.
    in_ineq = np.zeros(n, bool)
    in_ineq[sp.csr_array(a[ineq_rows]).indices] = True
    weights = np.flatnonzero(in_ineq).astype(np.int64)
    not_t = np.ones(n, bool)
    if bound_var >= 0:
        not_t[bound_var] = False
    if tv is not None:
        not_t[tv["cols"]] = False
    aux = np.flatnonzero(~in_ineq & not_t).astype(np.int64)
    nw = weights.size
    if nw == 0:
        return None
    a_zero = sp.csr_array(a[zero_rows])
    a_zu = sp.csc_array(a_zero[:, aux])
    touches_aux = np.diff(sp.csr_array(a_zu).indptr) > 0
    def_rows = zero_rows[touches_aux]
    if def_rows.size != aux.size:
        return None
    if aux.size:
        lu = spla.splu(sp.csc_array(a_zu[touches_aux]))
        a_zw = a_zero[touches_aux][:, weights].toarray()
        t_dense = -lu.solve(a_zw) if nw else np.zeros((aux.size, 0))
        t_dense[np.abs(t_dense) <= 1e-14 * max(1.0, float(np.abs(t_dense).max()))] = 0.0
        aux_t = sp.csr_array(t_dense)
        b_def = b_map[def_rows].toarray()
        aux_map = sp.csr_array(-lu.solve(b_def))
        if not (np.isfinite(t_dense).all() and np.isfinite(aux_map.data).all()):
            return None
    else:
        aux_t = sp.csr_array((0, nw))
        aux_map = sp.csr_array((0, n_theta))
    # The budget row: every weight, equal coefficients, constant right-hand side, sum w = 1.
    rest = zero_rows[~touches_aux]
    if rest.size != 1:
        return None
    r = sum_row = int(rest[0])
    rc, rv = a.indices[a.indptr[r] : a.indptr[r + 1]], a.data[a.indptr[r] : a.indptr[r + 1]]
    if rc.size != nw or not np.allclose(rv, rv[0], rtol=1e-12, atol=0):
        return None
    brow = sp.csr_array(b_map[[r]])
    if brow.nnz and not (brow.indices == n_theta - 1).all():
        return None
    rhs = float(brow.toarray()[0, n_theta - 1])
    if abs(-rhs / rv[0] - 1.0) > 1e-12:
        return None
    is_aux = ~in_ineq & not_t
    pos_w = np.full(n, -1, np.int64)
    pos_w[weights] = np.arange(nw)

    # x = E w + e(theta): E = [I on weights; aux_t on aux].
    at = aux_t.tocoo()
    e_mat = sp.csr_array(
        sp.coo_array(
            (
                np.r_[np.ones(nw), at.data],
                (np.r_[weights, aux[at.row]], np.r_[np.arange(nw), at.col]),
            ),
            shape=(n, nw),
        ).tocsr()
    )
    am = aux_map.tocoo()
    e_map = sp.csr_array(sp.coo_array((am.data, (aux[am.row], am.col)), shape=(n, n_theta)).tocsr())
    c_map = sp.csr_array(e_mat.T @ q_map[:n] + e_mat.T @ (p_full @ e_map))
    # Objective Hessian: P_WW diagonal, no weight-aux cross terms, one-weight auxiliaries
    # diagonal; auxiliaries of several weights give the low-rank part.
    p_ww = sp.csr_array(p_full[weights][:, weights])
    if (p_ww - sp.diags_array(p_ww.diagonal())).count_nonzero():
        return None
    if aux.size and sp.csr_array(p_full[weights][:, aux]).count_nonzero():
        return None
    per_aux = np.diff(aux_t.indptr)
    single, multi = np.flatnonzero(per_aux <= 1), np.flatnonzero(per_aux > 1)
    p_uu = sp.csr_array(p_full[aux][:, aux]) if aux.size else sp.csr_array((0, 0))
    if single.size:
        p_su = sp.csr_array(p_uu[single])
        p_ss_diag = np.asarray(p_su[:, single].diagonal()) if single.size else np.zeros(0)
        if (p_su.count_nonzero() - np.count_nonzero(p_ss_diag)) != 0:
            return None
    else:
        p_ss_diag = np.zeros(0)
    d = np.asarray(p_ww.diagonal(), dtype=np.float64).copy()
    if single.size:
        d_aux, _none, _w = _decompose(sp.csr_array(aux_t[single]), p_ss_diag, nw)
        d += d_aux
    k = multi.size
    if k >= max(nw, 2):
        return None
    f = np.ascontiguousarray(sp.csr_array(aux_t[multi]).toarray().T) if k else np.zeros((nw, 0))
    omega = np.ascontiguousarray(p_uu[multi][:, multi].toarray()) if k else np.zeros((0, 0))
    if (d < -1e-14 * max(1.0, float(np.abs(d).max()))).any():
        return None
    d = np.maximum(d, 0.0)
    if k:
        omega = 0.5 * (omega + omega.T)
        ev = np.linalg.eigvalsh(omega)
        if ev.min() < -1e-10 * max(1.0, float(np.abs(ev).max())):
            return None
    linear = p_full.nnz == 0
    if k == 0 and not linear:
        f = np.zeros((nw, 1))
        omega = np.zeros((1, 1))

    # Inequalities (A_r w + b_r >= 0): bounds and group rows.
    lo_list: list[tuple[int, sp.csr_array, int, float]] = []  # weight, map, row, coefficient
    hi_list: list[tuple[int, sp.csr_array, int, float]] = []
    # [pattern, lower map or None, upper map or None, lower row, upper row, scale]
    grp: list[list[Any]] = []
    for r in ineq_rows.tolist():
        rc, rv = a.indices[a.indptr[r] : a.indptr[r + 1]], a.data[a.indptr[r] : a.indptr[r + 1]]
        brow = sp.csr_array(b_map[[int(r)]])
        if rc.size == 0 or is_aux[rc].any():
            return None
        if rc.size == 1:
            j, av = int(pos_w[rc[0]]), float(rv[0])
            if av > 0:
                lo_list.append((j, -brow / av, r, av))
            else:
                hi_list.append((j, brow / -av, r, av))
            continue
        # Normalise to max |coef| = 1, first coefficient positive: A_r w + b_r >= 0 is then
        # pattern.w >= -b/scale (side 1) or pattern.w <= b/scale (side 2).
        scale = float(np.abs(rv).max())
        sign = 1.0 if rv[np.argmin(rc)] > 0 else -1.0
        pattern = np.zeros(nw)
        pattern[pos_w[rc]] = sign * rv / scale
        side = 1 if sign > 0 else 2
        bound = -brow / scale if sign > 0 else brow / scale
        for entry in grp:
            if entry[side] is None and np.array_equal(entry[0], pattern):
                entry[side] = bound
                entry[side + 2] = r
                break
        else:
            entry = [pattern, None, None, -1, -1, scale]
            entry[side] = bound
            entry[side + 2] = r
            grp.append(entry)
    lo_vars = np.array([e[0] for e in lo_list], dtype=np.int64)
    if np.unique(lo_vars).size != nw:
        return None  # a weight without a lower bound
    order = np.argsort(lo_vars, kind="stable")
    lo_vars = lo_vars[order]
    lo_starts = np.flatnonzero(np.r_[True, lo_vars[1:] != lo_vars[:-1]]).astype(np.int64)
    lo_map = sp.csr_array(sp.vstack([lo_list[i][1] for i in order]))
    lo_rows = np.array([lo_list[i][2] for i in order], dtype=np.int64)
    lo_coef = np.array([lo_list[i][3] for i in order])
    hi_vars = np.array([e[0] for e in hi_list], dtype=np.int64)
    hi_map = None
    hi_starts = np.zeros(0, np.int64)
    hi_rows = np.zeros(0, np.int64)
    hi_coef = np.zeros(0)
    hi_var = np.zeros(0, np.int64)
    if hi_vars.size:
        order = np.argsort(hi_vars, kind="stable")
        hi_map = sp.csr_array(sp.vstack([hi_list[i][1] for i in order]))
        hi_rows = np.array([hi_list[i][2] for i in order], dtype=np.int64)
        hi_coef = np.array([hi_list[i][3] for i in order])
        hi_var = hi_vars[order]
        hi_vars = hi_vars[order]
        hi_starts = np.flatnonzero(np.r_[True, hi_vars[1:] != hi_vars[:-1]]).astype(np.int64)
        hi_vars = hi_vars[hi_starts]
    groups = glo_map = ghi_map = glo_inf = ghi_inf = None
    if grp:
        if len(grp) > MAX_GROUP_ROWS:
            return None
        entries = grp
        groups = np.ascontiguousarray(np.stack([e[0] for e in entries]))
        zero_row = sp.csr_array((1, n_theta))
        glo_inf = np.array([e[1] is None for e in entries])
        ghi_inf = np.array([e[2] is None for e in entries])
        glo_map = sp.csr_array(sp.vstack([zero_row if e[1] is None else e[1] for e in entries]))
        ghi_map = sp.csr_array(sp.vstack([zero_row if e[2] is None else e[2] for e in entries]))

    budget = None
    if soc:
        budget = _recognise_budget(
            a,
            b_map,
            soc_rows,
            e_mat,
            e_map,
            weights,
            n_theta,
            d,
            f,
            omega,
            linear,
            bound_var,
            bound_map,
        )
        if budget is None:
            return None
    dual_rows = _DualRows(
        m=m_rows,
        def_rows=def_rows.astype(np.int64),
        c_def_u=sp.csc_array(a[def_rows][:, aux]),
        c_def_w=sp.csr_array(a[def_rows][:, weights]),
        sum_row=sum_row,
        sum_coef=np.asarray(a[[sum_row]][:, weights].toarray()[0], dtype=np.float64),
        lo_rows=lo_rows,
        lo_coef=lo_coef,
        hi_rows=hi_rows,
        hi_coef=hi_coef,
        hi_var=hi_var,
        grp_rows=np.array([[e[3], e[4]] for e in grp], dtype=np.int64).reshape(-1, 2),
        grp_scale=np.array([e[5] for e in grp], dtype=np.float64),
        soc=None
        if not soc
        else _SocRows(
            rows=soc_rows.astype(np.int64),
            c_soc=sp.csr_array(a[soc_rows]),
            d_map=sp.csr_array(b_map[soc_rows]),
            t_row=t_row,
            t_ratio=t_ratio,
        ),
    )
    turnover = None
    if tv is not None:
        tw = pos_w[tv["wcols"]]
        if (tw < 0).any():
            return None
        cost = np.zeros(nw)
        cost[tw] = tv["sigma"] * tv["kappa"]
        turnover = _Turnover(
            weights=tw,
            cols=tv["cols"],
            sigma=tv["sigma"],
            cost=cost,
            prev_map=tv["prev_map"],
            up_rows=tv["up_rows"],
            down_rows=tv["down_rows"],
            up_coef=tv["up_coef"],
            down_coef=tv["down_coef"],
        )
    cap = float("nan")
    if hi_map is not None and hi_vars.size == nw and hi_starts.size == hi_map.shape[0]:
        per_row = np.diff(hi_map.indptr)
        if (per_row == 1).all() and (hi_map.indices != n_theta - 1).all():
            if np.allclose(hi_map.data, hi_map.data[0], rtol=1e-12, atol=0):
                cap = float(hi_map.data[0])
    name = None
    for v in getattr(pp, "variables", []):
        col = int(pp.var_id_to_col.get(v.id, -1))
        if int(v.size) == nw and np.array_equal(weights, np.arange(col, col + nw)):
            name = str(v.name())
    return IndexStructure(
        n=n,
        weights=name,
        weight_cols=weights,
        aux=aux,
        aux_t=aux_t,
        aux_map=aux_map,
        p_full=p_full,
        q_map=q_map,
        c_map=c_map,
        d=d,
        f=f,
        omega=omega,
        linear=linear,
        lo_vars=lo_vars,
        lo_starts=lo_starts,
        lo_map=lo_map,
        hi_vars=hi_vars,
        hi_starts=hi_starts,
        hi_map=hi_map,
        groups=groups,
        glo_map=glo_map,
        ghi_map=ghi_map,
        glo_inf=glo_inf,
        ghi_inf=ghi_inf,
        budget=budget,
        dual_rows=dual_rows,
        turnover=turnover,
        cap=cap,
    )


def _find_turnover(
    a: sp.csr_array,
    b_map: sp.csr_array,
    q_map: sp.csr_array,
    p_full: sp.csr_array,
    ineq_rows: npt.NDArray[np.int64],
    n_theta: int,
    exclude: int,
) -> dict[str, Any] | None:
    """The epigraph variables of an L1 turnover term, as cvxpy writes ``norm1(w - prev)`` or
    ``cost @ abs(w - prev)``: a variable ``t`` in exactly two inequality rows and nothing else,
    ``t >= sigma (w - p)`` and ``t >= -sigma (w - p)`` over one weight ``w`` (``p`` the same
    affine map of the parameters in both), with a nonnegative constant objective coefficient
    and no quadratic term. ``None`` when there is none."""
    n = a.shape[1]
    a_csc = sp.csc_array(a)
    col_nnz = np.diff(a_csc.indptr)
    row_len = np.diff(a.indptr)
    is_ineq = np.zeros(a.shape[0], bool)
    is_ineq[ineq_rows] = True
    in_p = np.diff(sp.csr_array(p_full).indptr) > 0
    q_rows = sp.csr_array(q_map[:n])
    q_const = q_rows[:, [n_theta - 1]].toarray()[:, 0]
    q_param = np.diff(q_rows.indptr) > (q_const != 0)
    found: list[tuple[int, int, int, int, float, float, float]] = []
    # kappa = 0 (a name whose turnover costs nothing) leaves t free above |w - p|; t = |w - p|
    # is then one optimum, and the term vanishes.
    for t in np.flatnonzero((col_nnz == 2) & ~in_p & ~q_param & (q_const >= 0)):
        if t == exclude:
            continue
        rows = a_csc.indices[a_csc.indptr[t] : a_csc.indptr[t + 1]]
        alphas = a_csc.data[a_csc.indptr[t] : a_csc.indptr[t + 1]]
        if not (is_ineq[rows].all() and (row_len[rows] == 2).all() and (alphas > 0).all()):
            continue
        others = []
        for r in rows:
            rc = a.indices[a.indptr[r] : a.indptr[r + 1]]
            rv = a.data[a.indptr[r] : a.indptr[r + 1]]
            others.append((int(rc[rc != t][0]), float(rv[rc != t][0])))
        (w1, beta1), (w2, beta2) = others
        slope1, slope2 = -beta1 / alphas[0], -beta2 / alphas[1]
        if w1 != w2 or slope1 == 0 or abs(slope1 + slope2) > 1e-12 * abs(slope1):
            continue
        up = 0 if slope1 > 0 else 1
        found.append(
            (
                int(t),
                w1,
                int(rows[up]),
                int(rows[1 - up]),
                float(alphas[up]),
                float(alphas[1 - up]),
                abs(slope1),
            )
        )
    if not found:
        return None
    cols = np.array([f[0] for f in found], np.int64)
    wcols = np.array([f[1] for f in found], np.int64)
    if np.unique(wcols).size != wcols.size or np.isin(wcols, cols).any():
        return None  # two turnover terms on one weight, or a term on another's variable
    up_rows = np.array([f[2] for f in found], np.int64)
    down_rows = np.array([f[3] for f in found], np.int64)
    up_coef = np.array([f[4] for f in found])
    down_coef = np.array([f[5] for f in found])
    sigma = np.array([f[6] for f in found])
    # sigma p = b_up / alpha_up = -b_down / alpha_down: the same previous weights in both rows.
    up_map = sp.csr_array(sp.diags_array(1.0 / (up_coef * sigma)) @ b_map[up_rows])
    down_map = sp.csr_array(sp.diags_array(-1.0 / (down_coef * sigma)) @ b_map[down_rows])
    gap = abs(up_map - down_map)
    if gap.nnz and gap.max() > 1e-12 * max(1.0, float(abs(up_map).max())):
        return None
    return {
        "cols": cols,
        "wcols": wcols,
        "up_rows": up_rows,
        "down_rows": down_rows,
        "up_coef": up_coef,
        "down_coef": down_coef,
        "sigma": sigma,
        "kappa": q_const[cols],
        "prev_map": up_map,
    }


def _recognise_budget(
    a: sp.csr_array,
    b_map: sp.csr_array,
    rows: npt.NDArray[np.int64],
    e_mat: sp.csr_array,
    e_map: sp.csr_array,
    weights: npt.NDArray[np.int64],
    n_theta: int,
    d0: Array,
    f0: Array,
    omega0: Array,
    linear: bool,
    bound_var: int,
    bound_map: sp.csr_array | None,
) -> _Budget | None:
    """The second-order cone ``(budget, M w + m)``; its quadratic must be proportional to the
    objective's (or the objective linear)."""
    a_soc = sp.csr_array(a[rows])
    if bound_var >= 0 and bound_map is not None:
        # row 0 is c t + b0 with t <= bound: the budget is c bound + b0
        if sp.csr_array(a_soc[1:, [bound_var]]).count_nonzero():
            return None
        c_t = float(a_soc[[0]].toarray()[0, bound_var])
        budget_map = sp.csr_array(c_t * bound_map + b_map[rows[[0]]])
        a_soc = sp.csr_array(a_soc[1:])
        a_soc = sp.csr_array(sp.vstack([sp.csr_array((1, a_soc.shape[1])), a_soc]))
    elif a_soc[[0]].count_nonzero():
        return None  # the cone's bound depends on a variable: not a budget
    else:
        budget_map = sp.csr_array(b_map[rows[[0]]])
    nw = weights.size
    m_mat = sp.csr_array(a_soc[1:] @ e_mat)
    m_mat.eliminate_zeros()
    m_map = sp.csr_array(a_soc[1:] @ e_map + b_map[rows[1:]])
    d1, multi_rows, _w = _decompose(m_mat, None, nw)
    k1 = multi_rows.shape[0]
    if k1 >= max(nw, 2):
        return None
    f1 = np.ascontiguousarray(multi_rows.toarray().T) if k1 else np.zeros((nw, 1))
    h1 = np.diag(d1) + f1 @ f1.T
    if linear:
        alpha = 0.0
    else:
        h0 = np.diag(d0) + f0 @ omega0 @ f0.T
        denom = float(np.sum(h1 * h1))
        if denom == 0.0:
            return None
        alpha = float(np.sum(h0 * h1)) / denom
        if alpha <= 0 or np.abs(h0 - alpha * h1).max() > 1e-10 * max(np.abs(h0).max(), 1e-300):
            return None
    return _Budget(
        m_mat=m_mat,
        m_map=m_map,
        budget_map=budget_map,
        d1=d1,
        f1=f1,
        alpha=alpha,
        var=bound_var,
        var_map=bound_map,
    )
