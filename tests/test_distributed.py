"""indexlab.distributed: a search sharded over a dask cluster gives the local run's result.

The reference is the same search run in process (LocalExecutor, the default); the cluster is a
real ``LocalCluster`` with two worker processes, so every shared object and every task crosses
a process boundary (pickled) exactly as on a remote cluster.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import search
from indexlab.distributed import DaskExecutor, Executor, LocalExecutor
from indexlab.errors import DataError
from search_helpers import mixed

distributed = pytest.importorskip("distributed")

N_SEC, YEARS, SEED = 150, 3, 2


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return indexlab.datasets.synthetic(n_securities=N_SEC, years=YEARS, seed=SEED)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: 8787 may be taken (no dashboard w/o bokeh)
        silence_logs=50,  # logging.CRITICAL: no worker chatter in the test output
    )
    c = distributed.Client(cluster, timeout="60s")
    try:
        yield c
    finally:
        c.close(timeout=30)
        cluster.close(timeout=30)


def test_local_executor_maps_in_order_with_shared_arguments() -> None:
    ex = LocalExecutor()
    assert isinstance(ex, Executor) and ex.parallelism == 1
    assert ex.map(operator.sub, [10, 20, 30], ex.share(1)) == [9, 19, 29]
    assert ex.map(operator.neg, []) == []


def test_evaluate_rejects_an_object_that_is_not_an_executor(ds: indexlab.Dataset) -> None:
    with pytest.raises(DataError, match="executor must have share"):
        search.evaluate(ds, [], executor=object())  # type: ignore[arg-type]


def test_dask_executor_maps_in_order_and_broadcasts_shared_objects(client: object) -> None:
    ex = DaskExecutor(client)
    assert ex.parallelism == 4  # 2 workers x 1 thread x 2 tasks in flight
    handle = ex.share([1, 2])  # a list is shared whole, not element-wise
    assert len(client.who_has([handle])[handle.key]) == 2  # type: ignore[attr-defined]
    assert ex.map(operator.add, [[0], [5]], handle) == [[0, 1, 2], [5, 1, 2]]
    assert ex.map(operator.neg, list(range(40))) == [-x for x in range(40)]
    with pytest.raises(ZeroDivisionError):
        ex.map(operator.truediv, [1, 0], 0)
    with pytest.raises(ValueError, match="tasks_per_worker"):
        DaskExecutor(client, tasks_per_worker=0)


def test_evaluate_on_the_cluster_equals_the_local_run(ds: indexlab.Dataset, client: object) -> None:
    cands = mixed(ds, 4, edge_cases=True)
    opts = {"chunk_size": 3, "keep_levels": True, "keep_weights": True, "threads": 1}
    local = search.evaluate(ds, cands, **opts)  # type: ignore[arg-type]
    done: list[int] = []
    remote = search.evaluate(
        ds,
        iter(cands),  # a lazy stream: read a wave of chunks at a time
        executor=DaskExecutor(client),
        progress=lambda d, _t: done.append(d),
        **opts,  # type: ignore[arg-type]
    )
    assert len(local) == len(cands) == 14
    assert "equal15#12" in local.table.index  # the repeated name, renamed by position
    assert local.table.loc["too_few", "status"].startswith("infeasible")
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    assert local.levels is not None and remote.levels is not None
    pd.testing.assert_frame_equal(remote.levels, local.levels, check_exact=True)
    assert remote.weights.keys() == local.weights.keys()
    for name, s in local.weights.items():
        r = remote.weights[name]
        assert np.array_equal(r.weights, s.weights) and np.array_equal(r.dates, s.dates)
    assert done == [3, 6, 9, 12, 14]  # after every chunk, in order
    assert not remote.interrupted


def test_a_worker_error_is_raised_with_its_type_and_message(
    ds: indexlab.Dataset, client: object
) -> None:
    bad = [search.MemberList(["NOT-AN-ID"], name="ghost")]
    with pytest.raises(DataError, match=r"member list 'ghost' holds ids not in the dataset"):
        search.evaluate(ds, bad, executor=DaskExecutor(client))


def test_ctrl_c_on_the_cluster_returns_the_finished_waves(
    ds: indexlab.Dataset, client: object
) -> None:
    def stop(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    cands = mixed(ds, 4, edge_cases=True)
    local = search.evaluate(ds, cands, chunk_size=2, progress=stop)
    res = search.evaluate(ds, cands, chunk_size=2, progress=stop, executor=DaskExecutor(client))
    # The first wave (4 chunks of 2) was gathered; the bar stopped after its first chunk.
    assert res.interrupted and local.interrupted and len(res) == 2
    pd.testing.assert_frame_equal(res.table, local.table.iloc[:2], check_exact=True)


# ------------------------------------------------------------------------------ best_subset


def subset_problem(seed: int, n: int = 40, te: float = 10.0) -> tuple[object, object]:
    """An AI-chain problem on a random factor market (as in test_subset)."""
    from indexlab.optimise import RiskModel, ai_chain_model, compile

    rng = np.random.default_rng(seed)
    f = rng.normal(0.0, 1.0, (n, 3))
    a = rng.normal(0.0, 0.1, (3, 3))
    rm = RiskModel(f, a @ a.T + np.diag(np.full(3, 0.01)), rng.uniform(0.01, 0.05, n))
    scores = rng.uniform(0.0, 1.0, n)
    mcap = rng.lognormal(0.0, 1.0, n)
    prob, w = ai_chain_model(range(n), mcap / mcap.sum(), scores, rm, cap=0.2, te_weight=te)
    return compile(prob), w


def batch(compiled: object, masks: np.ndarray) -> dict[str, np.ndarray]:
    """``mask`` per instance, the other parameters at their current values."""
    out = {"mask": masks}
    for name, p in compiled.parameters.items():  # type: ignore[attr-defined]
        if name != "mask":
            out[name] = np.broadcast_to(p.value, (len(masks), *p.shape))
    return out


def test_a_compiled_problem_pickles_and_solves_the_same() -> None:
    import pickle

    compiled, _ = subset_problem(0)
    back = pickle.loads(pickle.dumps(compiled))
    masks = (np.random.default_rng(1).uniform(size=(5, 40)) < 0.5).astype(float)
    a = compiled.solve_batch(batch(compiled, masks))  # type: ignore[attr-defined]
    b = back.solve_batch(batch(compiled, masks))
    assert a.status == b.status and np.array_equal(a.objective, b.objective)
    for name, v in a.values.items():
        assert np.array_equal(v, b.values[name])


def _generic_on_worker(masks: np.ndarray, compiled: object) -> tuple[list[str], np.ndarray]:
    """On a fresh worker: cvxpy objects created after unpickling must not reuse the shipped
    problem's ids (cvxpy's id counter is per process)."""
    from indexlab.optimise import compile

    generic = compile(compiled.problem, fast_path=False)  # type: ignore[attr-defined]
    sol = generic.solve_batch(batch(compiled, masks))
    return sol.status, sol.objective


def test_the_generic_fallback_compiles_on_a_worker_as_here(client: object) -> None:
    from indexlab.optimise import compile

    compiled, _ = subset_problem(2)
    masks = (np.random.default_rng(3).uniform(size=(4, 40)) < 0.5).astype(float)
    generic = compile(compiled.problem, fast_path=False)  # type: ignore[attr-defined]
    here = generic.solve_batch(batch(compiled, masks))
    ex = DaskExecutor(client)
    [(status, objective)] = ex.map(_generic_on_worker, [masks], ex.share(compiled))
    assert status == here.status
    np.testing.assert_allclose(objective, here.objective, rtol=1e-9)


class CountingExecutor(DaskExecutor):
    def __init__(self, client: object) -> None:
        super().__init__(client)
        self.shards: list[int] = []

    def map(self, fn, items, *shared):  # type: ignore[no-untyped-def]
        self.shards.append(len(items))
        return super().map(fn, items, *shared)


@pytest.mark.parametrize("method", ["swap", "auto"])
def test_best_subset_on_the_cluster_equals_the_local_run(client: object, method: str) -> None:
    compiled, _ = subset_problem(1)
    opts = {"k": 8, "seed": 3, "method": method, "max_evaluations": 3000, "progress": False}
    local = search.best_subset(compiled, **opts)  # type: ignore[arg-type]
    ex = CountingExecutor(client)
    remote = search.best_subset(compiled, executor=ex, **opts)  # type: ignore[arg-type]
    assert max(ex.shards) == ex.parallelism  # the big batches were cut into shards
    assert np.array_equal(remote.mask, local.mask) and remote.mask.sum() <= 8
    assert remote.objective == local.objective and remote.bound == local.bound
    assert remote.evaluations == local.evaluations and remote.stop_reason == local.stop_reason
    cols = ["step", "method", "best_objective", "evaluations"]  # not the wall-clock column
    pd.testing.assert_frame_equal(remote.history[cols], local.history[cols], check_exact=True)
    for name, v in local.values.items():
        assert np.array_equal(remote.values[name], v)
