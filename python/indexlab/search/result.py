"""The table a search returns, its Pareto frontier and its Parquet round trip."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab.errors import DataError

__all__ = ["DEFAULT_OBJECTIVES", "SearchResult", "pareto_mask"]

#: Frontier objectives used when none are given.
DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = (
    ("ai_exposure", "max"),
    ("tracking_error", "min"),
    ("liquidity_capacity", "max"),
    ("average_turnover", "min"),
)

#: Columns where smaller is better (``top``/``best`` sort them ascending by default).
_SMALLER_IS_BETTER = {"tracking_error", "average_turnover", "volatility", "beta"}


def _pareto_2d(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Non-dominated points when minimising both columns: sort, then one sweep (O(n log n)).

    After sorting by ``(a, b)``, every earlier point has ``a_q <= a_p``; ``p`` is dominated iff
    an earlier point has a smaller ``b``, or the same best ``b`` with a smaller ``a`` (exact
    duplicates do not dominate each other).
    """
    order = np.lexsort((b, a))
    keep = np.zeros(len(a), dtype=bool)
    best_b = np.inf
    best_a = np.inf
    for p in order:
        if b[p] < best_b:
            keep[p] = True
            best_b, best_a = b[p], a[p]
        elif b[p] == best_b and a[p] == best_a:
            keep[p] = True
    return keep


def _pareto_general(x: npt.NDArray[np.float64], block: int = 512) -> npt.NDArray[np.bool_]:
    """Non-dominated rows of ``x`` (minimise every column), blockwise pairwise comparison."""
    n = x.shape[0]
    keep = np.ones(n, dtype=bool)
    for s in range(0, n, block):
        p = x[s : s + block]
        le = np.all(x[None, :, :] <= p[:, None, :], axis=2)
        lt = np.any(x[None, :, :] < p[:, None, :], axis=2)
        keep[s : s + block] = ~np.any(le & lt, axis=1)
    return keep


def pareto_mask(values: Any, senses: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Which rows of ``values`` (n x m) are non-dominated; ``senses[j]`` is "max" or "min".

    Rows with a NaN are never on the frontier. Two objectives use an O(n log n) sweep, more
    use a pairwise fallback.

    Examples
    --------
    >>> from indexlab.search import pareto_mask
    >>> pareto_mask([[1, 1], [2, 0], [0, 0], [2, 2]], ["max", "min"]).tolist()
    [False, True, False, False]
    """
    x = np.array(values, dtype=np.float64, ndmin=2)
    if x.shape[1] != len(senses):
        raise DataError(f"{x.shape[1]} objective columns but {len(senses)} senses")
    for j, s in enumerate(senses):
        if s not in ("max", "min"):
            raise DataError(f"objective sense must be 'max' or 'min', got {s!r}")
        if s == "max":
            x[:, j] = -x[:, j]
    ok = ~np.isnan(x).any(axis=1)
    out = np.zeros(x.shape[0], dtype=bool)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return out
    sub = x[rows]
    if sub.shape[1] == 1:
        out[rows] = sub[:, 0] == sub[:, 0].min()
    elif sub.shape[1] == 2:
        out[rows] = _pareto_2d(sub[:, 0], sub[:, 1])
    else:
        out[rows] = _pareto_general(sub)
    return out


@dataclass
class SearchResult:
    """What :func:`indexlab.search.evaluate` returns.

    * ``table``: one row per candidate (index ``candidate``): parameters (``kind``, ``cap``,
      ``n``, ``weighting``, ``te_weight``, ``params`` JSON), ``status`` (``"ok"`` or why it is
      infeasible), ``members`` at the last review (comma-separated) and ``n_members``,
      ``ai_exposure``, ``liquidity_capacity`` (HKD), the metrics of :func:`indexlab.metrics`
      (``tracking_error`` and ``information_ratio`` vs the benchmark) and ``average_turnover``.
    * ``levels``: dates x candidates (base 1000, HKD, net of costs) when ``keep_levels``.
    * ``weights``: candidate -> :class:`indexlab.Schedule` when ``keep_weights``.
    * ``interrupted``: True when Ctrl-C stopped the run (the table holds the finished chunks).
    """

    table: pd.DataFrame
    levels: pd.DataFrame | None = None
    weights: dict[str, Any] = field(default_factory=dict, repr=False)
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.table)

    def feasible(self) -> pd.DataFrame:
        """The rows whose status is ``"ok"``."""
        return self.table[self.table["status"] == "ok"]

    def pareto(self, objectives: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
        """The non-dominated candidates over ``objectives`` (``(column, "max"|"min")`` pairs).

        Examples
        --------
        >>> import pandas as pd
        >>> from indexlab.search import SearchResult
        >>> t = pd.DataFrame({"status": "ok", "ai_exposure": [0.5, 0.7, 0.4],
        ...                   "tracking_error": [0.02, 0.05, 0.03]}, index=["a", "b", "c"])
        >>> list(SearchResult(t).pareto([("ai_exposure", "max"), ("tracking_error", "min")]).index)
        ['a', 'b']
        """
        objs = list(DEFAULT_OBJECTIVES if objectives is None else objectives)
        missing = [c for c, _ in objs if c not in self.table.columns]
        if missing:
            raise DataError(f"unknown objective column(s) {missing}; columns are {self.columns}")
        t = self.feasible()
        mask = pareto_mask(t[[c for c, _ in objs]].to_numpy(dtype=np.float64), [s for _, s in objs])
        return t[mask]

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.table.columns]

    def top(self, n: int = 10, by: str | tuple[str, str] = "information_ratio") -> pd.DataFrame:
        """The ``n`` best feasible candidates by one column (``by`` or ``(by, "max"|"min")``;
        a bare name sorts descending except tracking error, turnover, volatility and beta)."""
        col, sense = (
            (by, "min" if by in _SMALLER_IS_BETTER else "max") if isinstance(by, str) else by
        )
        if col not in self.table.columns:
            raise DataError(f"unknown column {col!r}; columns are {self.columns}")
        return self.feasible().sort_values(col, ascending=sense == "min", kind="stable").head(n)

    def best(self, by: str | tuple[str, str] = "information_ratio") -> pd.Series:
        """The best feasible candidate's row (see :meth:`top`)."""
        top = self.top(1, by)
        if top.empty:
            raise DataError("no feasible candidate in this result")
        return top.iloc[0]

    # ------------------------------------------------------------------ storage

    def to_parquet(
        self, path: str | Path, chosen: str | None = None, *, overwrite: bool = False
    ) -> None:
        """Write the table to ``path`` (Parquet) and, if kept, the levels beside it
        (``<stem>.levels.parquet``); :meth:`from_parquet` reads both back.

        The file also says what it is for ``indexlab report``: kind ``search``, the frontier's
        two objectives (tracking error across, AI exposure up) and the ``chosen`` candidate.

        Parameters
        ----------
        path
            The ``.parquet`` file to write (its folder is created).
        chosen
            The candidate ``indexlab report`` marks on the frontier.
        overwrite
            Replace existing files; without it an existing table or levels file raises
            :class:`~indexlab.DataError` before anything is written.

        Examples
        --------
        >>> import os, tempfile, pandas as pd
        >>> from indexlab.search import SearchResult
        >>> res = SearchResult(pd.DataFrame({"status": ["ok"]}, index=["a"]))
        >>> path = os.path.join(tempfile.mkdtemp(), "search.parquet")
        >>> res.to_parquet(path)
        >>> res.to_parquet(path)
        Traceback (most recent call last):
        ...
        indexlab.errors.DataError: search table ... exists: expected a new file name; ...
        >>> res.to_parquet(path, overwrite=True)
        >>> len(SearchResult.from_parquet(path))
        1
        """
        import pyarrow as pa

        from indexlab._backtest_io import write_table

        path = Path(path)
        levels_path = _levels_path(path)
        if not overwrite:
            for p, what in ((path, "search table"), (levels_path, "search levels")):
                if p == levels_path and self.levels is None:
                    continue
                if p.exists():
                    raise DataError(
                        f"{what} {p} exists: expected a new file name; pass overwrite=True to "
                        "replace it"
                    )
        table = pa.Table.from_pandas(self.table, preserve_index=True)
        meta = dict(table.schema.metadata or {})
        meta[b"indexlab.search"] = json.dumps(
            {"interrupted": self.interrupted, "levels": self.levels is not None}
        ).encode()
        meta[b"indexlab:kind"] = b"search"
        meta[b"indexlab:objectives"] = json.dumps(["tracking_error", "ai_exposure"]).encode()
        meta[b"indexlab:senses"] = json.dumps(["min", "max"]).encode()
        if chosen is not None:
            meta[b"indexlab:chosen"] = str(chosen).encode()
        write_table(table.replace_schema_metadata(meta), path, overwrite, "search table")
        if self.levels is not None:
            levels = pa.Table.from_pandas(self.levels, preserve_index=True)
            write_table(levels, levels_path, overwrite, "search levels")

    @classmethod
    def from_parquet(cls, path: str | Path) -> SearchResult:
        """Read what :meth:`to_parquet` wrote.

        Raises
        ------
        DataError
            When the file (or its levels file) is missing, damaged or not a search table,
            naming the file.
        """
        import pyarrow.parquet as pq

        from indexlab._backtest_io import READ_ERRORS, parquet_error

        path = Path(path)
        try:
            table = pq.read_table(path)
            info = json.loads((table.schema.metadata or {}).get(b"indexlab.search", b"{}"))
            frame = table.to_pandas()
        except READ_ERRORS as err:
            raise parquet_error(path, err, "search table") from None
        if not isinstance(info, dict):
            raise DataError(f"{path}: expected a JSON object in 'indexlab.search', found {info!r}")
        levels = None
        if info.get("levels"):
            lp = _levels_path(path)
            try:
                levels = pd.read_parquet(lp)
            except READ_ERRORS as err:
                raise parquet_error(lp, err, "search levels") from None
        return cls(frame, levels=levels, interrupted=bool(info.get("interrupted", False)))


def _levels_path(path: Path) -> Path:
    return path.with_name(path.stem + ".levels.parquet")
