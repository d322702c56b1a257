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
status is the one cvxpy reports. An instance left with only zero and nonnegative cones and a
positive definite ``P`` (a factor tracking error over the held names), at most 120 variables,
is solved exactly by a dense dual active-set method and checked as a KKT point; Clarabel solves
the others, and every infeasible or unbounded one.

Cones: everything cvxpy's Clarabel interface sends (zero, nonnegative, second-order, PSD as the
scaled upper triangle, exponential, 3-d and n-d power). The PSD cones (``X >> 0``, ``PSD=True``
variables, ``lambda_max`` and other atoms cvxpy canonicalises to them) use Clarabel's ``sdp``
feature, whose BLAS and LAPACK calls the extension forwards to SciPy's routines
(``rust/indexlab-py/src/scipy_blas.rs``). Values are mapped back to the user's variables as
cvxpy's ``CvxAttr2Constr`` does (``symmetric``/``PSD``/``NSD``, also batched, from the upper
triangle, ``diag``, ``sparsity``, and the projection of sign and ``bounds`` attributes); integer,
boolean and complex variables are refused. Dual values are mapped from Clarabel's ``z`` through
cvxpy's own inverse chain (probed once at compile time; each dual entry is a signed, scaled entry
of ``z``), so ``BatchSolution.duals[constraint]`` is what ``constraint.dual_value`` would be after
a cvxpy solve. With presolve, the duals of rows an instance removes come from stationarity of
the full program; where a fixed name's bounds are both active, or the exact method's rows tight
at the optimum are dependent (a cap written twice), they are one valid choice, not necessarily
the one Clarabel finds on the full problem.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import cvxpy as cp
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from cvxpy.constraints.constraint import Constraint
from cvxpy.reductions.cvx_attr2constr import CvxAttr2Constr

from indexlab._core import ConicProgram
from indexlab.errors import DataError
from indexlab.optimise.snapshots import SnapshotPool
from indexlab.optimise.structure import recognise

__all__ = ["BatchSolution", "CompiledProblem", "Duals", "Solution", "compile"]

# Each sign attribute: the test of a value, its word, the extreme that decides it, and its bit
# in ``_core.IndexShape.solve_batch``'s ``rules`` (the fast path's workers check it).
_SIGN_ATTRIBUTES = {
    "nonneg": (lambda v: v >= 0, "nonnegative", np.min, 1),
    "pos": (lambda v: v > 0, "positive", np.min, 2),
    "nonpos": (lambda v: v <= 0, "nonpositive", np.max, 4),
    "neg": (lambda v: v < 0, "negative", np.max, 8),
}


def _all_finite(flat: npt.NDArray[np.float64]) -> bool:
    """Whether every value is finite: a sum (one pass, no temporary) is finite when they are,
    unless large values overflow it, when the elementwise check decides."""
    return bool(np.isfinite(flat.sum())) or bool(np.isfinite(flat).all())


def _all_signed(flat: npt.NDArray[np.float64], ok: Any, extreme: Any) -> bool:
    """Whether every (finite) value has the sign ``ok`` asks for: checked on the one extreme
    that decides it (the smallest value for a lower bound, the largest for an upper one)."""
    return flat.size == 0 or bool(ok(extreme(flat)))


def _check_values(name: str, p: Any, flat: npt.NDArray[np.float64]) -> None:
    """Raise ``DataError`` naming the first instance and flat index of parameter ``p``'s
    values (``(B, size)``) that is not finite or breaks its sign attribute."""
    bad = np.zeros(0, dtype=bool) if _all_finite(flat) else ~np.isfinite(flat)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise DataError(
            f"parameter {name!r} instance {i}: expected finite values, found "
            f"{flat[i, k]} at flat index {k}"
        )
    for attr, (ok, word, extreme, _bit) in _SIGN_ATTRIBUTES.items():
        if p.attributes.get(attr) and not _all_signed(flat, ok, extreme):
            wrong = ~ok(flat)
            if wrong.any():
                i, k = np.argwhere(wrong)[0]
                raise DataError(
                    f"parameter {name!r} instance {i}: expected {word} values "
                    f"(Parameter({attr}=True)), found {flat[i, k]} at flat index {k}"
                )


def _sign_bits(p: Any) -> int:
    """Parameter ``p``'s sign attributes as the bits the fast path's workers check."""
    return sum(bit for attr, (*_, bit) in _SIGN_ATTRIBUTES.items() if p.attributes.get(attr))


class Duals(Mapping[Any, Any]):
    """Dual values per constraint, keyed by the cvxpy constraint object (or its ``id``).

    Each value has a leading batch axis and otherwise the shape of ``constraint.dual_value``
    after a cvxpy solve: an array ``(B, *shape)``, or a list of such arrays for constraints
    with several dual variables (``SOC``: ``[t, X]``, ``ExpCone``, ``PowCone3D``). For an
    infeasible or unbounded instance, Clarabel's certificate (as cvxpy reports it); NaN where an
    instance has neither a solution nor a certificate. On the fast path they are computed on
    first use, from stationarity at the fast path's exact solution
    (``IndexStructure.canonical_duals``), tracking-error budget and turnover included.
    """

    def __init__(
        self,
        values: Mapping[int, Any] | None = None,
        load: Callable[[], Mapping[int, Any]] | None = None,
    ) -> None:
        self._given: dict[int, Any] = dict(values or {})
        self._load = load

    @property
    def _values(self) -> dict[int, Any]:
        if self._load is not None:
            self._given, self._load = dict(self._load()), None
        return self._given

    def __getstate__(self) -> dict[str, Any]:
        # The loader is a closure over the batch; a copy carries the values themselves.
        return {"_given": self._values, "_load": None}

    @staticmethod
    def _key(key: Any) -> int:
        return key.id if isinstance(key, Constraint) else int(key)

    def __getitem__(self, key: Any) -> Any:
        cid = self._key(key)
        if cid not in self._values:
            raise KeyError(f"no dual values for constraint {key}: not a constraint of this problem")
        return self._values[cid]

    def __contains__(self, key: object) -> bool:
        try:
            return self._key(key) in self._values
        except (TypeError, ValueError):
            return False

    def __iter__(self) -> Iterator[int]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def instance(self, i: int) -> Duals:
        """The duals of instance ``i`` (no batch axis); computed when first read if this
        batch's are."""
        if self._load is not None:
            return Duals(load=lambda: Duals._pick(self._values, i))
        return Duals(Duals._pick(self._values, i))

    @staticmethod
    def _pick(values: Mapping[int, Any], i: int) -> dict[int, Any]:
        return {k: [a[i] for a in v] if isinstance(v, list) else v[i] for k, v in values.items()}


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
        The solver's iteration count (Clarabel's iterations, or the exact QP method's steps)
        and solve time per instance.
    n_variables : ndarray
        Canonical variables handed to the solver per instance (after presolve).
    duals : Duals
        Dual values per constraint (``duals[constraint]``, shaped like ``constraint.dual_value``
        with a leading batch axis); see :class:`Duals`.
    """

    values: dict[str, npt.NDArray[np.float64]]
    status: list[str]
    objective: npt.NDArray[np.float64]
    iterations: npt.NDArray[np.int64]
    solve_seconds: npt.NDArray[np.float64]
    n_variables: npt.NDArray[np.int64]
    duals: Duals = field(default_factory=Duals)
    #: Fast path with a tracking-error budget: the smallest budget feasible per instance.
    smallest_te_budget: npt.NDArray[np.float64] | None = None

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
    duals: Duals = field(default_factory=Duals)


@dataclass(frozen=True)
class _VarSlot:
    """Where a user variable lives in the canonical ``x`` and how cvxpy maps it back
    (``recover_value_for_leaf`` in ``cvxpy/reductions/cvx_attr2constr.py``)."""

    name: str
    shape: tuple[int, ...]
    offset: int
    size: int  # canonical entries (the lowered variable's size)
    # "plain", "symmetric" (upper triangle, row-major), "diag", "sparsity", "zero" (nonneg and
    # nonpos), "nonneg"/"nonpos" (clip), "bounds" (clip to lo/hi)
    kind: str = "plain"
    extra: Any = None  # sparsity: index tuple; bounds: (lo, hi)

    def c_order_index(self) -> npt.NDArray[np.int64]:
        """The canonical index of each entry of a plain variable's value in C order (cvxpy
        stores it in Fortran order from its offset)."""
        fortran = np.arange(self.size, dtype=np.int64).reshape(self.shape[::-1]).transpose()
        return self.offset + fortran.ravel()

    def values(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        b = x.shape[0]
        v = x[:, self.offset : self.offset + self.size]
        if self.kind == "symmetric":
            # cvxpy keeps each matrix's upper triangle, the batch axes (if any) in Fortran order.
            n = self.shape[-1]
            tri = (*self.shape[:-2], n * (n + 1) // 2)
            v = v.reshape(b, *tri[::-1]).transpose(0, *range(len(tri), 0, -1))
            iu = np.triu_indices(n)
            out = np.zeros((b, *self.shape))
            out[..., iu[0], iu[1]] = v
            out[..., iu[1], iu[0]] = v
            return out
        if self.kind == "diag":
            n = self.shape[0]
            out = np.zeros((b, n, n))
            out[:, np.arange(n), np.arange(n)] = v
            return out
        if self.kind == "sparsity":
            out = np.zeros((b, *self.shape))
            out[(slice(None), *self.extra)] = v
            return out
        # Fortran order per instance = C order of the instance with its axes reversed.
        v = v.reshape(b, *self.shape[::-1]).transpose(0, *range(len(self.shape), 0, -1))
        if self.kind == "zero":
            return np.zeros_like(v)
        if self.kind == "nonneg":
            return np.where(v < 0, 0.0, v)
        if self.kind == "nonpos":
            return np.where(v > 0, 0.0, v)
        if self.kind == "bounds":
            lo, hi = self.extra
            return np.clip(v, lo, hi)
        return v


@dataclass(frozen=True)
class _DualMap:
    """Dual values as signed, scaled entries of Clarabel's ``z``: ``coef * z[:, index]``, split
    per constraint into parts ``(start, shape)``."""

    index: npt.NDArray[np.int64]
    coef: npt.NDArray[np.float64]
    parts: tuple[tuple[int, bool, tuple[tuple[int, tuple[int, ...]], ...]], ...]

    def duals(self, z: npt.NDArray[np.float64]) -> Duals:
        flat = self.coef * z[:, self.index] if z.shape[1] else np.zeros((z.shape[0], 0))
        flat = flat + 0.0  # no -0.0 from negative coefficients
        out: dict[int, Any] = {}
        for cid, is_list, pieces in self.parts:
            arrays = [
                np.ascontiguousarray(
                    flat[:, start : start + int(np.prod(shape, dtype=int))].reshape(-1, *shape)
                )
                for start, shape in pieces
            ]
            out[cid] = arrays if is_list else arrays[0]
        return Duals(out)


@dataclass(frozen=True)
class _Layout:
    """Each parameter's shape and size, its sign attributes' bits and, on the fast path, each
    variable's gather index, in the compiled problem's parameter and variable order."""

    shapes: dict[str, tuple[tuple[int, ...], int]]
    sign_bits: list[int]
    gathers: list[npt.NDArray[np.int64]]


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
    _duals: _DualMap | None = field(default=None, repr=False)
    # ConicProgram's constructor arguments: the Rust program does not pickle, so a copy
    # shipped to another process (indexlab.distributed) rebuilds it from these.
    _program_args: tuple[Any, ...] | None = field(default=None, repr=False)
    # The fast path's copies of each batch's parameters for its lazily computed duals.
    _snapshots: SnapshotPool = field(default_factory=SnapshotPool, repr=False, compare=False)
    # What every call reads of the parameters and variables, worked out on first use (a
    # one-instance solve is tens of microseconds: cvxpy's shape properties would be a third).
    _layout: _Layout | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        if self._program_args is None:
            raise TypeError("this CompiledProblem cannot be pickled: compile() it again")
        state = dict(self.__dict__)
        del state["_program"], state["_snapshots"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._program = ConicProgram(*state["_program_args"])
        self._snapshots = SnapshotPool()
        # cvxpy numbers expressions from a per-process counter that unpickling does not
        # advance: move it past this problem's ids, so that cvxpy objects created later in
        # this process (e.g. compile(problem, fast_path=False)) never reuse one of them.
        _advance_cvxpy_ids(self.problem)

    @property
    def uses_fast_path(self) -> bool:
        """Whether :meth:`solve_batch` hands instances to ``indexlab.optimise.fastpath``."""
        return self._structure is not None

    @property
    def path(self) -> str:
        """The solve path :func:`compile` chose from the problem's canonical data: ``"fast"``
        (the index shape of :mod:`indexlab.optimise.structure`, pure Rust) or ``"conic"``
        (Clarabel)."""
        return "fast" if self._structure is not None else "conic"

    @property
    def n_variables(self) -> int:
        """Canonical variables before presolve."""
        return int(self._program.n)

    @property
    def n_constraints(self) -> int:
        """Canonical constraint rows before presolve."""
        return int(self._program.m)

    def _call_layout(self) -> _Layout:
        """What every call reads of the parameters and variables (built on the first call)."""
        if self._layout is None:
            self._layout = _Layout(
                shapes={name: (p.shape, p.size) for name, p in self.parameters.items()},
                sign_bits=[_sign_bits(p) for p in self.parameters.values()],
                # The fast path's variables are plain (the others have no such index).
                gathers=[v.c_order_index() for v in self._variables] if self._structure else [],
            )
        return self._layout

    def theta(self, params: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        """Validate a batch of parameter values and flatten it to ``(B, n_theta)``.

        Raises
        ------
        DataError
            A parameter missing, unknown, wrongly shaped, not finite or of the wrong sign; the
            message names the parameter and the instance.
        """
        return self._assemble(*self._checked(params))

    def _checked(
        self, params: Mapping[str, Any], values: bool = True
    ) -> tuple[int, dict[str, npt.NDArray[np.float64]]]:
        """The batch size and each parameter's values, validated (see :meth:`theta`) and
        flattened per instance in ``theta``'s order, ``(B, size)``. ``values=False`` checks
        names and shapes only: the caller has the values checked (the fast path's workers
        do, see :meth:`_solve_fast`)."""
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
        shapes = self._call_layout().shapes
        for name, p in self.parameters.items():
            shape, size = shapes[name]
            try:
                a = np.asarray(params[name], dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise DataError(f"parameter {name!r}: expected numbers, found {e}") from None
            if a.ndim != len(shape) + 1 or a.shape[1:] != shape:
                raise DataError(
                    f"parameter {name!r}: expected shape {_batch_shape(shape)} "
                    f"(a batch of {shape}), found {a.shape}"
                )
            if batch is None:
                batch = a.shape[0]
            elif a.shape[0] != batch:
                raise DataError(
                    f"parameter {name!r}: expected {batch} instances like the parameters "
                    f"before it, found {a.shape[0]}"
                )
            flat = a.reshape(a.shape[0], size)
            if values:
                _check_values(name, p, flat)
            # Fortran order per instance = C order of the instance with its axes reversed (a
            # view for a vector parameter).
            f = a.transpose(0, *range(a.ndim - 1, 0, -1)).reshape(a.shape[0], size)
            arrays[name] = np.ascontiguousarray(f)
        # No parameters: a batch of one (the problem's only instance).
        return (1 if batch is None else batch), arrays

    def _assemble(
        self, b: int, arrays: Mapping[str, npt.NDArray[np.float64]]
    ) -> npt.NDArray[np.float64]:
        """``theta`` (``(B, n_theta)``) from :meth:`_checked`'s arrays."""
        n_theta = int(self._program.n_theta)
        theta = np.empty((b, n_theta))
        covered = np.zeros(n_theta, dtype=bool)
        for name, f in arrays.items():
            col = self._param_cols[name]
            covered[col : col + f.shape[1]] = True
        theta[:, ~covered] = 0.0
        theta[:, -1] = 1.0
        for name, f in arrays.items():
            col = self._param_cols[name]
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
            Remove variables an instance fixes at zero before solving, and solve an instance
            that is then a small strictly convex QP exactly rather than with Clarabel (see
            the module docs).
            ``False`` solves the unreduced canonical program with Clarabel, the data cvxpy
            hands it, also when :attr:`path` is ``"fast"``.

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
        fast = self._structure is not None and presolve
        # The fast path's workers check the values (finite, signed) as they read them.
        b, arrays = self._checked(params, values=not fast)
        if fast:
            try:
                return self._solve_fast(b, arrays, threads)
            except DataError as refused:
                # The workers name a column and an instance; this names the parameter, the
                # instance and the flat index, as the other path does.
                try:
                    self._checked(params)
                except DataError as precise:
                    raise precise from None
                raise refused
        theta = self._assemble(b, arrays)
        x, status, obj, iters, secs, nvar, z = self._program.solve_batch(theta, presolve, threads)
        status = list(status)
        objective = np.asarray(obj, dtype=np.float64)
        if self._maximize:
            objective = -objective
        for i, s in enumerate(status):
            if s.startswith("infeasible"):
                objective[i] = -np.inf if self._maximize else np.inf
            elif s.startswith("unbounded"):
                objective[i] = np.inf if self._maximize else -np.inf
        values = {
            slot.name: np.ascontiguousarray(slot.values(x), dtype=np.float64)
            for slot in self._variables
        }
        return BatchSolution(
            values=values,
            status=status,
            objective=objective,
            iterations=np.asarray(iters, dtype=np.int64),
            solve_seconds=np.asarray(secs, dtype=np.float64),
            n_variables=np.asarray(nvar, dtype=np.int64),
            duals=self._lazy_duals(z),
        )

    def _lazy_duals(self, z: npt.NDArray[np.float64]) -> Duals:
        """The generic path's duals from Clarabel's ``z``, mapped on first read: most batches
        never read them, and the mapping costs a tenth of a small problem's solve."""
        dual_map = self._duals
        if dual_map is None:
            return Duals()
        return Duals(load=lambda: dual_map.duals(z))

    def _solve_fast(
        self, b: int, arrays: dict[str, npt.NDArray[np.float64]], threads: int | None
    ) -> BatchSolution:
        """The index shape on the pure-Rust fast path (``arrays`` from :meth:`_checked`, values
        unchecked): Rust's workers check the values as they read them, one instance at a
        time, and write each variable's values."""
        # The duals are computed on first read, from the batch's theta as the workers read it
        # (the caller may refill its arrays): kept in a snapshot, whose arrays are not reused
        # before the duals' loader, which holds it, is gone.
        reads_duals = self._duals is not None and self._structure.dual_rows is not None
        shape = (b, int(self._program.n_theta))
        snap = self._snapshots.claim({"theta": shape}) if reads_duals else None
        res = self._structure.solve(
            [(self._param_cols[name], a) for name, a in arrays.items()],
            b,
            (lambda: snap.arrays["theta"])
            if snap is not None
            else (lambda: self._assemble(b, arrays)),
            threads,
            rules=self._call_layout().sign_bits,  # `arrays` are in the parameters' order
            theta_out=snap.arrays["theta"] if snap is not None else None,
            gathers=self._call_layout().gathers,
        )
        objective = -res.objective if self._maximize else res.objective.copy()
        status = np.asarray(res.status)
        objective[status == "infeasible"] = -np.inf if self._maximize else np.inf
        solved = (status == "optimal") | (status == "optimal_inaccurate")
        objective[~solved & (status != "infeasible")] = np.nan
        values = {
            slot.name: v.reshape(b, *slot.shape)
            for slot, v in zip(self._variables, res.gathered, strict=True)
        }
        duals = Duals()
        if self._duals is not None and res.z is not None:
            dual_map, z = self._duals, res.z
            duals = Duals(load=lambda: dual_map.duals(z()))
        return BatchSolution(
            values=values,
            status=list(res.status),
            objective=objective,
            iterations=res.iterations,
            solve_seconds=np.full(b, res.seconds),
            n_variables=res.held,
            duals=duals,
            smallest_te_budget=res.smallest_budget,
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
            duals=s.duals.instance(0),
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


def _refuse_variables(problem: cp.Problem) -> None:
    """Variable attributes Clarabel cannot honour, named with the variable."""
    for v in problem.variables():
        a = v.attributes
        for attr in ("integer", "boolean"):
            if a.get(attr):
                raise DataError(
                    f"variable {v.name()!r}: attribute {attr}=True is not supported by the batch "
                    "solver (Clarabel solves continuous problems); drop it or use a MIP solver"
                )
        for attr in ("complex", "imag", "hermitian"):
            if a.get(attr):
                raise DataError(
                    f"variable {v.name()!r}: attribute {attr}=True is not supported by the batch "
                    "solver (Clarabel solves real programs); use real and imaginary parts"
                )


def _psd_sources(problem: cp.Problem) -> str:
    names = [
        f"variable {v.name()!r} (PSD/NSD)"
        for v in problem.variables()
        if v.attributes.get("PSD") or v.attributes.get("NSD")
    ]
    names += [
        f"constraint {i} ({c})"
        for i, c in enumerate(problem.constraints)
        if type(c).__name__ in ("PSD", "SvecPSD")
    ]
    return ", ".join(names) or "atoms that cvxpy canonicalises to PSD constraints"


def _slot(v: cp.Variable, low: cp.Variable, var_id_to_col: Mapping[int, int]) -> _VarSlot:
    """How a user variable is read back from the canonical ``x``: cvxpy's
    ``recover_value_for_leaf`` (``cvxpy/reductions/cvx_attr2constr.py``), then ``Leaf.project``
    for variables that keep their shape."""
    if low.id not in var_id_to_col:
        raise DataError(
            f"variable {v.name()!r}: cvxpy removed it from the canonical program (size "
            f"{v.size}); the batch solver cannot report its value"
        )
    a = v.attributes
    kind: str = "plain"
    extra: Any = None
    if a.get("diag"):
        kind = "diag"
    elif a.get("symmetric") or a.get("PSD") or a.get("NSD"):
        kind = "symmetric"
    elif a.get("sparsity"):
        kind, extra = "sparsity", tuple(np.asarray(i) for i in v.sparse_idx)
    elif v.num_attributes == 1:  # Leaf.project skips values with several attributes
        if a.get("nonneg") and a.get("nonpos"):
            kind = "zero"
        elif a.get("nonpos") or a.get("neg"):
            kind = "nonpos"
        elif a.get("nonneg") or a.get("pos"):
            kind = "nonneg"
        elif a.get("bounds") is not None:
            lo, hi = a["bounds"]  # type: ignore[misc]  # cvxpy types the attributes loosely
            if not any(isinstance(x, cp.Expression) for x in (lo, hi)):
                kind, extra = "bounds", (np.asarray(lo, float), np.asarray(hi, float))
    return _VarSlot(
        name=v.name(),
        shape=tuple(v.shape),
        offset=int(var_id_to_col[low.id]),
        size=int(low.size),
        kind=kind,
        extra=extra,
    )


def _probe_duals(
    problem: cp.Problem, chain: Any, inverse: Any, n: int, z: npt.NDArray[np.float64]
) -> dict[int, tuple[bool, list[npt.NDArray[np.float64]]]]:
    """Each constraint's ``dual_value`` for Clarabel's dual ``z`` (``(is_list, arrays)``), through
    cvxpy's own inverse chain and ``save_dual_value``; the user's constraints are left as found."""
    raw = SimpleNamespace(
        status="Solved",
        x=np.zeros(n),
        z=z,
        s=np.zeros_like(z),
        obj_val=0.0,
        solve_time=0.0,
        iterations=0,
    )
    # get_problem_data leaves the solver's options unset; its invert reads them.
    last = inverse[-1]
    unset = getattr(last, "solver_options", {}) is None
    if unset:
        last.solver_options = {}
    try:
        sol = chain.invert(raw, inverse)
    finally:
        if unset:
            last.solver_options = None
    dual_vars = sol.dual_vars or {}
    out: dict[int, tuple[bool, list[npt.NDArray[np.float64]]]] = {}
    for c in problem.constraints:
        if c.id not in dual_vars:
            continue
        old = [dv.value for dv in c.dual_variables]
        try:
            c.save_dual_value(dual_vars[c.id])
            val = c.dual_value
        finally:
            for dv, o in zip(c.dual_variables, old, strict=True):
                dv.save_value(o)
        if isinstance(val, list):
            out[c.id] = (True, [np.asarray(p, dtype=np.float64) for p in val])
        else:
            out[c.id] = (False, [np.asarray(val, dtype=np.float64)])
    return out


def _dual_map(problem: cp.Problem, chain: Any, inverse: Any, n: int, m: int) -> _DualMap | None:
    """Probe cvxpy's dual recovery with three ``z`` vectors: each dual entry is ``coef *
    z[index]`` (a slice, reshape, sign or the sqrt(2) svec scaling), found from ``z = 1`` and
    ``z = 1, 2, ..., m`` and checked with a random ``z``. ``None`` if cvxpy's map is not of that
    form (then no duals are reported)."""
    probes: list[npt.NDArray[np.float64]] = [
        np.ones(m),
        np.arange(1.0, m + 1.0, dtype=np.float64),
        np.random.default_rng(0).standard_normal(m),
    ]
    try:
        res = [_probe_duals(problem, chain, inverse, n, zp) for zp in probes]
    except Exception:
        return None
    parts: list[tuple[int, bool, tuple[tuple[int, tuple[int, ...]], ...]]] = []
    flats: list[list[npt.NDArray[np.float64]]] = [[], [], []]
    start = 0
    for c in problem.constraints:
        if c.id not in res[0]:
            continue
        is_list, arrays = res[0][c.id]
        pieces = []
        for k, arr in enumerate(arrays):
            pieces.append((start, tuple(arr.shape)))
            start += arr.size
            for r in range(3):
                flats[r].append(np.ravel(res[r][c.id][1][k]))
        parts.append((c.id, is_list, tuple(pieces)))
    coef, ramp, rand = (np.concatenate(f) if f else np.zeros(0) for f in flats)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(coef != 0, ramp / coef - 1.0, 0.0)
    index = np.rint(pos).astype(np.int64)
    if not np.all(np.abs(pos - index) < 1e-6):
        return None
    if index.size and (index.min() < 0 or index.max() >= m):
        return None
    if index.size and not np.allclose(coef * probes[2][index], rand, rtol=1e-9, atol=1e-12):
        return None
    return _DualMap(index=index, coef=coef, parts=tuple(parts))


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
        parameters (or none: a batch of one). Every cone cvxpy hands Clarabel is supported, PSD
        included; see the module docs for variable attributes.

    fast_path : bool, optional
        Problems whose canonical data has the index shape (see
        :mod:`indexlab.optimise.structure`; e.g. :func:`indexlab.optimise.ai_chain_model`
        without turnover, or the same problem written by hand) are solved by the pure-Rust fast
        path ``indexlab.optimise.fastpath`` (no conic solver); ``CompiledProblem.path`` says
        which path was chosen. ``None`` (default): use it when the shape is recognised;
        ``True``: require it; ``False``: always use the generic Clarabel path.

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
    _refuse_variables(problem)

    data, _chain, inverse = problem.get_problem_data(cp.CLARABEL)
    pp = data["param_prob"]
    dims = data["dims"]
    if any(type(r).__name__ == "Complex2Real" for r in _chain.reductions):
        raise DataError(
            "complex values (a complex parameter, constant or constraint) are not supported by "
            "the batch solver: Clarabel solves real programs; split into real and imaginary parts"
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

    # [-A | b] map and pattern (empty without constraints).
    pp.reduced_A.cache()
    if pp.reduced_A.problem_data_index is None:
        a_pattern = (0, n + 1, np.zeros(n + 2, np.int64), np.zeros(0, np.int64))
        a_map = (np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0))
    else:
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

    # cvxpy's order and Clarabel's cones (dims_to_solver_cones in cvxpy's clarabel_conif.py).
    cones: list[tuple[str, int, list[float]]] = []
    if dims.zero:
        cones.append(("zero", int(dims.zero), []))
    if dims.nonneg:
        cones.append(("nonneg", int(dims.nonneg), []))
    cones += [("soc", int(d), []) for d in dims.soc]
    cones += [("psd", int(d), []) for d in dims.psd]
    cones += [("exp", 3, [])] * int(dims.exp)
    cones += [("pow", 3, [float(a)]) for a in dims.p3d]
    cones += [("genpow", 1, [float(a) for a in alpha]) for alpha in getattr(dims, "pnd", [])]

    program_args = (
        n_theta,
        p_pattern,
        p_map,
        (a_pattern[0], a_pattern[1], a_pattern[2], np.asarray(a_pattern[3], np.int64)),
        a_map,
        q_map,
        cones,
    )
    try:
        program = ConicProgram(*program_args)
    except DataError as e:
        if len(dims.psd) == 0:
            raise
        raise DataError(
            f"cone psd {[int(d) for d in dims.psd]}: {e}; the PSD cones come from "
            f"{_psd_sources(problem)}"
        ) from None

    # Map the user's variables to canonical columns, through cvxpy's attribute lowering.
    lowered: dict[int, cp.Variable] = {}
    for red, inv in zip(_chain.reductions, inverse, strict=True):
        if isinstance(red, CvxAttr2Constr) and inv:
            lowered = {k: v for k, v in inv[0].items()}
    slots: list[_VarSlot] = []
    seen: set[str] = set()
    for v in problem.variables():
        if v.name() in seen:
            raise DataError(f"two variables are named {v.name()!r}: give each a unique name=")
        seen.add(v.name())
        slots.append(_slot(v, lowered.get(v.id, v), pp.var_id_to_col))
    if n == 0:
        raise DataError("problem has no variables")
    # The solve path is chosen by looking at the canonical data, whoever built the problem.
    structure = None
    if fast_path is not False and _fastpath() is not None:
        structure = recognise(pp, dims)
    if fast_path and structure is None:
        raise DataError(
            "fast_path=True: expected the index shape of indexlab.optimise.structure (linear "
            "plus diagonal-plus-low-rank objective, sum w = 1, bounds on every weight, a few "
            "linear rows, at most one tracking-error cone) and the indexlab.optimise.fastpath "
            "module; found "
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
        _duals=_dual_map(problem, _chain, inverse, n, int(program.m)),
    )
