"""Best membership subset for a compiled problem: choose at most ``k`` names to hold.

The problem is a compiled cvxpy model (:func:`indexlab.optimise.compile`) whose membership
parameter (``mask``, 1 = may hold) switches names on and off, e.g. through ``w <= cap * mask``.
Choosing the best ``k``-name mask is a mixed-integer problem; :func:`best_subset` searches it
with batches of continuous solves (every batch is one ``solve_batch`` call, solved in Rust in
parallel), which is how it scales to thousands of neighbours per step:

1. ``round``: the relaxation (every name allowed) rounded to its ``k`` largest weights, and the
   top ``k`` names by each per-name parameter (e.g. ``scores``, ``bench``), all in one batch.
2. ``swap``: steepest swap local search (drop one held name, add one outside name). Each step
   first scores every single-name addition and removal (``N`` solves) and ranks the swaps by
   those two gains, then solves the swaps in that order, in chunks, and moves to the best
   improving swap of the first chunk that has one.
3. ``restart`` (``method="auto"``): iterated local search. From the best mask, swap a few held
   names for promising outside ones chosen at random (seeded), search again, keep the better.

The search is deterministic for a seed whatever the number of threads (each batch's results do
not depend on it; ties go to the first candidate in a fixed order). It stops at ``time_limit``,
``max_evaluations``, or when restarts stop improving; Ctrl-C between batches
returns the best mask found so far with ``interrupted=True``. When the best mask reaches the
relaxation's objective (the relaxation holds at most ``k`` names) it is optimal and the search
stops at once.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab.distributed import Executor, resolve
from indexlab.errors import DataError, InfeasibleError, SolverError

__all__ = ["SubsetResult", "best_subset"]

Array = npt.NDArray[np.float64]
_METHODS = ("auto", "round", "swap")
_OK = ("optimal", "optimal_inaccurate")
_CHUNK = 1024  # swaps solved per batch call; fixed so results never depend on the machine
_SCAN = 2048  # most swaps tried per step, best-ranked first: a step is a local optimum past it
_PATIENCE = 8  # restarts without improvement before "auto" stops


@dataclass
class SubsetResult:
    """The best mask :func:`best_subset` found.

    Attributes
    ----------
    mask : ndarray of bool, shape (N,)
        The chosen members (at most ``k``).
    objective : float
        The problem's objective with that mask (in the problem's own sense).
    values : dict[str, ndarray]
        The optimal value of each cvxpy variable for that mask, by variable name.
    history : DataFrame
        One row per search step: ``step``, ``method``, ``best_objective`` (so far),
        ``evaluations`` (solves so far) and ``elapsed`` (seconds).
    bound : float
        The relaxation's objective (every name allowed): no mask can beat it.
    evaluations : int
        Continuous solves made (masks seen twice are solved once).
    stop_reason : str
        ``"optimal"`` (the mask reaches the relaxation's bound, so it is proven optimal),
        ``"converged"``, ``"time_limit"``, ``"max_evaluations"``, ``"callback"`` or
        ``"interrupted"``.
    interrupted : bool
        True when Ctrl-C (KeyboardInterrupt) stopped the search.
    """

    mask: npt.NDArray[np.bool_]
    objective: float
    values: dict[str, Array]
    history: pd.DataFrame
    bound: float
    evaluations: int
    stop_reason: str
    interrupted: bool = False

    @property
    def members(self) -> npt.NDArray[np.intp]:
        """Positions of the chosen names."""
        return np.flatnonzero(self.mask)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mask": self.mask.tolist(),
            "objective": self.objective,
            "values": {k: v.tolist() for k, v in self.values.items()},
            "history": self.history.to_dict(orient="list"),
            "bound": self.bound,
            "evaluations": self.evaluations,
            "stop_reason": self.stop_reason,
            "interrupted": self.interrupted,
        }


class _Stop(Exception):
    """The evaluation budget or the time limit ran out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Best:
    score: float = -math.inf
    members: tuple[int, ...] = ()
    values: dict[str, Array] = field(default_factory=dict)
    objective: float = math.nan


@dataclass
class _Batch:
    values: dict[str, Array]
    status: list[str]
    objective: Array


class _Solver:
    """Solves a batch of masks (the other parameters fixed); what an executor ships to its
    workers once per search. The generic-path fallback is compiled lazily where it is needed
    and kept there (it is not pickled)."""

    def __init__(
        self, compiled: Any, mask_name: str, fixed: dict[str, Array], threads: int | None
    ) -> None:
        self.compiled = compiled
        self.mask_name = mask_name
        self.fixed = fixed
        self.threads = threads
        self.generic: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "generic": None}

    def masks(self, masks: Array) -> tuple[_Batch, int]:
        """The batch's solutions and how many instances fell back to the generic path."""
        b = masks.shape[0]
        params = {name: np.broadcast_to(v, (b, *v.shape)) for name, v in self.fixed.items()}
        params[self.mask_name] = masks
        return self._robust(params, 0, b)

    def _robust(self, params: dict[str, Any], lo: int, hi: int) -> tuple[_Batch, int]:
        """Rows ``lo:hi`` of the batch. Instances the fast path reports as ``"solver_error"``
        are solved again with the generic Clarabel path; if the fast path raises instead
        (SolverError), halve the batch until the failing instance is alone and solve it that
        way, so one hard instance never stops the search."""
        part = {name: v[lo:hi] for name, v in params.items()}
        fast = getattr(self.compiled, "uses_fast_path", False)
        try:
            sol = self.compiled.solve_batch(part, threads=self.threads)
            out = _Batch(sol.values, list(sol.status), np.asarray(sol.objective, np.float64))
        except SolverError:
            if not fast:
                raise
        else:
            bad = [i for i, st in enumerate(out.status) if st == "solver_error"]
            if fast and bad:
                out.values = {name: np.array(v, copy=True) for name, v in out.values.items()}
                for i in bad:
                    one, _ = self._generic(params, lo + i, lo + i + 1)
                    for name, v in out.values.items():
                        v[i] = one.values[name][0]
                    out.status[i] = one.status[0]
                    out.objective[i] = one.objective[0]
            return out, len(bad) if fast else 0
        if hi - lo > 1:
            mid = (lo + hi) // 2
            (a, fa), (b, fb) = self._robust(params, lo, mid), self._robust(params, mid, hi)
            return _concat([a, b]), fa + fb
        return self._generic(params, lo, hi)

    def _generic(self, params: dict[str, Any], lo: int, hi: int) -> tuple[_Batch, int]:
        """Rows ``lo:hi`` of the batch on the generic Clarabel path (the fast path's fallback)."""
        if self.generic is None:
            from indexlab.optimise import compile as compile_problem

            self.generic = compile_problem(self.compiled.problem, fast_path=False)
        part = {name: v[lo:hi] for name, v in params.items()}
        sol = self.generic.solve_batch(part, threads=self.threads)
        return _Batch(sol.values, list(sol.status), np.asarray(sol.objective, np.float64)), 1


def _concat(parts: list[_Batch]) -> _Batch:
    return _Batch(
        {name: np.concatenate([p.values[name] for p in parts]) for name in parts[0].values},
        [st for p in parts for st in p.status],
        np.concatenate([p.objective for p in parts]),
    )


def _solve_shard(masks: Array, solver: _Solver) -> tuple[_Batch, int]:
    """An executor task: one shard of a batch of masks."""
    return solver.masks(masks)


class _Evaluator:
    """Solves batches of masks through ``solve_batch``; keeps a cache, the budget and the best."""

    def __init__(
        self,
        compiled: Any,
        mask_name: str,
        fixed: dict[str, Array],
        n: int,
        k: int,
        maximize: bool,
        threads: int | None,
        max_evaluations: int | None,
        deadline: float | None,
        executor: Executor | None = None,
    ) -> None:
        self.compiled = compiled
        self.solver = _Solver(compiled, mask_name, fixed, threads)
        self.executor = executor
        self.shared: Any = None
        self.mask_name = mask_name
        self.fixed = fixed
        self.n = n
        self.k = k
        self.sign = 1.0 if maximize else -1.0
        self.threads = threads
        self.max_evaluations = max_evaluations
        self.deadline = deadline
        self.cache: dict[bytes, float] = {}
        self.fallbacks = 0
        self.wname = _weights_name(compiled, n)
        self.held_weights: dict[bytes, Array] = {}
        self.evaluations = 0
        self.best = _Best()
        self.last_status: list[str] = []

    def check(self) -> None:
        if self.max_evaluations is not None and self.evaluations >= self.max_evaluations:
            raise _Stop("max_evaluations")
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            raise _Stop("time_limit")

    def solve(self, masks: Array) -> _Batch:
        """Solve a ``(B, N)`` batch of masks, uncached (relaxation and probes of size != k).

        With an executor the batch is cut into ``executor.parallelism`` shards solved as
        tasks (each instance's solve does not depend on its batch) and put back in order."""
        b = masks.shape[0]
        if self.executor is None or b < 2:
            sol, fallbacks = self.solver.masks(masks)
        else:
            if self.shared is None:  # the compiled problem and fixed values, shipped once
                self.shared = self.executor.share(self.solver)
            size = -(-b // self.executor.parallelism)
            shards = [masks[lo : lo + size] for lo in range(0, b, size)]
            done = self.executor.map(_solve_shard, shards, self.shared)
            sol, fallbacks = _concat([d[0] for d in done]), sum(d[1] for d in done)
        self.fallbacks += fallbacks
        self.evaluations += b
        return sol

    def scores(self, sol: _Batch) -> Array:
        obj = np.asarray(sol.objective, dtype=np.float64) * self.sign
        ok = np.array([s in _OK for s in sol.status]) & np.isfinite(obj)
        return np.where(ok, obj, -math.inf)

    def members(self, sets: list[tuple[int, ...]], budget: bool = True) -> Array:
        """Scores of ``k``-name member sets (cached), solving new ones in chunks; records the
        best. Stops early (``_Stop``) when the budget runs out, after recording what it solved
        (``budget=False``: the seeds, always solved)."""
        out = np.full(len(sets), -math.inf)
        keys = [np.asarray(s, dtype=np.int32).tobytes() for s in sets]
        todo = [i for i, key in enumerate(keys) if key not in self.cache]
        for i, key in enumerate(keys):
            if key in self.cache:
                out[i] = self.cache[key]
        first: dict[bytes, int] = {}
        for i in todo:
            first.setdefault(keys[i], i)
        todo = list(first.values())
        for start in range(0, len(todo), _CHUNK):
            if budget:
                self.check()
            part = todo[start : start + _CHUNK]
            if budget and self.max_evaluations is not None:
                part = part[: max(self.max_evaluations - self.evaluations, 0)]
            idx = np.array([sets[i] for i in part], dtype=np.intp)  # (B, k), each row sorted
            rows = np.arange(len(part))[:, None]
            masks = np.zeros((len(part), self.n))
            masks[rows, idx] = 1.0
            sol = self.solve(masks)
            self.last_status = list(sol.status)
            sc = self.scores(sol)
            held = None
            if self.wname is not None:
                held = np.nan_to_num(np.asarray(sol.values[self.wname])[rows, idx])
            for row, i in enumerate(part):
                self.cache[keys[i]] = float(sc[row])
                if held is not None:
                    self.held_weights[keys[i]] = held[row]
            j = int(np.argmax(sc))
            if sc[j] > self.best.score:
                self.best = _Best(
                    score=float(sc[j]),
                    members=tuple(sets[part[j]]),
                    values={name: np.array(v[j]) for name, v in sol.values.items()},
                    objective=float(sol.objective[j]),
                )
        for i, key in enumerate(keys):
            out[i] = self.cache.get(key, -math.inf)
        if budget:
            self.check()
        return out


class _Progress:
    """A one-line text progress display on stderr (no dependency)."""

    def __init__(self, enabled: bool, time_limit: float | None) -> None:
        self.enabled = enabled
        self.time_limit = time_limit
        self.shown = False

    def update(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        bar = ""
        if self.time_limit:
            done = min(row["elapsed"] / self.time_limit, 1.0)
            bar = "[" + "#" * int(20 * done) + "." * (20 - int(20 * done)) + "] "
        sys.stderr.write(
            f"\rbest_subset {bar}step {row['step']:>4} {row['method']:<8} "
            f"best {row['best_objective']:.6g}  {row['evaluations']:,} solves  "
            f"{row['elapsed']:.1f}s "
        )
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _fixed_params(compiled: Any, mask: str, params: Mapping[str, Any] | None) -> dict[str, Array]:
    fixed: dict[str, Array] = {}
    given = dict(params or {})
    if mask in given:
        raise DataError(
            f"params: {mask!r} is the membership parameter best_subset searches over; "
            "leave it out of params"
        )
    unknown = sorted(set(given) - set(compiled.parameters))
    if unknown:
        raise DataError(
            f"params: unknown parameters {unknown}: this problem has {sorted(compiled.parameters)}"
        )
    for name, p in compiled.parameters.items():
        if name == mask:
            continue
        value = given.get(name, p.value)
        if value is None:
            raise DataError(f"parameter {name!r} has no value: pass it in params (shape {p.shape})")
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"parameter {name!r}: expected numbers, found {e}") from None
        if a.shape != p.shape:
            raise DataError(
                f"parameter {name!r}: expected shape {p.shape} (one instance), found {a.shape}"
            )
        fixed[name] = a
    return fixed


def _weights_name(compiled: Any, n: int) -> str | None:
    """The variable the mask switches on and off: the fast path's weights, else the first
    variable with one entry per name."""
    structure = getattr(compiled, "_structure", None)
    if structure is not None:
        return str(structure.weights)
    for v in compiled.problem.variables():
        if tuple(v.shape) == (n,):
            return str(v.name())
    return None


def _infeasible_message(compiled: Any, k: int, n: int, statuses: list[str]) -> str:
    counts = pd.Series(statuses).value_counts().to_dict() if statuses else {}
    structure = getattr(compiled, "_structure", None)
    head = f"every {k}-name mask tried is infeasible (statuses {counts})"
    if structure is not None and k * structure.cap < 1.0:
        return (
            f"{head}: the weight cap w <= cap * mask with at most k names cannot reach the "
            f"budget sum(w) == 1: k x cap = {k} x {structure.cap:g} = {k * structure.cap:g} < 1; "
            f"raise k to at least {math.ceil(1.0 / structure.cap - 1e-12)} or the cap to at "
            f"least {1.0 / k:.4g}"
        )
    return (
        f"{head} although the full universe ({n} names) is feasible: the constraints that tie "
        f"the weights to the mask (e.g. w <= cap * mask with sum(w) == 1, so k x cap >= 1 is "
        f"needed) or group bounds cannot hold with {k} names"
    )


def _top(order_key: Array, k: int, tiebreak: Array | None = None) -> tuple[int, ...]:
    """The ``k`` positions with the largest key (ties: larger tiebreak, then lower position)."""
    second = np.zeros(order_key.size) if tiebreak is None else -tiebreak
    order = np.lexsort((np.arange(order_key.size), second, -order_key))
    return tuple(sorted(int(i) for i in order[:k]))


def best_subset(
    compiled: Any,
    mask: str = "mask",
    k: int = 30,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    max_evaluations: int | None = None,
    method: str = "auto",
    threads: int | None = None,
    progress: bool | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    executor: Executor | None = None,
) -> SubsetResult:
    """Search for the best membership mask with at most ``k`` names.

    Parameters
    ----------
    compiled : CompiledProblem
        From :func:`indexlab.optimise.compile`. Its objective's sense is respected (Maximize:
        higher is better; Minimize: lower is better).
    mask : str
        The membership parameter, shape ``(N,)``: 1 = the name may be held, 0 = not.
    k : int
        Most names in the mask, ``1 <= k <= N``.
    params : mapping, optional
        Values of the other parameters, each with the parameter's own shape (one instance);
        parameters left out use their current ``.value``.
    seed : int
        Seeds the restarts; the result is the same for a seed whatever ``threads``.
    time_limit : float, optional
        Seconds; the search stops after the batch that crosses it.
    max_evaluations : int, optional
        Most continuous solves; the relaxation and the seed masks are always solved, then the
        search stops before a batch would pass the budget.
    method : {"auto", "round", "swap"}
        ``"round"``: relaxation and rank seeds only; ``"swap"``: plus swap local search;
        ``"auto"``: plus restarts until 8 restarts in a row bring no improvement (or at least
        3 do while costing twice the solves it took to find the best mask).
    threads : int, optional
        Worker threads for each batch (default: all cores).
    progress : bool, optional
        Show a one-line progress display on stderr; ``None``: when stderr is a terminal.
    callback : callable, optional
        Called with each history row (a dict); a true return value stops the search.
    executor : optional
        Where each batch of masks is solved: ``None`` (in this process) or an
        :mod:`indexlab.distributed` executor, e.g. ``DaskExecutor(client)``: the compiled
        problem ships to every worker once, each batch is cut into shards solved as tasks. The
        result (mask, objective, history) is the same as in process.

    Returns
    -------
    SubsetResult

    Raises
    ------
    DataError
        The mask parameter missing or not ``(N,)``, ``k`` outside ``[1, N]``, bad ``params``,
        an unknown ``method``.
    InfeasibleError
        The problem is infeasible even with every name allowed, or every seed mask is (e.g.
        ``k x cap < 1``); the message gives the numbers and the solver statuses.

    Examples
    --------
    >>> import numpy as np
    >>> from indexlab.optimise import RiskModel, ai_chain_model, compile
    >>> from indexlab.search import best_subset
    >>> n = 12
    >>> rm = RiskModel(np.ones((n, 1)), np.eye(1) * 0.04, np.full(n, 0.01))
    >>> prob, w = ai_chain_model(range(n), np.full(n, 1 / n), np.linspace(0, 1, n), rm, cap=0.3)
    >>> res = best_subset(compile(prob), k=4, progress=False)
    >>> res.mask.sum(), res.members.tolist()
    (np.int64(4), [8, 9, 10, 11])
    """
    if method not in _METHODS:
        raise DataError(f"method: expected one of {list(_METHODS)}, found {method!r}")
    if mask not in getattr(compiled, "parameters", {}):
        raise DataError(
            f"mask parameter {mask!r} not found: this problem has parameters "
            f"{sorted(getattr(compiled, 'parameters', {}))}"
        )
    shape = tuple(compiled.parameters[mask].shape)
    if len(shape) != 1:
        raise DataError(
            f"mask parameter {mask!r}: expected a vector (N,) with one entry per name, "
            f"found shape {shape}"
        )
    n = shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise DataError(f"k: expected an integer between 1 and {n} (the names), found {k!r}")
    k = int(k)
    if max_evaluations is not None and max_evaluations < 1:
        raise DataError(f"max_evaluations: expected >= 1, found {max_evaluations}")
    if time_limit is not None and not time_limit > 0:
        raise DataError(f"time_limit: expected > 0 seconds, found {time_limit}")
    fixed = _fixed_params(compiled, mask, params)
    maximize = isinstance(compiled.problem.objective, cp.Maximize)
    start = time.perf_counter()
    deadline = None if time_limit is None else start + float(time_limit)
    ev = _Evaluator(
        compiled,
        mask,
        fixed,
        n,
        k,
        maximize,
        threads,
        max_evaluations,
        deadline,
        None if executor is None else resolve(executor),
    )
    bar = _Progress(sys.stderr.isatty() if progress is None else bool(progress), time_limit)
    history: list[dict[str, Any]] = []
    wname = _weights_name(compiled, n)

    def record(method_name: str) -> None:
        best = ev.best.objective if ev.best.members else math.nan
        row = {
            "step": len(history),
            "method": method_name,
            "best_objective": best,
            "evaluations": ev.evaluations,
            "elapsed": time.perf_counter() - start,
        }
        history.append(row)
        bar.update(row)
        if callback is not None and callback(dict(row)):
            raise _Stop("callback")
        if ev.best.score >= bound_score - 1e-8 * max(1.0, abs(bound_score)):
            raise _Stop("optimal")  # the mask reaches the relaxation's bound: nothing beats it

    # The relaxation: an upper bound, and the weights to round.
    relax = ev.solve(np.ones((1, n)))
    bound = float(relax.objective[0])
    bound_score = float(ev.scores(relax)[0])
    if relax.status[0] not in _OK:
        raise InfeasibleError(
            f"the problem has no solution even with every name allowed ({mask} all ones): "
            f"status {relax.status[0]!r}"
        )
    rw = None if wname is None else np.nan_to_num(np.asarray(relax.values[wname][0]))
    seeds: dict[tuple[int, ...], str] = {}
    if rw is not None:
        seeds.setdefault(_top(rw, k), "round")
    for name, v in fixed.items():
        if v.shape == (n,):
            seeds.setdefault(_top(v, k, rw), f"rank:{name}")
            if not maximize:
                seeds.setdefault(_top(-v, k, rw), f"rank:-{name}")
    if rw is not None and k < n:
        seeds.setdefault(_shrink(ev, rw, n, k), "shrink")
    if not seeds:
        seeds[tuple(range(k))] = "first"
    seed_sets = list(seeds)

    stop_reason = "converged"
    interrupted = False
    rng = np.random.default_rng(seed)
    try:
        sc = ev.members(seed_sets, budget=False)
        if not np.isfinite(sc).any():
            raise InfeasibleError(_infeasible_message(compiled, k, n, ev.last_status))
        record("round")
        if method != "round":
            order = np.argsort(-sc, kind="stable")
            current = seed_sets[int(order[0])]
            current, add_rank = _local_search(ev, current, n, k, record)
            if method == "auto":
                fails, found_at = 0, ev.evaluations
                # No improvement: _PATIENCE restarts in a row, or (after a few) restarts that
                # cost twice what it took to find the best mask.
                while fails < _PATIENCE and not (
                    fails >= 3 and ev.evaluations - found_at > 2 * found_at
                ):
                    before = ev.best.score
                    start_set = _perturb(ev.best.members, add_rank, n, k, rng)
                    ev.members([start_set])
                    _, rank = _local_search(ev, start_set, n, k, record, "restart")
                    if ev.best.score > before + _tol(before):
                        fails, found_at = 0, ev.evaluations
                        add_rank = rank
                    else:
                        fails += 1
    except _Stop as stop:
        stop_reason = stop.reason
    except KeyboardInterrupt:
        if not ev.best.members:
            bar.close()
            raise
        stop_reason, interrupted = "interrupted", True
    bar.close()
    if not ev.best.members:  # pragma: no cover - the seeds are solved before any stop
        raise InfeasibleError(_infeasible_message(compiled, k, n, ev.last_status))
    if not history or history[-1]["evaluations"] != ev.evaluations:
        history.append(
            {
                "step": len(history),
                "method": stop_reason,
                "best_objective": ev.best.objective,
                "evaluations": ev.evaluations,
                "elapsed": time.perf_counter() - start,
            }
        )
    out = np.zeros(n, dtype=bool)
    out[list(ev.best.members)] = True
    return SubsetResult(
        mask=out,
        objective=ev.best.objective,
        values=ev.best.values,
        history=pd.DataFrame(
            history, columns=["step", "method", "best_objective", "evaluations", "elapsed"]
        ),
        bound=bound,
        evaluations=ev.evaluations,
        stop_reason=stop_reason,
        interrupted=interrupted,
    )


def _shrink(ev: _Evaluator, weights: Array, n: int, k: int) -> tuple[int, ...]:
    """Backward elimination: drop the smallest quarter of the excess weights, re-solve, repeat
    until ``k`` names remain; rounding gradually lets the survivors take over the dropped names'
    role, which one-shot rounding of the relaxation misses when tracking error dominates."""
    members = np.arange(n)
    w = weights
    while members.size > k:
        drop = max(1, (members.size - k + 3) // 4)
        keep = np.lexsort((members, -w[members]))[: members.size - drop]
        members = np.sort(members[keep])
        if members.size == k:
            break
        mask = np.zeros((1, n))
        mask[0, members] = 1.0
        sol = ev.solve(mask)
        if sol.status[0] not in _OK or ev.wname is None:
            break
        w = np.nan_to_num(np.asarray(sol.values[ev.wname][0]))
    members = members[np.lexsort((members, -w[members]))[:k]]
    return tuple(int(i) for i in np.sort(members))


def _tol(score: float) -> float:
    return 1e-9 * max(1.0, abs(score))


def _probe_ranks(ev: _Evaluator, current: tuple[int, ...], n: int) -> tuple[Array, Array, Array]:
    """Score every single addition and removal around ``current`` in one batch.

    Returns outside positions ordered best addition first, held positions ordered cheapest
    removal first, and the addition gains by position (``-inf`` for held names)."""
    held = np.array(current)
    outside = np.setdiff1d(np.arange(n), held)
    base = ev.cache.get(np.asarray(current, np.int32).tobytes(), -math.inf)
    ev.check()
    if ev.max_evaluations is not None and ev.evaluations + n > ev.max_evaluations:
        raise _Stop("max_evaluations")
    masks = np.zeros((outside.size + held.size, n))
    masks[:, held] = 1.0
    masks[np.arange(outside.size), outside] = 1.0
    masks[outside.size + np.arange(held.size), held] = 0.0
    sol = ev.solve(masks)
    sc = ev.scores(sol)
    add_gain = sc[: outside.size] - base
    drop_gain = sc[outside.size :] - base  # -inf when k-1 names are infeasible
    gain = np.full(n, -math.inf)
    gain[outside] = add_gain
    # Held names: cheapest removal first; ties (e.g. all infeasible) by smallest weight.
    held_w = ev.held_weights.get(np.asarray(current, np.int32).tobytes(), np.zeros(held.size))
    drop_order = held[np.lexsort((held, held_w, -drop_gain))]
    add_order = outside[np.lexsort((outside, -add_gain))]
    return add_order, drop_order, gain


def _swap_candidates(
    held: set[int], drop_order: Array, add_order: Array, size: int
) -> list[tuple[int, ...]]:
    """Member sets one ``size``-name swap away, best-ranked first (rank of the dropped names
    plus rank of the added ones; ties by drop rank), at most ``_SCAN``. Double swaps pair the
    12 cheapest removals with the 24 best additions: they find partners that only pay together
    (e.g. two names that hedge each other's factor exposure)."""
    drops: list[tuple[int, ...]]
    adds: list[tuple[int, ...]]
    if size == 1:
        drops = [(int(d),) for d in drop_order]
        adds = [(int(a),) for a in add_order]
        d_rank, a_rank = np.arange(len(drops)), np.arange(len(adds))
    else:
        dd, aa = drop_order[:12], add_order[:24]
        dpairs = list(itertools.combinations(range(dd.size), 2))
        apairs = list(itertools.combinations(range(aa.size), 2))
        drops = [(int(dd[x]), int(dd[y])) for x, y in dpairs]
        adds = [(int(aa[x]), int(aa[y])) for x, y in apairs]
        d_rank = np.array([x + y for x, y in dpairs], dtype=np.int64)
        a_rank = np.array([x + y for x, y in apairs], dtype=np.int64)
    if not drops or not adds:
        return []
    rd, ra = np.meshgrid(d_rank, a_rank, indexing="ij")
    di, ai = np.meshgrid(np.arange(len(drops)), np.arange(len(adds)), indexing="ij")
    order = np.lexsort((ai.ravel(), di.ravel(), (rd + ra).ravel()))[:_SCAN]
    out = []
    for p in order:
        d, a = divmod(int(p), len(adds))
        out.append(tuple(sorted((held - set(drops[d])) | set(adds[a]))))
    return out


def _local_search(
    ev: _Evaluator,
    current: tuple[int, ...],
    n: int,
    k: int,
    record: Callable[[str], None],
    label: str = "swap",
) -> tuple[tuple[int, ...], Array]:
    """Swap descent: single swaps in probe order, double swaps when no single swap improves;
    moves to the best improving swap of the first chunk that has one. Returns the local
    optimum and the last addition gains (for restarts)."""
    gain = np.zeros(n)
    if k == n:
        return current, gain
    while True:
        score = ev.cache.get(np.asarray(current, np.int32).tobytes(), -math.inf)
        add_order, drop_order, gain = _probe_ranks(ev, current, n)
        moved = ""
        for size in (1, 2):
            cands = _swap_candidates(set(current), drop_order, add_order, size)
            for begin in range(0, len(cands), _CHUNK):
                chunk = cands[begin : begin + _CHUNK]
                sc = ev.members(chunk)
                j = int(np.argmax(sc))
                if sc[j] > score + _tol(score):
                    current, moved = chunk[j], label if size == 1 else f"{label}2"
                    break
            if moved:
                break
        record(moved or label)
        if not moved:
            return current, gain


def _perturb(
    best: tuple[int, ...], gain: Array, n: int, k: int, rng: np.random.Generator
) -> tuple[int, ...]:
    """Swap a few random held names for random names among the most promising outside ones."""
    held = np.array(best)
    outside = np.setdiff1d(np.arange(n), held)
    if outside.size == 0:
        return best
    r = int(rng.integers(2, max(3, k // 3) + 1))
    r = min(r, k, outside.size)
    # Promising names first, but every outside name has a chance: a name that adds little on
    # its own may be the partner of another (hedging a factor exposure together).
    pool = outside[np.lexsort((outside, -gain[outside]))]
    p = 1.0 / (np.arange(pool.size) + k)
    drop = rng.choice(held, size=r, replace=False)
    add = rng.choice(pool, size=r, replace=False, p=p / p.sum())
    return tuple(sorted((set(held.tolist()) - set(drop.tolist())) | set(add.tolist())))
