"""The fast path's parameter snapshots: copies that keep a batch's values for its lazily
computed duals, reusing the arrays of snapshots no result holds any more."""

from __future__ import annotations

import gc
import threading

import numpy as np
from indexlab.optimise.snapshots import SnapshotPool


def test_a_snapshot_keeps_the_values_it_was_given() -> None:
    pool = SnapshotPool()
    mask = np.arange(6.0).reshape(2, 3)
    snap = pool.take({"mask": mask})
    mask[:] = -1.0
    np.testing.assert_array_equal(snap.arrays["mask"], np.arange(6.0).reshape(2, 3))
    assert not np.shares_memory(snap.arrays["mask"], mask)


def test_arrays_are_reused_only_once_their_snapshot_is_gone() -> None:
    pool = SnapshotPool(slots=1)
    first = pool.take({"mask": np.ones((4, 3))})
    kept = first.arrays["mask"]
    live = pool.take({"mask": np.zeros((4, 3))})  # the first is alive: fresh arrays
    assert not np.shares_memory(live.arrays["mask"], kept)
    np.testing.assert_array_equal(kept, 1.0)
    del first
    gc.collect()
    again = pool.take({"mask": np.full((4, 3), 2.0)})
    assert again.arrays["mask"] is kept
    np.testing.assert_array_equal(again.arrays["mask"], 2.0)
    np.testing.assert_array_equal(live.arrays["mask"], 0.0)


def test_other_shapes_and_oversized_batches_get_fresh_arrays() -> None:
    pool = SnapshotPool(slots=1, max_bytes=1000)
    first = pool.take({"mask": np.ones((4, 3))})
    kept = first.arrays["mask"]
    del first
    other = pool.take({"mask": np.ones((5, 3))})  # another batch size
    assert other.arrays["mask"] is not kept
    big = pool.take({"mask": np.ones((100, 3))})  # 2,400 bytes: never kept
    big_arrays = big.arrays["mask"]
    del big
    gc.collect()
    assert pool.take({"mask": np.ones((100, 3))}).arrays["mask"] is not big_arrays


def test_threads_sharing_a_pool_each_keep_their_own_values() -> None:
    pool = SnapshotPool()
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        held: list[tuple[object, np.ndarray]] = []  # a few live snapshots at a time
        for _ in range(300):
            values = rng.random((8, 5))
            held.append((pool.take({"scores": values}), values.copy()))
            values[:] = -1.0
            held = held[-3:]
            for snap, expected in held:
                if not np.array_equal(snap.arrays["scores"], expected):  # type: ignore[attr-defined]
                    errors.append(f"thread {seed}: a live snapshot was overwritten")

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_claimed_arrays_have_the_shapes_asked_for_and_are_reused_once_free() -> None:
    pool = SnapshotPool(slots=1)
    first = pool.claim({"theta": (5, 4)})
    arrays = first.arrays["theta"]
    assert arrays.shape == (5, 4) and arrays.dtype == np.float64 and arrays.flags.c_contiguous
    assert pool.claim({"theta": (5, 4)}).arrays["theta"] is not arrays  # the first is alive
    del first
    gc.collect()
    assert pool.claim({"theta": (5, 4)}).arrays["theta"] is arrays
    assert pool.claim({"theta": (6, 4)}).arrays["theta"].shape == (6, 4)
