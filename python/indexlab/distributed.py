"""Scale a search out: run its batches in this process or on a ``dask.distributed`` cluster.

:func:`indexlab.search.evaluate` and :func:`indexlab.search.best_subset` take an
``executor=``. An executor does two things:

* ``share(obj)``: ship an object every task needs (the evaluation context with the dataset,
  the compiled problem) to the workers once, and return a handle to pass to :meth:`map`;
* ``map(fn, items, *shared)``: ``[fn(item, *shared) for item in items]``, in order, where each
  task carries only its own item (a chunk of candidates, a shard of a batch).

:class:`LocalExecutor` (the default) is that list comprehension, in process.
:class:`DaskExecutor` hands the same calls to an existing ``dask.distributed`` client:
``client.scatter(obj, broadcast=True)`` once per search, then ``client.map`` + ``client.gather``.
Results are gathered in submission order and every batch is computed exactly as in the local
run, so the result is the same, row for row, whatever the cluster.

Workers need the same indexlab version (and the ``optimise`` extra for optimiser
candidates) installed: tasks reference indexlab's functions by module path.

Examples
--------
>>> from indexlab.distributed import LocalExecutor
>>> ex = LocalExecutor()
>>> ex.map(lambda x, k: x * k, [1, 2, 3], ex.share(10))
[10, 20, 30]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["DaskExecutor", "Executor", "LocalExecutor"]

R = TypeVar("R")


@runtime_checkable
class Executor(Protocol):
    """Where a search runs its batches (see the module docs)."""

    @property
    def parallelism(self) -> int:
        """How many tasks are worth having in flight at once (a search submits that many
        chunks together and gathers them before reading more)."""
        ...

    def share(self, obj: Any) -> Any:
        """Make ``obj`` available to every task; returns the handle to pass to :meth:`map`."""
        ...

    def map(self, fn: Callable[..., R], items: Sequence[Any], *shared: Any) -> list[R]:
        """``[fn(item, *shared) for item in items]``, in order."""
        ...


class LocalExecutor:
    """Run every task in this process, one after the other (the default).

    Examples
    --------
    >>> LocalExecutor().map(divmod, [7, 9], 4)
    [(1, 3), (2, 1)]
    """

    @property
    def parallelism(self) -> int:
        return 1

    def share(self, obj: Any) -> Any:
        return obj

    def map(self, fn: Callable[..., R], items: Sequence[Any], *shared: Any) -> list[R]:
        return [fn(item, *shared) for item in items]

    def __repr__(self) -> str:
        return "LocalExecutor()"


class DaskExecutor:
    """Run tasks on a ``dask.distributed`` cluster through an existing client.

    Parameters
    ----------
    client : distributed.Client
        A connected client, e.g. ``Client("tcp://scheduler:8786")`` or
        ``Client(LocalCluster(n_workers=4))``. The executor does not close it.
    tasks_per_worker : int
        Tasks kept in flight per worker thread (default 2: a worker starts its next task while
        the driver receives the last result).

    Notes
    -----
    Shared objects are scattered once with ``broadcast=True`` and reused by every task of the
    search; tasks are submitted with ``pure=False`` (no hashing of large candidate lists) and
    gathered in submission order. An exception raised by a task is raised here, with its type.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from indexlab import search  # doctest: +SKIP
    >>> from indexlab.distributed import DaskExecutor  # doctest: +SKIP
    >>> with Client(LocalCluster(n_workers=2)) as client:  # doctest: +SKIP
    ...     res = search.evaluate(ds, candidates, executor=DaskExecutor(client))
    """

    def __init__(self, client: Any, tasks_per_worker: int = 2) -> None:
        if tasks_per_worker < 1:
            raise ValueError(f"tasks_per_worker must be >= 1, got {tasks_per_worker}")
        self.client = client
        self.tasks_per_worker = tasks_per_worker

    @property
    def parallelism(self) -> int:
        threads = sum(self.client.nthreads().values())
        return max(1, threads) * self.tasks_per_worker

    def share(self, obj: Any) -> Any:
        # A one-element list so that a list or dict is scattered whole, not element-wise;
        # hash=False: tokenising a dataset is slow and the handle lives for one search only.
        [future] = self.client.scatter([obj], broadcast=True, hash=False)
        return future

    def map(self, fn: Callable[..., R], items: Sequence[Any], *shared: Any) -> list[R]:
        if not items:
            return []
        n = len(items)
        futures = self.client.map(fn, list(items), *[[s] * n for s in shared], pure=False)
        try:
            return list(self.client.gather(futures))
        finally:
            for f in futures:
                f.release()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"


def resolve(executor: Executor | None) -> Executor:
    """``executor``, or a :class:`LocalExecutor` when it is ``None``; checks the protocol."""
    if executor is None:
        return LocalExecutor()
    if not isinstance(executor, Executor):
        from indexlab.errors import DataError

        raise DataError(
            f"executor must have share(obj), map(fn, items, *shared) and parallelism "
            f"(LocalExecutor, DaskExecutor), got {type(executor).__name__}"
        )
    return executor
