"""Copies of a batch's parameter values for results that read them later (the fast path's
lazily computed duals), reusing the copies of results that are gone.

A copy into fresh memory pays a page fault for each 4 KiB page it writes, and the allocator
hands large arrays back to the system when they are freed, so every batch pays again: for
1,000 instances of a 300-name problem that costs more than the copy itself (a few
microseconds an instance on the fast path, whose solve takes tens). Copying into arrays that
no live result holds any more writes to pages already mapped.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


class Snapshot:
    """A batch's parameter values as they were when it was solved. Its arrays are its own
    while it lives; once it is garbage, its pool may copy a later batch into them."""

    __slots__ = ("__weakref__", "arrays")

    def __init__(self, arrays: dict[str, Array]) -> None:
        self.arrays = arrays


def _same_layout(kept: Mapping[str, Array], shapes: Mapping[str, tuple[int, ...]]) -> bool:
    return kept.keys() == shapes.keys() and all(kept[k].shape == s for k, s in shapes.items())


class SnapshotPool:
    """Snapshots of parameter arrays, reusing the arrays of dead snapshots.

    At most ``slots`` sets of arrays are kept, each of at most ``max_bytes``; a batch that
    finds no free set of its shapes gets fresh arrays. Safe to share between threads: a set is
    claimed under a lock and belongs to one live snapshot at a time.

    Examples
    --------
    >>> import numpy as np
    >>> pool = SnapshotPool()
    >>> mask = np.ones((2, 3))
    >>> snap = pool.take({"mask": mask})
    >>> mask[:] = 0.0  # the caller refills its array; the snapshot keeps the solved values
    >>> snap.arrays["mask"].tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, slots: int = 2, max_bytes: int = 256 << 20) -> None:
        self._slots_max = slots
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._slots: list[tuple[weakref.ref[Snapshot], dict[str, Array]]] = []

    def take(self, arrays: Mapping[str, Array]) -> Snapshot:
        """A snapshot holding copies of ``arrays`` (float64, ``(B, size)`` each)."""
        snap = self.claim({name: a.shape for name, a in arrays.items()})
        for name, a in arrays.items():
            np.copyto(snap.arrays[name], a)
        return snap

    def claim(self, shapes: Mapping[str, tuple[int, ...]]) -> Snapshot:
        """A snapshot with C-contiguous float64 arrays of these shapes for the caller to fill
        (e.g. the workers that read the values anyway); their values are undefined until
        then."""
        with self._lock:
            for i, (ref, kept) in enumerate(self._slots):
                if ref() is None and _same_layout(kept, shapes):
                    snap = Snapshot(kept)
                    self._slots[i] = (weakref.ref(snap), kept)
                    return snap
        snap = Snapshot({name: np.empty(shape) for name, shape in shapes.items()})
        self._keep(snap)
        return snap

    def _keep(self, snap: Snapshot) -> None:
        """Remember a fresh snapshot's arrays, in a free slot or one whose snapshot is dead."""
        if sum(a.nbytes for a in snap.arrays.values()) > self._max_bytes:
            return
        entry = (weakref.ref(snap), snap.arrays)
        with self._lock:
            for i, (ref, _) in enumerate(self._slots):
                if ref() is None:
                    self._slots[i] = entry
                    return
            if len(self._slots) < self._slots_max:
                self._slots.append(entry)
