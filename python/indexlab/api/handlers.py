"""Request handlers: one JSON request in, one JSON-ready document out.

Threads
-------
:func:`handle` keeps no shared mutable state apart from two caches that are safe to share:
named datasets (built once per key under a lock, read and never modified by the handlers, never
handed to a caller: a response is plain JSON built from them) and the rules engine's prepared
arrays (read-only). Rust work (reviews, backtests, solves) runs with the GIL released, so
requests on different threads overlap.

Memory
------
Synthetic datasets are kept between requests in a least-recently-used cache bounded in bytes:
:data:`DATASET_CACHE_BYTES` (256 MiB by default; a service may change the module constant
before or while serving, it is read at every insertion). An entry is charged twice the bytes of
its arrays and frames, for the market layer and the rules engine's prepared arrays that live as
long as it. A dataset larger than the whole budget is used for its request and not kept, so
no sequence of small requests pins more than the budget. The bundled ``hk_tech`` sample is
one private instance loaded once (``indexlab.datasets.hk_tech()`` hands library callers their
own copies, so a caller's edit cannot reach the API). Inline datasets are never cached.
:func:`dataset_cache_info` reports the cache's state.

Deadlines and interruption
--------------------------
With ``deadline_seconds`` the work runs in a worker thread and :func:`handle` waits for it at
most that long, then returns a ``timeout`` error. The work itself checks a
:class:`~indexlab.api.errors.CancelToken` at its checkpoints and stops there, which frees the
worker thread:

* interrupted between: loading the dataset and the rest; each schedule's build and each
  schedule's backtest (a ``backtest`` request runs one schedule at a time); risk model, compile
  and solve of an ``optimise`` request; each chunk of ``SEARCH_CHUNK`` candidates of a
  ``search`` request; serialising the response;
* not interrupted: one call into the Rust core (the review loop of one ``build_index``, one
  schedule's ``backtest_batch``, one batch solve), generating a synthetic dataset, reading the
  bundled sample, and pandas/numpy work inside one stage. Such a call finishes (its result is
  dropped) before the thread exits. They are bounded by the size limits in
  :mod:`indexlab.api.models`.

A search interrupted by Ctrl-C (``KeyboardInterrupt`` inside the run) answers a ``cancelled``
error, never a success document holding the finished part only; so does a request whose
:class:`~indexlab.api.errors.CancelToken` was cancelled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import threading
import time
import types
import typing
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from indexlab import _core
from indexlab.api import models as m
from indexlab.api.errors import ApiError, CancelToken, DeadlineExceeded
from indexlab.errors import DataError, IndexlabError, InfeasibleError, SolverError
from indexlab.market import Market

__all__ = ["DATASET_CACHE_BYTES", "dataset_cache_info", "handle"]

log = logging.getLogger("indexlab.api")

#: Byte budget of the synthetic-dataset cache (LRU); read at every insertion. 0 disables it.
DATASET_CACHE_BYTES = 256 * 1024 * 1024

_synthetic_lock = threading.Lock()
_synthetic_cache: OrderedDict[tuple[int, float, int], tuple[Any, int]] = OrderedDict()
_synthetic_key_locks: dict[tuple[int, float, int], threading.Lock] = {}


# ---------------------------------------------------------------------------------- entry


def handle(request: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """Serve one request: validate it, run it, return a JSON-ready document.

    Parameters
    ----------
    request
        JSON text (or bytes) or an already-parsed dict with ``api_version: "1"`` and a ``kind``
        in ``build``, ``backtest``, ``optimise``, ``search``; see :func:`indexlab.api.schema`.

    Returns
    -------
    dict
        ``{"api_version", "kind", "indexlab_version", "request_id", "result", "diagnostics",
        "timings"}`` or, on failure, ``{"api_version", "kind", "indexlab_version",
        "request_id", "error": {"code", "message", "where"}, "timings"}``. Every value is a
        plain list, dict, str, number, bool or ``None`` (NaN becomes ``None``; dates are ISO
        strings), so ``json.dumps(doc, allow_nan=False)`` always works. Never raises.

    Examples
    --------
    >>> from indexlab.api import handle
    >>> doc = handle({"api_version": "1", "kind": "build",
    ...               "dataset": {"name": "synthetic", "n_securities": 120, "years": 2, "seed": 3},
    ...               "rules": "HSTECH", "overrides": {"n": 20}})
    >>> sorted(doc["result"]["latest"].values())[-1] <= 0.08 + 1e-12
    True
    >>> handle('{"api_version": "1", "kind": "nope"}')["error"]["code"]
    'invalid_request'
    """
    start = time.perf_counter()
    timings: dict[str, float] = {}
    kind: str | None = None
    request_id: str | None = None
    try:
        with _stage(timings, "parse"):
            data = _parse(request)
            kind = data.get("kind") if isinstance(data.get("kind"), str) else None
            rid = data.get("request_id")
            request_id = rid if isinstance(rid, str) else None
            req = _validate(data)
        token = CancelToken(req.deadline_seconds)
        if req.deadline_seconds is None:
            doc = _run(req, token, timings)
        else:
            doc = _run_with_deadline(req, token, timings)
    except ApiError as err:
        return _error_doc(err, kind, request_id, timings, start)
    except InfeasibleError as err:
        return _error_doc(ApiError("infeasible", str(err)), kind, request_id, timings, start)
    except DataError as err:
        return _error_doc(ApiError("data_error", str(err)), kind, request_id, timings, start)
    except SolverError as err:
        return _error_doc(ApiError("solver_error", str(err)), kind, request_id, timings, start)
    except Exception as err:
        incident = uuid.uuid4().hex[:12]
        log.exception("indexlab.api internal error (incident %s, kind %s)", incident, kind)
        what = "an indexlab error" if isinstance(err, IndexlabError) else "an unexpected error"
        msg = f"internal error: {what} (incident {incident}); the service log has the details"
        return _error_doc(ApiError("internal", msg), kind, request_id, timings, start)
    doc["timings"] = {**timings, "total": time.perf_counter() - start}
    return doc


def _parse(request: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(request, (str, bytes, bytearray)):
        size = len(request)
        if size > m.MAX_REQUEST_BYTES:
            raise ApiError(
                "invalid_request",
                f"request is {size} bytes; at most {m.MAX_REQUEST_BYTES} allowed "
                "(indexlab.api.models.MAX_REQUEST_BYTES)",
                [],
            )
        try:
            data = json.loads(request)
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError("invalid_request", f"request is not valid JSON: {err}", []) from None
        except RecursionError:
            raise _too_deep(None) from None
    else:
        data = request
    if not isinstance(data, Mapping):
        raise ApiError(
            "invalid_request", f"request must be a JSON object, got {type(data).__name__}", []
        )
    _check_depth(data)
    return dict(data)


def _too_deep(where: list[Any] | None) -> ApiError:
    found = "" if where is None else f" at {'.'.join(str(p) for p in where)}"
    return ApiError(
        "invalid_request",
        f"request is nested deeper than {m.MAX_NESTING} levels{found} "
        "(indexlab.api.models.MAX_NESTING)",
        [] if where is None else where,
    )


def _check_depth(data: Any) -> None:
    """Refuse objects and arrays nested deeper than ``MAX_NESTING`` (iteratively: a deep
    document must not exhaust the interpreter's stack here or later in validation)."""
    limit = m.MAX_NESTING
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > limit:
            raise _too_deep(path[:limit])
        if isinstance(value, Mapping):
            stack.extend((v, [*path, k]) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, [*path, i]) for i, v in enumerate(value))


def _validate(data: dict[str, Any]) -> m._Request:
    if data.get("api_version") != m.API_VERSION:
        raise ApiError(
            "invalid_request",
            f"api_version: expected {m.API_VERSION!r}, found {data.get('api_version')!r}",
            ["api_version"],
        )
    kind = data.get("kind")
    model = m.REQUEST_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ApiError(
            "invalid_request",
            f"kind: expected one of {sorted(m.REQUEST_MODELS)}, found {kind!r}",
            ["kind"],
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _from_validation(err) from None


def _from_validation(err: ValidationError) -> ApiError:
    errors = err.errors(include_url=False, include_input=False)
    first = errors[0]
    where = [p for p in first["loc"]]
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<request>'}: {e['msg']}" for e in errors]
    more = f" (and {len(parts) - 5} more)" if len(parts) > 5 else ""
    return ApiError("invalid_request", "; ".join(parts[:5]) + more, where)


def _run_with_deadline(
    req: m._Request, token: CancelToken, timings: dict[str, float]
) -> dict[str, Any]:
    box: dict[str, Any] = {}
    local: dict[str, float] = {}

    def work() -> None:
        try:
            box["doc"] = _run(req, token, local)
        except BaseException as err:  # handed back to the caller's thread
            box["err"] = err

    worker = threading.Thread(target=work, name=f"indexlab-api-{req.kind}", daemon=True)  # type: ignore[attr-defined]
    worker.start()
    worker.join(token.remaining())
    timings.update(local)
    if worker.is_alive():
        token.cancel()  # the worker stops at its next checkpoint
        raise DeadlineExceeded("waiting for the work", token.seconds)
    if "err" in box:
        raise box["err"]
    doc: dict[str, Any] = box["doc"]
    return doc


def _run(req: m._Request, token: CancelToken, timings: dict[str, float]) -> dict[str, Any]:
    diag = m.Diagnostics()
    warnings: list[str] = []
    counts: dict[str, int] = {}
    if isinstance(req, m.BuildRequest):
        result: Any = _build(req, token, timings, warnings, counts)
    elif isinstance(req, m.BacktestRequest):
        result = _backtest(req, token, timings, warnings, counts)
    elif isinstance(req, m.OptimiseRequest):
        result = _optimise(req, token, timings, warnings, counts)
    elif isinstance(req, m.SearchRequest):
        result = _search(req, token, timings, warnings, counts)
    else:  # pragma: no cover - REQUEST_MODELS and this chain list the same kinds
        raise ApiError("invalid_request", f"unsupported request {type(req).__name__}", ["kind"])
    token.check("serialise")
    with _stage(timings, "serialise"):
        diag = m.Diagnostics(warnings=warnings, counts=counts)
        response_model = m.RESPONSE_MODELS[req.kind]  # type: ignore[attr-defined]
        response = response_model(
            indexlab_version=_core.__version__,
            request_id=req.request_id,
            diagnostics=diag,
            result=result,
        )
        doc: dict[str, Any] = response.model_dump(mode="json")
    return doc


def _error_doc(
    err: ApiError,
    kind: str | None,
    request_id: str | None,
    timings: dict[str, float],
    start: float,
) -> dict[str, Any]:
    return {
        "api_version": m.API_VERSION,
        "indexlab_version": _core.__version__,
        "kind": kind,
        "request_id": request_id,
        "error": err.document(),
        "timings": {**timings, "total": time.perf_counter() - start},
    }


@contextlib.contextmanager
def _stage(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


# ---------------------------------------------------------------------------------- inputs


def _dataset(ref: Any, token: CancelToken, timings: dict[str, float]) -> Any:
    token.check("dataset")
    with _stage(timings, "dataset"):
        if isinstance(ref, m.HkTechData):
            from indexlab.datasets import _hk_tech_shared

            # The private cached instance: never handed to a caller, so no caller's edit of
            # their own hk_tech() copy reaches it.
            return _hk_tech_shared()
        if isinstance(ref, m.SyntheticData):
            return _synthetic(ref.n_securities, ref.years, ref.seed)
        return _inline(ref)


def _inline(ref: m.InlineData) -> Any:
    from indexlab.data import Dataset

    def frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame | None:
        return None if rows is None else pd.DataFrame.from_records(rows)

    try:
        return Dataset.from_frames(
            frame(ref.securities), frame(ref.panel), frame(ref.fx), frame(ref.benchmarks)
        )
    except DataError as err:
        raise ApiError("data_error", f"inline dataset: {err}", ["dataset"]) from None
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        # Input the data layer did not type itself (e.g. a date pandas cannot parse): still
        # the caller's data, not a bug of the service.
        raise ApiError(
            "data_error",
            f"inline dataset: {type(err).__name__}: {err}".splitlines()[0],
            ["dataset"],
        ) from None


def _nbytes(ds: Any) -> int:
    """Bytes a cached dataset pins: its arrays and frames, twice (see "Memory" above)."""
    total = int(np.asarray(ds.dates).nbytes)
    total += sum(int(np.asarray(a).nbytes) for a in ds.fields.values())
    for frame in (ds.securities, ds.fx, ds.benchmarks, ds.classification):
        if frame is not None:
            total += int(frame.memory_usage(index=True, deep=True).sum())
    return 2 * total


def dataset_cache_info() -> dict[str, int]:
    """The synthetic-dataset cache now: ``entries``, ``bytes`` charged and ``budget``.

    Examples
    --------
    >>> from indexlab.api.handlers import dataset_cache_info
    >>> sorted(dataset_cache_info())
    ['budget', 'bytes', 'entries']
    """
    with _synthetic_lock:
        used = sum(size for _, size in _synthetic_cache.values())
        return {"entries": len(_synthetic_cache), "bytes": used, "budget": DATASET_CACHE_BYTES}


def _synthetic(n: int, years: float, seed: int) -> Any:
    from indexlab.datasets import synthetic

    key = (n, years, seed)
    with _synthetic_lock:
        hit = _synthetic_cache.get(key)
        if hit is not None:
            _synthetic_cache.move_to_end(key)
            return hit[0]
        key_lock = _synthetic_key_locks.setdefault(key, threading.Lock())
    with key_lock:  # one thread generates; the others wait for it instead of repeating it
        with _synthetic_lock:
            hit = _synthetic_cache.get(key)
        if hit is not None:
            return hit[0]
        try:
            ds = synthetic(n_securities=n, years=years, seed=seed)
        finally:
            with _synthetic_lock:
                _synthetic_key_locks.pop(key, None)
        size = _nbytes(ds)
        with _synthetic_lock:
            budget = DATASET_CACHE_BYTES
            if size <= budget:
                used = sum(s for _, s in _synthetic_cache.values())
                while _synthetic_cache and used + size > budget:
                    _, (_, freed) = _synthetic_cache.popitem(last=False)
                    used -= freed
                _synthetic_cache[key] = (ds, size)
        return ds


#: What a rules field's value is checked against, by its declared type (see _check_value).
_EXPECTED = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _rules(spec: Any, overrides: Mapping[str, Any] | None, where: list[Any]) -> Any:
    from indexlab import rules as rules_mod

    try:
        base = (
            getattr(rules_mod, spec)
            if isinstance(spec, str)
            else rules_mod.IndexRules.from_dict(spec)
        )
    except (DataError, TypeError, ValueError, KeyError, OverflowError) as err:
        raise ApiError("invalid_request", f"rules: {_one_line(err)}", [*where, "rules"]) from None
    _check_rules(base, [*where, "rules"], "rules")
    if not overrides:
        return base
    try:
        out = base.replace(**overrides)
    except (DataError, TypeError, ValueError, KeyError, OverflowError) as err:
        raise ApiError(
            "invalid_request", f"overrides: {_one_line(err)}", [*where, "overrides"]
        ) from None
    _check_rules(out, [*where, "overrides"], "overrides")
    return out


def _check_rules(rules: Any, where: list[Any], label: str) -> None:
    """Check every field of a rule set against its declared type (``int`` fields hold integers,
    ``float`` fields finite numbers, tuples lists, ...), so that ``n=30.5`` or
    ``markets="HK"`` is an ``invalid_request`` naming the field, not a failure deep inside a
    build."""
    problem = _check_value(rules, type(rules), "")
    if problem is not None:
        field, expected, found = problem
        raise ApiError(
            "invalid_request",
            f"{label}: {field}: expected {expected}, found {found!r}",
            [*where, field],
        )


def _check_value(value: Any, tp: Any, path: str) -> tuple[str, str, Any] | None:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        real = [t for t in options if t is not type(None)]
        return _check_value(value, real[0], path) if len(real) == 1 else None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, tp):
            return path or "<rules>", f"a {tp.__name__} table", value
        hints = typing.get_type_hints(tp)
        for f in dataclasses.fields(tp):
            sub = f"{path}.{f.name}" if path else f.name
            found = _check_value(getattr(value, f.name), hints.get(f.name, Any), sub)
            if found is not None:
                return found
        return None
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, tuple):
            return path, "a list", value
        item = args[0] if args else Any
        for i, v in enumerate(value):
            found = _check_value(v, item, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if tp is bool:
        ok = isinstance(value, (bool, np.bool_))
    elif tp is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    elif tp is float:
        ok = (
            isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value))
        )
    elif tp is str:
        ok = isinstance(value, str)
    else:
        return None
    return None if ok else (path, _EXPECTED[tp], value)


def _costs(c: m.Costs) -> Any:
    from indexlab.backtest import HKCosts

    return HKCosts(**c.model_dump())


# ---------------------------------------------------------------------------------- JSON helpers


def _num(x: Any) -> float | None:
    v = float(x)
    return v if np.isfinite(v) else None


def _nums(a: Any) -> list[float | None]:
    arr = np.asarray(a, dtype=np.float64)
    return [v if np.isfinite(v) else None for v in arr.tolist()]


def _days(index: Any) -> list[str]:
    return [str(d) for d in pd.DatetimeIndex(index).strftime("%Y-%m-%d")]


def _jsonable(obj: Any) -> Any:
    """Plain JSON values from numpy, pandas, dataclasses and pydantic models (NaN -> None)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _num(obj)
    if isinstance(obj, (np.datetime64, pd.Timestamp)):
        return str(pd.Timestamp(obj).date())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, pd.DataFrame):
        frame = obj.reset_index() if not isinstance(obj.index, pd.RangeIndex) else obj
        return [{str(k): _jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]
    if isinstance(obj, pd.Series):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _jsonable(obj.to_dict())
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    return str(obj)


# ---------------------------------------------------------------------------------- build


def _build(
    req: m.BuildRequest,
    token: CancelToken,
    timings: dict[str, float],
    warnings: list[str],
    counts: dict[str, int],
) -> m.BuildResult:
    from indexlab.rules import build_index

    ds = _dataset(req.dataset, token, timings)
    rules = _rules(req.rules, req.overrides, [])
    token.check("build")
    with _stage(timings, "build"):
        hist = build_index(ds, rules, req.start, req.end)
    token.check("serialise")
    with _stage(timings, "serialise"):
        rev = hist.reviews
        reviews = [
            m.ReviewRow(
                review_date=r.review_date.date(),
                effective_date=r.effective_date.date(),
                event=str(r.event),
                id=str(r.id),
                weight=float(r.weight),
                capping_factor=_num(r.capping_factor),
                rank=None if pd.isna(r.rank) or int(r.rank) < 0 else int(r.rank),
                reason=str(r.reason),
            )
            for r in rev.itertuples(index=False)
        ]
        ch = hist.changes()
        changes = [
            m.ChangeRow(
                effective_date=pd.Timestamp(r.effective_date).date(),
                review_date=pd.Timestamp(r.review_date).date(),
                event=str(r.event),
                id=str(r.id),
                change=r.change,
            )
            for r in ch.itertuples(index=False)
        ]
        last_day = pd.Timestamp(hist.last_date)
        pending = rev[rev["effective_date"] > last_day]
        if len(pending):
            n_sets = pending["effective_date"].nunique()
            warnings.append(
                f"{n_sets} set(s) of weights take effect after the data's last date "
                f"{last_day.date()} (pending); 'latest' is the last set in force"
            )
        in_force = rev[rev["effective_date"] <= last_day]
        latest: dict[str, float] = {}
        latest_day = None
        if len(in_force):
            eff = in_force["effective_date"].max()
            cur = in_force[in_force["effective_date"] == eff]
            latest = {str(i): float(w) for i, w in zip(cur["id"], cur["weight"], strict=True)}
            latest_day = eff.date()
        counts.update(
            n_securities=len(ds.ids),
            n_dates=len(ds.dates),
            n_reviews=int(rev["review_date"].nunique()),
            n_weight_sets=int(rev["effective_date"].nunique()),
            n_rows=len(rev),
            n_changes=len(ch),
            n_latest=len(latest),
        )
        return m.BuildResult(
            rules=rules.to_dict(),
            reviews=reviews,
            changes=changes,
            latest=latest,
            latest_effective_date=latest_day,
        )


# ---------------------------------------------------------------------------------- backtest


def _backtest(
    req: m.BacktestRequest,
    token: CancelToken,
    timings: dict[str, float],
    warnings: list[str],
    counts: dict[str, int],
) -> m.BacktestResult:
    from indexlab.backtest import Schedule, backtest
    from indexlab.rules import build_index

    ds = _dataset(req.dataset, token, timings)
    schedules: dict[str, tuple[Any, Any, Any]] = {}
    for name, spec in req.schedules.items():
        token.check(f"schedule {name!r}")
        if isinstance(spec, m.RulesSchedule):
            rules = _rules(spec.rules, spec.overrides, ["schedules", name])
            with _stage(timings, "build"):
                try:
                    hist = build_index(ds, rules, spec.start, spec.end)
                except (DataError, InfeasibleError) as err:
                    raise type(err)(f"schedule {name!r}: {err}") from None
                schedules[name] = hist.weights_matrix()
        else:
            schedules[name] = Schedule(spec.dates, spec.ids, spec.weights).weights_matrix()
    start: Any = req.start
    if start is None:
        # backtest() starts at the latest first rebalance over all schedules; running them one
        # at a time (so that the deadline is checked between them) needs that date up front.
        firsts = [d[0] for d, _, _ in schedules.values() if len(d)]
        if not firsts:
            raise DataError("the schedules have no rebalance dates")
        start = pd.Timestamp(max(firsts)).date()
    costs = _costs(req.costs)
    parts = []
    for name, sched in schedules.items():
        token.check(f"backtest {name!r}")
        with _stage(timings, "backtest"):
            parts.append(
                backtest(
                    ds,
                    {name: sched},
                    costs=costs,
                    benchmark=req.benchmark,
                    start=start,
                    end=req.end,
                )
            )
    token.check("serialise")
    with _stage(timings, "serialise"):
        return _backtest_result(req, parts, warnings, counts)


def _backtest_result(
    req: m.BacktestRequest, parts: list[Any], warnings: list[str], counts: dict[str, int]
) -> m.BacktestResult:
    names = list(req.schedules)
    first = parts[0]
    index = first.levels.index
    values: dict[str, list[float | None]] = {}
    for name, part in zip(names, parts, strict=True):
        values[name] = _nums(part.levels[name])
    if "benchmark" in first.levels.columns:
        bench = first.levels["benchmark"]
        values["benchmark"] = _nums(bench)
        if bench.isna().any():
            warnings.append(
                f"benchmark {req.benchmark} has no level after "
                f"{bench.last_valid_index().date()}; relative metrics use the covered span"
            )
    metrics: dict[str, dict[str, float | str | None]] = {}
    turnover: dict[str, m.Series] = {}
    weights: list[m.WeightRow] = []
    for name, part in zip(names, parts, strict=True):
        row = part.metrics.loc[name]
        metrics[name] = {str(k): _jsonable(v) for k, v in row.items()}
        to = part.turnover[name]
        turnover[name] = m.Series(dates=_days(to.index), values={name: _nums(to)})  # type: ignore[arg-type]
        if req.include_weights:
            w = part.weights
            w = w[w["kind"] == "target"]
            weights.extend(
                m.WeightRow(schedule=name, date=pd.Timestamp(d).date(), id=str(i), weight=float(x))
                for d, i, x in zip(w["date"], w["id"], w["weight"], strict=True)
            )
    counts.update(
        n_schedules=len(names),
        n_days=len(index),
        n_rebalances=sum(len(p.turnover) for p in parts),
    )
    return m.BacktestResult(
        levels=m.Series(dates=_days(index), values=values),  # type: ignore[arg-type]
        metrics=metrics,
        turnover=turnover,
        weights=weights if req.include_weights else None,
    )


# ---------------------------------------------------------------------------------- optimise


def _optimise(
    req: m.OptimiseRequest,
    token: CancelToken,
    timings: dict[str, float],
    warnings: list[str],
    counts: dict[str, int],
) -> m.OptimiseResult:
    ds = _dataset(req.dataset, token, timings)
    with _stage(timings, "import"):  # cvxpy: seconds on the first request, then free
        from indexlab.optimise import RiskModel, ai_chain_model, compile
    token.check("risk model")
    with _stage(timings, "risk_model"):
        t = ds.date_index(req.date) if req.date is not None else len(ds.dates) - 1
        day = pd.Timestamp(ds.dates[t]).date()
        all_ids = [str(i) for i in ds.ids]
        position = {i: k for k, i in enumerate(all_ids)}
        mcap = ds.market_cap()[t]
        tr = ds.field("total_return") * ds.fx_to_hkd()
        if req.universe is not None:
            unknown = [i for i in req.universe if i not in position]
            if unknown:
                raise ApiError(
                    "invalid_request",
                    f"universe: ids not in the dataset: {unknown[:5]}",
                    ["universe"],
                )
            cols = np.array([position[i] for i in req.universe], dtype=np.int64)
        else:
            ok = np.isfinite(mcap) & (mcap > 0) & np.isfinite(tr[t])
            cols = np.flatnonzero(ok)
            if cols.size == 0:
                raise DataError(f"no names have a market cap and a price on {day}")
        ids = [all_ids[c] for c in cols]
        n = len(ids)
        t0 = max(0, t - req.lookback_days)
        if t - t0 < req.lookback_days:
            warnings.append(
                f"only {t - t0} daily returns before {day} (lookback_days={req.lookback_days})"
            )
        returns = Market.of(ds).daily_returns()[t0:t, cols]
        n_factors = min(req.n_factors, n)
        if n_factors < req.n_factors:
            warnings.append(f"n_factors lowered to {n_factors} (the universe has {n} names)")
        risk = RiskModel.from_returns(returns, n_factors=n_factors)
        bench = np.where(np.isfinite(mcap[cols]) & (mcap[cols] > 0), mcap[cols], 0.0)
        if req.bench is not None:
            bench = _override(bench, req.bench, ids, "bench")
        if not bench.sum() > 0:
            raise DataError(f"bench: the parent weights sum to {bench.sum()} on {day}")
        bench = bench / bench.sum()
        scores = ds.securities_at(day)["ai_score"].to_numpy(dtype=np.float64)[cols]  # known then
        if req.scores is not None:
            scores = _override(scores, req.scores, ids, "scores")
        if isinstance(req.mask, list):
            _known(req.mask, ids, "mask")
            member = set(req.mask)
            mask = np.array([1.0 if i in member else 0.0 for i in ids])
        elif isinstance(req.mask, dict):
            mask = _override(np.ones(n), req.mask, ids, "mask")
        else:
            mask = np.ones(n)
        if (mask < 0).any():
            raise ApiError("invalid_request", "mask: values must be >= 0", ["mask"])
        held = int((mask > 0).sum())
        if held * req.cap < 1.0 - 1e-12:
            raise InfeasibleError(
                f"{held} names x cap {req.cap:g} = {held * req.cap:.4g} < 1: the weights cannot "
                "reach 100%; allow more names or raise the cap"
            )
    token.check("compile")
    with _stage(timings, "compile"):
        problem, w = ai_chain_model(ids, bench, scores, risk, cap=req.cap, te_weight=req.te_weight)
        compiled = compile(problem)
    token.check("solve")
    with _stage(timings, "solve"):
        sol = compiled.solve(mask=mask, scores=scores, bench=bench)
    if sol.status.startswith("infeasible"):
        raise InfeasibleError(f"ai_chain on {day}: the solver reports {sol.status}")
    if sol.status != "optimal":
        raise SolverError(f"ai_chain on {day}: the solver stopped with status {sol.status!r}")
    x = np.asarray(sol.values[w.name()], dtype=np.float64)
    d = x - bench
    te2 = float(np.sum((risk.factor_root() @ d) ** 2) + d @ (risk.specific_var * d))
    counts.update(n_names=n, n_held=int((x > 1e-9).sum()), n_factors=n_factors)
    return m.OptimiseResult(
        model=req.model,
        date=day,
        status=sol.status,
        objective=_num(sol.objective),
        weights={i: _num(v) for i, v in zip(ids, x, strict=True)},
        ai_exposure=_num(scores @ x),
        tracking_error=_num(np.sqrt(max(te2, 0.0) * 252.0)),
        solve_path="fast" if compiled.uses_fast_path else "conic",
    )


def _known(keys: Any, ids: list[str], field: str) -> None:
    unknown = [k for k in keys if k not in set(ids)]
    if unknown:
        raise ApiError(
            "invalid_request", f"{field}: ids not in the universe: {unknown[:5]}", [field]
        )


def _override(
    base: np.ndarray, values: Mapping[str, float], ids: list[str], field: str
) -> np.ndarray:
    _known(values, ids, field)
    out = np.array(base, dtype=np.float64)
    pos = {i: k for k, i in enumerate(ids)}
    for k, v in values.items():
        if not np.isfinite(v):
            raise ApiError(
                "invalid_request", f"{field}[{k!r}]: expected a finite number", [field, k]
            )
        out[pos[k]] = v
    return out


# ---------------------------------------------------------------------------------- search

#: Candidates per evaluate chunk in a search request: the deadline is checked between chunks.
SEARCH_CHUNK = 50


def _search(
    req: m.SearchRequest,
    token: CancelToken,
    timings: dict[str, float],
    warnings: list[str],
    counts: dict[str, int],
) -> dict[str, Any]:
    from indexlab.search import MemberList, OptimisedCandidate, evaluate

    ds = _dataset(req.dataset, token, timings)
    c = req.candidates
    if isinstance(c, m.RulesGridCandidates):
        from indexlab.rules import grid

        base = _rules(c.rules, c.overrides, ["candidates"])
        try:
            candidates: list[Any] = list(grid(base, **c.axes))
        except (DataError, TypeError, ValueError, KeyError, OverflowError) as err:
            raise ApiError(
                "invalid_request", f"axes: {_one_line(err)}", ["candidates", "axes"]
            ) from None
        for k, variant in enumerate(candidates):
            _check_rules(variant, ["candidates", "axes", k], f"axes (variant {k})")
    elif isinstance(c, m.MemberCandidates):
        candidates = [MemberList(tuple(ids), cap=c.cap) for ids in c.members]
    else:
        candidates = [
            OptimisedCandidate(
                members=tuple(ids),
                cap=c.cap,
                te_weight=c.te_weight,
                te_budget=c.te_budget,
                min_adv_hkd=c.min_adv_hkd,
                connect_only=c.connect_only,
                markets=None if c.markets is None else tuple(c.markets),
                aum_hkd=c.aum_hkd,
                participation=c.participation,
                turnover_weight=c.turnover_weight,
                parent_weights=c.parent_weights,
            )
            for ids in c.members
        ]
    token.check("search")
    with _stage(timings, "search"):
        # The deadline is checked after every chunk of SEARCH_CHUNK candidates.
        res = evaluate(
            ds,
            candidates,
            start=req.start,
            end=req.end,
            costs=_costs(req.costs),
            benchmark=req.benchmark,
            chunk_size=SEARCH_CHUNK,
            progress=lambda done, total: token.check("search"),
        )
    if res.interrupted:
        # Ctrl-C inside the run: the table holds only the finished chunks. A success document
        # with fewer rows would read as the whole answer, so the request fails instead.
        raise ApiError(
            "cancelled",
            f"the search was interrupted after {len(res.table)} of {len(candidates)} "
            "candidates; no partial result is returned",
            "search",
        )
    token.check("serialise")
    counts.update(n_candidates=len(candidates))
    frontier = res.pareto()
    return {
        "table": _jsonable(res.table),
        "frontier": [str(name) for name in frontier.index],
        "interrupted": res.interrupted,
    }
