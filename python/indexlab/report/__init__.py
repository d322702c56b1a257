"""Reports: one self-contained HTML file, or the same charts as PNG files.

Charts: index levels against the benchmarks, drawdowns, weights by AI layer, weights by name,
AI exposure, turnover per review and (for a search) the Pareto frontier with the chosen
candidate marked; plus a metrics table in the HTML. Needs matplotlib (``pip install
'indexlab[report]'``).

Examples
--------
>>> import indexlab, indexlab.report, tempfile, os
>>> ds = indexlab.datasets.hk_tech()
>>> res = indexlab.report.demo_result(ds)  # HSTECH and AI_CHAIN presets, benchmark HSTECH
>>> out = tempfile.mkdtemp()
>>> page = indexlab.report.html(res, os.path.join(out, "report.html"), dataset=ds)
>>> page.name
'report.html'
>>> import pandas as pd
>>> cands = pd.DataFrame({"tracking_error": [0.02, 0.05, 0.06], "ai_exposure": [0.3, 0.6, 0.4]},
...                      index=["a", "b", "c"])
>>> [p.name for p in indexlab.report.png(None, out, frontier=cands, chosen="b")]
['frontier.png']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from indexlab.report.charts import Chart, Frontier, build_charts, frontier_of

if TYPE_CHECKING:
    from indexlab.backtest import BacktestResult
    from indexlab.data import Dataset
    from indexlab.rules.model import IndexRules

__all__ = [
    "Chart",
    "Frontier",
    "charts",
    "demo_result",
    "frontier_of",
    "html",
    "methodology_html",
    "png",
    "read",
]

#: Schema-metadata keys of a search table (kind ``search``) that the report reads.
KIND_KEY = "indexlab:kind"
OBJECTIVES_KEY = "indexlab:objectives"  # JSON list [x, y]
SENSES_KEY = "indexlab:senses"  # JSON list ["min"|"max", "min"|"max"], optional
CHOSEN_KEY = "indexlab:chosen"  # candidate name, optional


def _frontier(
    frontier: pd.DataFrame | Frontier | None,
    chosen: str | None,
    objectives: Sequence[str] | None,
    senses: Sequence[str] | None,
) -> Frontier | None:
    if frontier is None or isinstance(frontier, Frontier):
        return frontier
    return frontier_of(frontier, objectives=objectives, chosen=chosen, senses=senses)


def charts(
    result: BacktestResult | None,
    frontier: pd.DataFrame | Frontier | None = None,
    chosen: str | None = None,
    objectives: Sequence[str] | None = None,
    senses: Sequence[str] | None = None,
    dataset: Dataset | None = None,
    benchmark: str = "HSTECH",
    top_names: int = 10,
) -> list[Chart]:
    """The report's charts as :class:`Chart` objects (matplotlib figures), in page order.

    Arguments as for :func:`html`. Close the figures (``matplotlib.pyplot.close(c.figure)``)
    when done with them.
    """
    return build_charts(
        result,
        benchmark=benchmark,
        dataset=dataset,
        frontier=_frontier(frontier, chosen, objectives, senses),
        top_names=top_names,
    )


def _close(items: Sequence[Chart]) -> None:
    import matplotlib.pyplot as plt

    for c in items:
        plt.close(c.figure)


def html(
    result: BacktestResult | None,
    path: Any,
    frontier: pd.DataFrame | Frontier | None = None,
    chosen: str | None = None,
    title: str = "indexlab backtest report",
    *,
    objectives: Sequence[str] | None = None,
    senses: Sequence[str] | None = None,
    dataset: Dataset | None = None,
    benchmark: str = "HSTECH",
    top_names: int = 10,
    overwrite: bool = False,
) -> Path:
    """Write ONE self-contained HTML report (inline CSS and SVG; opens with no network).

    Parameters
    ----------
    result
        A :class:`~indexlab.BacktestResult` (``None`` for a frontier-only page).
    path
        The ``.html`` file to write.
    frontier
        Optional search candidates: a DataFrame with one row per candidate (name in a
        ``candidate`` column or the index) and two objective columns, or a :class:`Frontier`.
        See :func:`frontier_of` for the defaults.
    chosen
        The candidate to mark on the frontier.
    title
        Page title.
    objectives, senses
        The frontier's two objective columns and ``"min"``/``"max"`` for each.
    dataset
        The backtest's dataset: gives the AI layer of each id (the layer chart needs it), the
        names, and the other bundled index (e.g. HSI beside an HSTECH benchmark).
    benchmark
        Name of the result's ``benchmark`` column, for labels.
    top_names
        Names shown one by one in the weights-by-name chart (the rest are "other").
    overwrite
        Replace an existing file at ``path``; without it an existing file raises (before any
        chart is drawn).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    DataError
        When ``path`` exists and ``overwrite`` is false, or cannot be written.

    Examples
    --------
    >>> import indexlab, indexlab.report, pandas as pd, tempfile, os
    >>> cands = pd.DataFrame({"tracking_error": [0.02, 0.05, 0.04],
    ...                       "ai_exposure": [0.3, 0.6, 0.4]}, index=["a", "b", "c"])
    >>> p = indexlab.report.html(None, os.path.join(tempfile.mkdtemp(), "f.html"),
    ...                          frontier=cands, chosen="b")
    >>> 'id="chart-frontier"' in p.read_text()
    True
    """
    from indexlab.report.page import render

    out = Path(path)
    if not overwrite and out.exists():
        raise _exists(out)
    items = charts(result, frontier, chosen, objectives, senses, dataset, benchmark, top_names)
    notes = []
    if result is not None and dataset is None:
        notes.append(
            "Weights by AI layer: not shown, pass dataset= (the AI layer of each id comes from "
            "the dataset's securities)."
        )
    subtitle = ""
    if result is not None:
        lv = result.levels
        subtitle = (
            f"{', '.join(str(c) for c in lv.columns if c != 'benchmark')} from "
            f"{lv.index[0]:%Y-%m-%d} to {lv.index[-1]:%Y-%m-%d} ({len(lv)} trading days); "
            f"benchmark {benchmark}; levels in HKD, net of trading costs."
        )
    try:
        text = render(
            title, subtitle, items, None if result is None else result.metrics, notes=notes
        )
    finally:
        _close(items)
    _write_text(out, text, overwrite)
    return out


def _exists(path: Path) -> Exception:
    from indexlab.errors import DataError

    return DataError(
        f"{path} exists: expected a new file name; pass overwrite=True (CLI: --force) to replace it"
    )


def _write_text(out: Path, text: str, overwrite: bool) -> None:
    from indexlab.errors import DataError

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # "x" refuses an existing file atomically (it may have appeared while drawing).
        with out.open("w" if overwrite else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise _exists(out) from None
    except OSError as err:
        raise DataError(f"cannot write {out}: {err.strerror or err}") from None


def png(
    result: BacktestResult | None,
    dir: Any,
    frontier: pd.DataFrame | Frontier | None = None,
    chosen: str | None = None,
    *,
    objectives: Sequence[str] | None = None,
    senses: Sequence[str] | None = None,
    dataset: Dataset | None = None,
    benchmark: str = "HSTECH",
    top_names: int = 10,
    dpi: int = 110,
    overwrite: bool = False,
) -> list[Path]:
    """Write the same charts as :func:`html` as PNG files ``<dir>/<chart id>.png``.

    Returns the paths written (ids: ``levels``, ``drawdown``, ``weights-by-layer`` (with
    ``dataset``), ``weights-by-name``, ``ai-exposure``, ``turnover``, ``frontier`` (with
    ``frontier``)). Without ``overwrite``, a chart file that already exists raises
    :class:`~indexlab.DataError` before any file is written.
    """
    from indexlab.errors import DataError

    folder = Path(dir)
    items = charts(result, frontier, chosen, objectives, senses, dataset, benchmark, top_names)
    paths = []
    try:
        targets = [folder / f"{c.id}.png" for c in items]
        if not overwrite:
            for p in targets:
                if p.exists():
                    raise _exists(p)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(f"cannot create {folder}: {err.strerror or err}") from None
        for c, p in zip(items, targets, strict=True):
            try:
                with p.open("wb" if overwrite else "xb") as f:
                    c.figure.savefig(f, format="png", dpi=dpi, facecolor="white")
            except FileExistsError:
                raise _exists(p) from None
            except OSError as err:
                raise DataError(f"cannot write {p}: {err.strerror or err}") from None
            paths.append(p)
    finally:
        _close(items)
    return paths


def read(path: Any) -> tuple[BacktestResult | None, Frontier | None]:
    """Read a Parquet file for a report: a backtest result, or a search table with a frontier.

    Dispatches on the schema-metadata key ``indexlab:kind``: ``backtest`` (written by
    :meth:`BacktestResult.to_parquet`) gives the result; ``search`` gives the candidates table
    with its objectives (``indexlab:objectives``, a JSON list of two column names), optional
    senses (``indexlab:senses``) and chosen candidate (``indexlab:chosen``). A missing,
    damaged or foreign file raises :class:`~indexlab.DataError` naming it.
    """
    import pyarrow.parquet as pq

    from indexlab._backtest_io import READ_ERRORS, parquet_error
    from indexlab.backtest import BacktestResult
    from indexlab.errors import DataError

    try:
        raw = pq.read_schema(path).metadata or {}
        meta = {k.decode(): v.decode() for k, v in raw.items()}
    except (*READ_ERRORS, UnicodeDecodeError) as err:
        raise parquet_error(path, err, "backtest or search") from None
    kind = meta.get(KIND_KEY)
    if kind == "backtest":
        return BacktestResult.from_parquet(path), None
    if kind == "search":
        try:
            table = pd.read_parquet(path)
            objectives = json.loads(meta[OBJECTIVES_KEY]) if OBJECTIVES_KEY in meta else None
            senses = json.loads(meta[SENSES_KEY]) if SENSES_KEY in meta else None
        except READ_ERRORS as err:
            raise parquet_error(path, err, "search") from None
        try:
            return None, frontier_of(table, objectives, meta.get(CHOSEN_KEY), senses)
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
    raise DataError(
        f"{path}: expected a Parquet file with schema metadata {KIND_KEY!r} = 'backtest' or "
        f"'search', found {kind!r}"
    )


def demo_result(dataset: Dataset | None = None, start: str = "2021-01-01") -> BacktestResult:
    """A small backtest for demos: the HSTECH and AI_CHAIN presets on ``hk_tech()`` vs HSTECH.

    The sample's HSTECH preset becomes feasible (enough eligible names for its caps) from 2021.
    """
    import indexlab
    from indexlab import rules

    ds = indexlab.datasets.hk_tech() if dataset is None else dataset
    schedules = {
        name: indexlab.build_index(ds, preset, start=start)
        for name, preset in (("HSTECH preset", rules.HSTECH), ("AI_CHAIN preset", rules.AI_CHAIN))
    }
    return indexlab.backtest(ds, schedules, benchmark="HSTECH")


def methodology_html(
    rules: IndexRules,
    path: Any = None,
    *,
    overwrite: bool = False,
    as_of: Any = None,
) -> str:
    """A rule set's methodology document as ONE self-contained HTML page.

    The same content as :meth:`IndexRules.methodology` (Markdown), with inline CSS only: no
    scripts, fonts, stylesheets, images or links outside the file. Needs no matplotlib.

    Parameters
    ----------
    rules
        The :class:`~indexlab.rules.IndexRules` to describe.
    path
        Optional ``.html`` file to write (its folder is created).
    overwrite
        Replace an existing file at ``path``; without it an existing file raises.
    as_of
        The date from which the next four reviews are listed (default: today).

    Returns
    -------
    str
        The HTML page (also written to ``path`` when given).

    Raises
    ------
    DataError
        When ``path`` exists and ``overwrite`` is false.

    Examples
    --------
    >>> import os, tempfile
    >>> from indexlab import report, rules
    >>> out = os.path.join(tempfile.mkdtemp(), "hstech.html")
    >>> page = report.methodology_html(rules.HSTECH, out, as_of="2026-01-01")
    >>> "http" in page, "<script" in page, os.path.exists(out)
    (False, False, True)
    >>> report.methodology_html(rules.HSTECH, out)
    Traceback (most recent call last):
    ...
    indexlab.errors.DataError: ... exists; pass overwrite=True to replace it
    """
    from indexlab.errors import DataError
    from indexlab.rules.methodology import methodology

    text = methodology(rules, "html", as_of=as_of)
    if path is not None:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            # "x" refuses an existing file atomically.
            with out.open("w" if overwrite else "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            raise DataError(f"{out} exists; pass overwrite=True to replace it") from None
    return text
