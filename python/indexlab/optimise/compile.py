"""Compile a DPP cvxpy problem once, then solve many parameter instances in Rust.

cvxpy's ``get_problem_data(cp.CLARABEL)`` exposes the parameter-affine conic program
(``data["param_prob"]``): sparse maps from ``theta`` (every parameter's values flattened in
Fortran order, then a constant 1) to the nonzeros of ``P``, ``[-A | b]`` and ``[q | offset]``.
:func:`compile` moves those maps into Rust once; :meth:`CompiledProblem.solve_batch` builds
``theta`` for each instance and solves all instances in parallel with Clarabel (the solver cvxpy
calls, same version and default settings), GIL released.

Presolve (``presolve=True``, the default): per instance, a canonical variable with both bound
rows ``x_j <= 0`` and ``-x_j <= 0`` (one nonzero coefficient, right-hand side exactly 0, in the
nonnegative cone) is fixed at zero and its column removed, with every zero-cone or
nonnegative-cone row left empty (and satisfied at zero). This is what ``w <= mask * cap`` with
``mask_j = 0`` and ``w >= 0`` produce, so a candidate's cost grows with its number of names, not
with the universe. If an emptied row would be violated the instance is solved unreduced, so the
status is the one cvxpy reports.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from cvxpy.reductions.cvx_attr2constr import CvxAttr2Constr

from indexlab._core import ConicProgram
from indexlab.errors import DataError

__all__ = ["BatchSolution", "CompiledProblem", "Solution", "compile"]

_SIGN_ATTRIBUTES = {
    "nonneg": (lambda v: v >= 0, "nonnegative"),
    "pos": (lambda v: v > 0, "positive"),
    "nonpos": (lambda v: v <= 0, "nonpositive"),
    "neg": (lambda v: v < 0, "negative"),
}


@dataclass
class BatchSolution:
    """Solutions of a batch of instances, in batch order.

    Attributes
    ----------
    values : dict[str, ndarray]
        Each cvxpy variable's value, shape ``(B, *var.shape)``; NaN where there is no solution.
    status : list[str]
        cvxpy status per instance (``"optimal"``, ``"infeasible"``, ``"unbounded"``,
        ``"optimal_inaccurate"``, ``"solver_error"``, ...).
    objective : ndarray
        What ``problem.value`` would be: ``+/-inf`` for infeasible and unbounded instances (as
        cvxpy reports them), NaN for solver errors.
    iterations, solve_seconds : ndarray
        Clarabel's iteration count and solve time per instance.
    n_variables : ndarray
        Canonical variables handed to Clarabel per instance (after presolve).
    """

    values: dict[str, npt.NDArray[np.float64]]
    status: list[str]
    objective: npt.NDArray[np.float64]
    iterations: npt.NDArray[np.int64]
    solve_seconds: npt.NDArray[np.float64]
    n_variables: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.status)


@dataclass
class Solution:
    """The solution of one instance (see :class:`BatchSolution` for the fields)."""

    values: dict[str, npt.NDArray[np.float64]]
    status: str
    objective: float
    iterations: int
    solve_seconds: float
    n_variables: int


@dataclass(frozen=True)
class _VarSlot:
    name: str
    shape: tuple[int, ...]
    offset: int
    size: int
    clip: str  # "nonneg"/"nonpos": cvxpy projects values of variables whose sign it lowered


@dataclass
class CompiledProblem:
    """A DPP cvxpy problem compiled for batch solves. Build with :func:`compile`."""

    problem: cp.Problem
    parameters: dict[str, cp.Parameter]
    _program: Any = field(repr=False)
    _param_cols: dict[str, int] = field(repr=False)
    _variables: list[_VarSlot] = field(repr=False)
    _maximize: bool = field(repr=False)
    _structure: Any = field(default=None, repr=False)
    # ConicProgram's constructor arguments: the Rust program does not pickle, so a copy
    # shipped to another process (indexlab.distributed) rebuilds it from these.
    _program_args: tuple[Any, ...] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        if self._program_args is None:
            raise TypeError("this CompiledProblem cannot be pickled: compile() it again")
        state = dict(self.__dict__)
        del state["_program"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._program = ConicProgram(*state["_program_args"])
        # cvxpy numbers expressions from a per-process counter that unpickling does not
        # advance: move it past this problem's ids, so that cvxpy objects created later in
        # this process (e.g. compile(problem, fast_path=False)) never reuse one of them.
        _advance_cvxpy_ids(self.problem)

    @property
    def uses_fast_path(self) -> bool:
        """Whether :meth:`solve_batch` hands instances to ``indexlab.optimise.fastpath``."""
        return self._structure is not None

    @property
    def n_variables(self) -> int:
        """Canonical variables before presolve."""
        return int(self._program.n)

    @property
    def n_constraints(self) -> int:
        """Canonical constraint rows before presolve."""
        return int(self._program.m)

    def theta(self, params: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        """Validate a batch of parameter values and flatten it to ``(B, n_theta)``.

        Raises
        ------
        DataError
            A parameter missing, unknown, wrongly shaped, not finite or of the wrong sign; the
            message names the parameter and the instance.
        """
        missing = [name for name in self.parameters if name not in params]
        if missing:
            raise DataError(
                f"missing parameter values: expected {sorted(self.parameters)}, missing {missing}"
            )
        extra = [name for name in params if name not in self.parameters]
        if extra:
            raise DataError(
                f"unknown parameters {extra}: this problem has {sorted(self.parameters)}"
            )
        batch: int | None = None
        arrays: dict[str, npt.NDArray[np.float64]] = {}
        for name, p in self.parameters.items():
            try:
                a = np.asarray(params[name], dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise DataError(f"parameter {name!r}: expected numbers, found {e}") from None
            if a.ndim != len(p.shape) + 1 or a.shape[1:] != p.shape:
                raise DataError(
                    f"parameter {name!r}: expected shape {_batch_shape(p.shape)} "
                    f"(a batch of {p.shape}), found {a.shape}"
                )
            if batch is None:
                batch = a.shape[0]
            elif a.shape[0] != batch:
                raise DataError(
                    f"parameter {name!r}: expected {batch} instances like the parameters "
                    f"before it, found {a.shape[0]}"
                )
            flat = a.reshape(a.shape[0], p.size)
            bad = ~np.isfinite(flat)
            if bad.any():
                i, k = np.argwhere(bad)[0]
                raise DataError(
                    f"parameter {name!r} instance {i}: expected finite values, found "
                    f"{flat[i, k]} at flat index {k}"
                )
            for attr, (ok, word) in _SIGN_ATTRIBUTES.items():
                if p.attributes.get(attr):
                    wrong = ~ok(flat)
                    if wrong.any():
                        i, k = np.argwhere(wrong)[0]
                        raise DataError(
                            f"parameter {name!r} instance {i}: expected {word} values "
                            f"(Parameter({attr}=True)), found {flat[i, k]} at flat index {k}"
                        )
            arrays[name] = a
        b = 0 if batch is None else batch
        theta = np.zeros((b, int(self._program.n_theta)))
        theta[:, -1] = 1.0
        for name, a in arrays.items():
            col = self._param_cols[name]
            # Fortran order per instance = C order of the instance with its axes reversed.
            f = a.transpose(0, *range(a.ndim - 1, 0, -1)).reshape(b, self.parameters[name].size)
            theta[:, col : col + f.shape[1]] = f
        return theta

    def solve_batch(
        self,
        params: Mapping[str, Any],
        threads: int | None = None,
        presolve: bool = True,
    ) -> BatchSolution:
        """Solve every instance of a batch of parameter values.

        Parameters
        ----------
        params : mapping of str to array
            Each parameter's values, shape ``(B, *param.shape)``, keyed by parameter name.
        threads : int, optional
            Worker threads (default: all cores). Results do not depend on it.
        presolve : bool
            Remove variables an instance fixes at zero before solving (see the module docs).

        Returns
        -------
        BatchSolution
            Infeasible or unbounded instances get their status; the batch goes on.

        Examples
        --------
        >>> import cvxpy as cp, numpy as np
        >>> from indexlab.optimise import compile
        >>> w, t = cp.Variable(2), cp.Parameter(2, name="t")
        >>> cp_ = compile(cp.Problem(cp.Minimize(cp.sum_squares(w - t)), [cp.sum(w) == 1]))
        >>> sol = cp_.solve_batch({"t": np.array([[0.2, 0.8], [1.0, 1.0]])})
        >>> np.round(sol.values[w.name()], 6).tolist()
        [[0.2, 0.8], [0.5, 0.5]]
        """
        theta = self.theta(params)
        if self._structure is not None:
            return self._solve_fast(params, theta.shape[0], threads)
        x, status, obj, iters, secs, nvar = self._program.solve_batch(theta, presolve, threads)
        status = list(status)
        objective = np.asarray(obj, dtype=np.float64)
        if self._maximize:
            objective = -objective
        for i, s in enumerate(status):
            if s.startswith("infeasible"):
                objective[i] = -np.inf if self._maximize else np.inf
            elif s.startswith("unbounded"):
                objective[i] = np.inf if self._maximize else -np.inf
        b = theta.shape[0]
        values: dict[str, npt.NDArray[np.float64]] = {}
        for slot in self._variables:
            v = x[:, slot.offset : slot.offset + slot.size]
            v = v.reshape(b, *slot.shape[::-1]).transpose(0, *range(len(slot.shape), 0, -1))
            if slot.clip == "nonneg":
                v = np.where(v < 0, 0.0, v)
            elif slot.clip == "nonpos":
                v = np.where(v > 0, 0.0, v)
            values[slot.name] = np.ascontiguousarray(v, dtype=np.float64)
        return BatchSolution(
            values=values,
            status=status,
            objective=objective,
            iterations=np.asarray(iters, dtype=np.int64),
            solve_seconds=np.asarray(secs, dtype=np.float64),
            n_variables=np.asarray(nvar, dtype=np.int64),
        )

    def _solve_fast(self, params: Mapping[str, Any], b: int, threads: int | None) -> BatchSolution:
        """The AI-chain structure on the pure-Rust fast path (values already validated)."""
        fast = _fastpath()
        if fast is None:  # pragma: no cover - checked at compile time
            raise DataError("indexlab.optimise.fastpath is not available")
        st = self._structure
        mask, scores, bench = (
            np.asarray(params[k], dtype=np.float64) for k in ("mask", "scores", "bench")
        )
        hi = st.cap * mask
        if st.name_cap is not None:
            hi = np.minimum(hi, st.name_cap)
        rm = st.risk_model
        start = time.perf_counter()
        fs = fast.capped_qp_batch(
            scores,
            bench=bench,
            loadings=rm.loadings,
            factor_cov=rm.factor_cov,
            specific_var=rm.specific_var,
            gamma=2.0 * st.te_weight,  # fast path: gamma/2 TE^2 - s'w, minimised
            lo=0.0,
            hi=hi,
            groups=st.groups,
            group_lo=st.group_lo,
            group_hi=st.group_hi,
            threads=threads,
        )
        seconds = (time.perf_counter() - start) / max(b, 1)
        status = [str(x) for x in fs.status]
        weights = np.asarray(fs.weights, dtype=np.float64)
        objective = -np.asarray(fs.objective, dtype=np.float64)
        for i, x in enumerate(status):
            if x != "optimal":
                objective[i] = -np.inf if x.startswith("infeasible") else np.nan
                weights[i] = np.nan
        return BatchSolution(
            values={
                st.weights: weights,
                # einsum, not BLAS: a row's bits must not depend on the batch it came in
                # (batch size and BLAS threads change gemm's blocking; see indexlab.distributed).
                st.factors: np.einsum("bn,fn->bf", weights - bench, rm.factor_root()),
            },
            status=status,
            objective=objective,
            iterations=np.asarray(fs.iterations, dtype=np.int64),
            solve_seconds=np.full(b, seconds),
            n_variables=(hi > 0).sum(axis=1).astype(np.int64),
        )

    def solve(self, presolve: bool = True, **params: Any) -> Solution:
        """Solve one instance; parameter values are passed by name with the parameter's shape.

        Examples
        --------
        >>> import cvxpy as cp
        >>> from indexlab.optimise import compile
        >>> x, t = cp.Variable(), cp.Parameter(name="t")
        >>> compile(cp.Problem(cp.Minimize(cp.square(x - t)))).solve(t=3.0).status
        'optimal'
        """
        batch = {k: np.asarray(v, dtype=np.float64)[None] for k, v in params.items()}
        s = self.solve_batch(batch, threads=1, presolve=presolve)
        return Solution(
            values={k: v[0] for k, v in s.values.items()},
            status=s.status[0],
            objective=float(s.objective[0]),
            iterations=int(s.iterations[0]),
            solve_seconds=float(s.solve_seconds[0]),
            n_variables=int(s.n_variables[0]),
        )

    def _canonical(self, instance_params: Mapping[str, Any]) -> dict[str, Any]:
        """The Rust-built conic program of one instance, unreduced (for golden tests).

        Returns ``P`` (upper triangle, scipy CSC), ``q``, ``A`` (CSC), ``b`` and ``offset`` in
        Clarabel's form ``min 1/2 x'Px + q'x + offset  s.t.  Ax + s = b, s in K``.
        """
        batch = {k: np.asarray(v, dtype=np.float64)[None] for k, v in instance_params.items()}
        theta = self.theta(batch)[0]
        d = self._program.canonical(theta)
        m, n = d["shape"]
        return {
            "P": sp.csc_array((d["P_nzval"], d["P_rowval"], d["P_colptr"]), shape=(n, n)),
            "q": d["q"],
            "A": sp.csc_array((d["A_nzval"], d["A_rowval"], d["A_colptr"]), shape=(m, n)),
            "b": d["b"],
            "offset": d["offset"],
        }


def _advance_cvxpy_ids(problem: cp.Problem) -> None:
    from cvxpy.lin_ops import lin_utils

    top, stack = 0, [problem.objective, *problem.constraints]
    while stack:
        node = stack.pop()
        top = max(top, int(getattr(node, "id", 0)))
        stack.extend(getattr(node, "args", ()))
    counter = lin_utils.ID_COUNTER
    counter.count = max(counter.count, top + 1)


def _batch_shape(shape: tuple[int, ...]) -> str:
    return "(B,)" if not shape else f"(B, {', '.join(map(str, shape))})"


def _first_non_dpp(expr: Any) -> Any:
    """The deepest sub-expression that is not DPP while all its arguments are."""
    for arg in getattr(expr, "args", []):
        if not arg.is_dcp(dpp=True):
            return _first_non_dpp(arg)
    return expr


def _csr(m: Any, n_theta: int, what: str) -> tuple[Any, Any, Any]:
    m = sp.csr_array(m)
    m.sum_duplicates()
    if m.shape[1] != n_theta:
        raise DataError(f"{what} map: expected {n_theta} columns, found {m.shape[1]}")
    return (
        m.indptr.astype(np.int64),
        m.indices.astype(np.int64),
        m.data.astype(np.float64),
    )


def _fastpath() -> Any:
    try:
        return importlib.import_module("indexlab.optimise.fastpath")
    except ImportError:
        return None


def compile(problem: cp.Problem, fast_path: bool | None = None) -> CompiledProblem:
    """Compile a DPP cvxpy problem once for fast batch solves.

    Parameters
    ----------
    problem : cvxpy.Problem
        A problem that follows the DPP rules (``problem.is_dcp(dpp=True)``), with uniquely named
        parameters. Supported cones: zero, nonnegative, second-order, exponential.

    fast_path : bool, optional
        Problems built by :func:`indexlab.optimise.ai_chain_model` without turnover can be
        solved by the pure-Rust fast path ``indexlab.optimise.fastpath`` (no conic solver).
        ``None`` (default): use it when that module is installed; ``True``: require it;
        ``False``: always use the generic Clarabel path.

    Returns
    -------
    CompiledProblem

    Raises
    ------
    DataError
        Not DPP (the message names the first offending sub-expression), an unsupported cone, a
        parameter or variable attribute cvxpy lowers to a different size, duplicate names.

    Examples
    --------
    >>> import cvxpy as cp
    >>> from indexlab.optimise import compile
    >>> w, s = cp.Variable(3), cp.Parameter(3, name="scores")
    >>> c = compile(cp.Problem(cp.Maximize(s @ w - cp.sum_squares(w)), [cp.sum(w) == 1]))
    >>> c.solve(scores=[1.0, 0.0, 0.0]).status
    'optimal'
    """
    if not isinstance(problem, cp.Problem):
        raise DataError(f"compile: expected a cvxpy.Problem, found {type(problem).__name__}")
    if not problem.is_dcp():
        raise DataError(
            "problem is not DCP (cvxpy cannot solve it as a convex program): check the "
            "objective's curvature and each constraint with .is_dcp()"
        )
    if not problem.is_dcp(dpp=True):  # type: ignore[call-arg]
        parts = [("objective", problem.objective)] + [
            (f"constraint {i}", c) for i, c in enumerate(problem.constraints)
        ]
        for where, part in parts:
            if not part.is_dcp(dpp=True):
                bad = _first_non_dpp(part)
                raise DataError(
                    f"problem is not DPP (needed to compile it once for all instances): in the "
                    f"{where}, {bad} breaks the DPP rules (e.g. a parameter multiplying an "
                    f"expression that contains a parameter). Introduce an auxiliary variable, "
                    f"e.g. d == w - bench, and use the parameter on d."
                )
        raise DataError("problem is not DPP")
    params = problem.parameters()
    names: dict[str, cp.Parameter] = {}
    for p in params:
        if p.name() in names:
            raise DataError(
                f"two parameters are named {p.name()!r}: give each a unique name= so that "
                "solve_batch can take values by name"
            )
        names[p.name()] = p
    if not names:
        raise DataError("problem has no parameters: nothing varies between instances")

    data, _chain, inverse = problem.get_problem_data(cp.CLARABEL)
    pp = data["param_prob"]
    dims = data["dims"]
    unsupported = {"psd": dims.psd, "p3d": dims.p3d, "pnd": getattr(dims, "pnd", [])}
    for cone, sizes in unsupported.items():
        if len(sizes) > 0:
            raise DataError(
                f"cone {cone} {list(sizes)} is not supported by the batch solver: expected "
                "only zero, nonnegative, second-order and exponential cones"
            )
    if pp.is_mixed_integer():
        raise DataError("integer or boolean variables are not supported by the batch solver")
    if data.get("lower_bounds") is not None or data.get("upper_bounds") is not None:
        raise DataError("variable bounds in the canonical data are not supported")

    n_theta = int(pp.total_param_size) + 1
    param_cols: dict[str, int] = {}
    for name, p in names.items():
        if p.id not in pp.param_id_to_col or pp.param_id_to_size[p.id] != p.size:
            raise DataError(
                f"parameter {name!r}: attributes {p.attributes} are lowered by cvxpy to a "
                "different parameter; use a plain (or sign-constrained) parameter"
            )
        param_cols[name] = int(pp.param_id_to_col[p.id])
    n = int(pp.x.size)

    # [-A | b] map and pattern.
    pp.reduced_A.cache()
    if pp.reduced_A.problem_data_index is None:
        raise DataError("problem has no constraints: add at least one")
    a_idx, a_ptr, a_shape = pp.reduced_A.problem_data_index
    a_pattern = (int(a_shape[0]), int(a_shape[1]), np.asarray(a_ptr, np.int64), a_idx)
    a_map = _csr(pp.reduced_A.reduced_mat, n_theta, "A")

    # P: keep the upper triangle (Clarabel's input), in the pattern's CSC order.
    if pp.P is not None:
        pp.reduced_P.cache()
    if pp.P is not None and pp.reduced_P.problem_data_index is not None:
        p_idx, p_ptr, _ = pp.reduced_P.problem_data_index
        p_idx = np.asarray(p_idx, np.int64)
        p_ptr = np.asarray(p_ptr, np.int64)
        cols = np.repeat(np.arange(n), np.diff(p_ptr))
        upper = p_idx <= cols
        p_colptr = np.concatenate([[0], np.cumsum(np.bincount(cols[upper], minlength=n))])
        p_pattern = (n, n, p_colptr.astype(np.int64), p_idx[upper])
        p_map = _csr(sp.csr_array(pp.reduced_P.reduced_mat)[np.flatnonzero(upper)], n_theta, "P")
    else:
        p_pattern = (n, n, np.zeros(n + 1, np.int64), np.zeros(0, np.int64))
        p_map = (np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0))
    q_map = _csr(pp.q, n_theta, "q")

    cones: list[tuple[str, int]] = []
    if dims.zero:
        cones.append(("zero", int(dims.zero)))
    if dims.nonneg:
        cones.append(("nonneg", int(dims.nonneg)))
    cones += [("soc", int(d)) for d in dims.soc]
    cones += [("exp", 3)] * int(dims.exp)

    program_args = (
        n_theta,
        p_pattern,
        p_map,
        (a_pattern[0], a_pattern[1], a_pattern[2], np.asarray(a_pattern[3], np.int64)),
        a_map,
        q_map,
        cones,
    )
    program = ConicProgram(*program_args)

    # Map the user's variables to canonical columns, through cvxpy's attribute lowering.
    lowered: dict[int, cp.Variable] = {}
    for red, inv in zip(_chain.reductions, inverse, strict=True):
        if isinstance(red, CvxAttr2Constr) and inv:
            lowered = {k: v for k, v in inv[0].items()}
    slots: list[_VarSlot] = []
    seen: set[str] = set()
    for v in problem.variables():
        vid, clip = v.id, ""
        attrs = {k: a for k, a in v.attributes.items() if a is not None and a is not False}
        if vid not in pp.var_id_to_col and vid in lowered and set(attrs) <= {"nonneg", "nonpos"}:
            vid, clip = lowered[vid].id, next(iter(attrs), "")
        if vid not in pp.var_id_to_col:
            raise DataError(
                f"variable {v.name()!r}: attributes {attrs} are lowered by cvxpy in a way the "
                "batch solver cannot map back; declare a plain Variable and add the constraint "
                "explicitly"
            )
        if v.name() in seen:
            raise DataError(f"two variables are named {v.name()!r}: give each a unique name=")
        seen.add(v.name())
        slots.append(
            _VarSlot(
                name=v.name(),
                shape=tuple(v.shape),
                offset=int(pp.var_id_to_col[vid]),
                size=int(v.size),
                clip=clip,
            )
        )
    if n == 0:
        raise DataError("problem has no variables")
    structure = getattr(problem, "_indexlab_structure", None) if fast_path is not False else None
    if structure is not None and _fastpath() is None:
        structure = None
    if fast_path and structure is None:
        raise DataError(
            "fast_path=True: expected a problem built by ai_chain_model without turnover and "
            "the indexlab.optimise.fastpath module; found "
            + ("no fast-path structure" if _fastpath() is not None else "no fastpath module")
        )
    return CompiledProblem(
        problem=problem,
        parameters=names,
        _program=program,
        _param_cols=param_cols,
        _variables=slots,
        _maximize=isinstance(problem.objective, cp.Maximize),
        _structure=structure,
        _program_args=program_args,
    )
