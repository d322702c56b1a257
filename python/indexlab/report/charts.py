"""The report's charts, as matplotlib figures (rendered to inline SVG or PNG by the callers).

Every chart has a title, axis units and a legend; time axes show dates. Matplotlib runs on the
non-interactive Agg backend and is imported lazily, so ``import indexlab`` never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from indexlab.errors import DataError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from indexlab.backtest import BacktestResult
    from indexlab.data import Dataset

__all__ = ["Chart", "Frontier", "build_charts", "frontier_of"]

#: AI layers from the compute end of the chain to names without an AI line
#: (docs/conventions.md, data model).
LAYERS = ("compute", "infrastructure", "cloud", "model", "application", "none")
LAYER_COLOURS = {
    "compute": "#b2182b",
    "infrastructure": "#ef8a62",
    "cloud": "#67a9cf",
    "model": "#8856a7",
    "application": "#2166ac",
    "none": "#bdbdbd",
    "unknown": "#f0f0f0",
}
#: Objective names that are better when larger; anything else is minimised by default.
_MAXIMISED = ("exposure", "return", "sharpe", "sortino", "information", "capacity", "score")
WIDTH, HEIGHT = 10.0, 4.2


@dataclass(frozen=True)
class Chart:
    """One chart of the report: a stable ``id`` (HTML anchor and PNG file name), a title and a
    matplotlib figure."""

    id: str
    title: str
    figure: Figure
    caption: str = ""


@dataclass(frozen=True)
class Frontier:
    """Candidates of a search over two objectives, normalised for plotting.

    ``table`` has one row per candidate indexed by name with the two objective columns and a
    boolean ``on_frontier``; ``senses`` is ``("min"|"max", "min"|"max")`` per objective.
    """

    table: pd.DataFrame
    x: str
    y: str
    senses: tuple[str, str]
    chosen: str | None


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "indexlab.report needs matplotlib: pip install 'indexlab[report]'"
        ) from err
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _sense(name: str) -> str:
    low = name.lower()
    return "max" if any(word in low for word in _MAXIMISED) else "min"


def _non_dominated(values: np.ndarray, senses: tuple[str, str]) -> np.ndarray:
    """Boolean mask of the rows no other row beats on both objectives (ties kept)."""
    v = values * np.array([1.0 if s == "min" else -1.0 for s in senses])  # all minimised
    keep = np.ones(len(v), dtype=bool)
    for i in range(len(v)):
        better_eq = (v <= v[i]).all(axis=1)
        strictly = (v < v[i]).any(axis=1)
        keep[i] = not (better_eq & strictly).any()
    return keep


def frontier_of(
    candidates: pd.DataFrame,
    objectives: Sequence[str] | None = None,
    chosen: str | None = None,
    senses: Sequence[str] | None = None,
) -> Frontier:
    """Normalise a table of search candidates for the Pareto chart.

    Parameters
    ----------
    candidates
        One row per candidate. Names come from a ``candidate`` (or ``name``) column, else the
        index. An ``on_frontier`` (or ``pareto``) boolean column marks frontier members; without
        one the non-dominated set is computed here.
    objectives
        The two objective columns (x, y). Default: ``tracking_error`` and ``ai_exposure`` when
        the table has both (a :class:`~indexlab.search.SearchResult` table), else the table's
        only two numeric columns other than the markers.
    chosen
        Name of the candidate to mark, or ``None``.
    senses
        ``"min"``/``"max"`` per objective. Default: ``"max"`` for names that read like
        exposure/return/Sharpe/capacity, else ``"min"`` (tracking error, turnover, risk).

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"tracking_error": [0.02, 0.05, 0.06], "ai_exposure": [0.3, 0.6, 0.4]},
    ...                  index=["a", "b", "c"])
    >>> frontier_of(c, chosen="b").table["on_frontier"].tolist()
    [True, True, False]
    """
    table = candidates.copy()
    for col in ("candidate", "name"):
        if col in table.columns:
            table = table.set_index(col)
            break
    table.index = pd.Index([str(i) for i in table.index], name="candidate")
    marker = next((c for c in ("on_frontier", "pareto") if c in table.columns), None)
    if objectives is None and {"tracking_error", "ai_exposure"} <= set(table.columns):
        objectives = ["tracking_error", "ai_exposure"]
    if objectives is None:
        numeric = [
            str(c)
            for c in table.columns
            if c != marker
            and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])
        ]
        if len(numeric) != 2:
            raise DataError(
                f"frontier: pass objectives=(x, y); the candidates table has numeric columns "
                f"{numeric}, expected exactly two"
            )
        objectives = numeric
    if len(objectives) != 2:
        raise DataError(f"frontier: expected two objective columns, got {list(objectives)}")
    x, y = (str(o) for o in objectives)
    missing = [c for c in (x, y) if c not in table.columns]
    if missing:
        raise DataError(
            f"frontier: objective columns {missing} not in the candidates table "
            f"(columns: {[str(c) for c in table.columns]})"
        )
    sx, sy = tuple(senses) if senses is not None else (_sense(x), _sense(y))
    for s in (sx, sy):
        if s not in ("min", "max"):
            raise DataError(f"frontier: senses must be 'min' or 'max', got {s!r}")
    if chosen is not None and str(chosen) not in table.index:
        raise DataError(f"frontier: chosen candidate {chosen!r} is not in the candidates table")
    values = table[[x, y]].to_numpy(dtype=np.float64)
    ok = np.isfinite(values).all(axis=1)
    if marker is not None:
        on = table[marker].to_numpy(dtype=bool)
    else:
        on = np.zeros(len(table), dtype=bool)
        on[ok] = _non_dominated(values[ok], (sx, sy))
    out = table[[x, y]].astype(np.float64)
    out["on_frontier"] = on & ok
    return Frontier(out, x, y, (sx, sy), None if chosen is None else str(chosen))


# ------------------------------------------------------------------------------ helpers


def _new(plt: Any, height: float = HEIGHT) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=(WIDTH, height), layout="constrained")
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.set_xlabel("date")


def _percent_axis(ax: Axes, decimals: int | None = None) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _series_colours(names: Sequence[str]) -> dict[str, str]:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
    return {n: palette[i % len(palette)] for i, n in enumerate(names)}


def _schedules(result: BacktestResult) -> list[str]:
    return [str(c) for c in result.levels.columns if c != "benchmark"]


def _target_panel(result: BacktestResult, schedule: str) -> pd.DataFrame:
    """Rebalance dates x ids of one schedule's target weights (0 where not held)."""
    w = result.weights
    w = w[(w["schedule"] == schedule) & (w["kind"] == "target")]
    panel = w.pivot_table(index="date", columns="id", values="weight", aggfunc="sum")
    return panel.fillna(0.0).sort_index()


def _step_stack(
    ax: Axes, panel: pd.DataFrame, end: pd.Timestamp, colours: Sequence[str], labels: Sequence[str]
) -> None:
    """Stacked areas of weights held from each rebalance to the next (step after)."""
    x = np.append(panel.index.to_numpy("datetime64[ns]"), np.datetime64(end, "ns"))
    vals = panel.to_numpy(dtype=np.float64)
    vals = np.vstack([vals, vals[-1:]])
    base = np.zeros(len(x))
    for j in range(vals.shape[1]):
        top = base + vals[:, j]
        ax.fill_between(x, base, top, step="post", color=colours[j], label=labels[j], linewidth=0.0)
        base = top


def _legend_below(fig: Figure) -> None:
    """One legend under the plot, so it never hides a line."""
    fig.legend(loc="outside lower center", ncol=4, frameon=False)


def _legend_outside(ax: Axes, **kwargs: Any) -> None:
    """Legend right of the axes, top entry first, matching the stack's order on screen."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        labels[::-1],
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
        **kwargs,
    )


def _subplots_per_schedule(plt: Any, n: int) -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(
        n, 1, figsize=(WIDTH, 2.6 * n + 1.0), layout="constrained", sharex=True, squeeze=False
    )
    out = list(axes[:, 0])
    for ax in out:
        ax.grid(True, color="#e0e0e0", linewidth=0.6)
        ax.set_axisbelow(True)
    return fig, out


# ------------------------------------------------------------------------------ charts


def levels_chart(result: BacktestResult, benchmark: str, dataset: Dataset | None = None) -> Chart:
    plt = _pyplot()
    fig, ax = _new(plt)
    lv = result.levels
    names = _schedules(result)
    colours = _series_colours(names)
    for n in names:
        ax.plot(lv.index, lv[n], label=n, color=colours[n], linewidth=1.4)
    if "benchmark" in lv.columns:
        ax.plot(
            lv.index,
            lv["benchmark"],
            label=f"{benchmark} (benchmark)",
            color="black",
            linewidth=1.1,
        )
    if dataset is not None:
        for other in dataset.benchmarks.columns:
            if str(other) == benchmark:
                continue
            b = dataset.benchmarks[other].reindex(lv.index)
            first = b.first_valid_index()
            if first is None:
                continue
            rebased = b / b.loc[first] * 1000.0
            ax.plot(
                lv.index, rebased, label=f"{other}", color="#7f7f7f", linewidth=1.0, linestyle="--"
            )
    ax.axhline(1000.0, color="#999999", linewidth=0.6)
    ax.set_ylabel("index points (base 1000)")
    ax.set_title(
        f"Index levels vs {benchmark}"
        + (" and the other bundled index" if dataset is not None else "")
    )
    _legend_below(fig)
    _date_axis(ax)
    return Chart(
        "levels",
        "Index levels against the benchmarks",
        fig,
        "Total-return levels in HKD, net of trading costs, rebased to 1000 at the start.",
    )


def drawdown_chart(result: BacktestResult, benchmark: str) -> Chart:
    plt = _pyplot()
    fig, ax = _new(plt)
    lv = result.levels
    names = _schedules(result)
    colours = _series_colours(names)
    cols = [*names, "benchmark"] if "benchmark" in lv.columns else names
    for n in cols:
        s = lv[n]
        dd = s / s.cummax() - 1.0
        label, colour = (
            (f"{benchmark} (benchmark)", "black") if n == "benchmark" else (n, colours[n])
        )
        ax.plot(lv.index, dd, label=label, color=colour, linewidth=1.2)
    _percent_axis(ax)
    ax.set_ylabel("drawdown from running peak (%)")
    ax.set_title("Drawdowns")
    _legend_below(fig)
    _date_axis(ax)
    return Chart(
        "drawdown", "Drawdowns", fig, "Fall from the running maximum of each level series."
    )


def layer_chart(result: BacktestResult, layers: pd.Series) -> Chart:
    plt = _pyplot()
    names = _schedules(result)
    fig, axes = _subplots_per_schedule(plt, len(names))
    end = result.levels.index[-1]
    for ax, name in zip(axes, names, strict=True):
        panel = _target_panel(result, name)
        layer = layers.reindex(panel.columns).fillna("unknown").astype(str)
        by_layer = panel.T.groupby(layer.to_numpy()).sum().T
        order = [lay for lay in (*LAYERS, "unknown") if lay in by_layer.columns]
        order += [c for c in by_layer.columns if c not in order]
        by_layer = by_layer[order]
        _step_stack(ax, by_layer, end, [LAYER_COLOURS.get(c, "#cccccc") for c in order], order)
        _percent_axis(ax)
        ax.set_ylim(0, 1)
        ax.set_ylabel("weight (%)")
        ax.set_title(f"{name}: weight by AI layer")
        _legend_outside(ax, title="AI layer")
    _date_axis(axes[-1])
    fig.suptitle("Weights by AI layer over time (target weights at each review)")
    return Chart(
        "weights-by-layer",
        "Weights by AI layer over time",
        fig,
        "Stacked target weights per AI layer, held from each review to the next.",
    )


def names_chart(result: BacktestResult, top: int, labels: pd.Series | None = None) -> Chart:
    plt = _pyplot()
    names = _schedules(result)
    fig, axes = _subplots_per_schedule(plt, len(names))
    end = result.levels.index[-1]
    cmap = plt.get_cmap("tab20")
    for ax, name in zip(axes, names, strict=True):
        panel = _target_panel(result, name)
        biggest = panel.mean().sort_values(ascending=False).index[:top]
        shown = panel[biggest].copy()
        shown["other"] = panel.drop(columns=biggest).sum(axis=1)
        text = [
            f"{i} {labels[i]}" if labels is not None and i in labels.index else str(i)
            for i in biggest
        ] + [f"other ({panel.shape[1] - len(biggest)} names)"]
        colours = [cmap(j % 20) for j in range(len(biggest))] + ["#d9d9d9"]
        _step_stack(ax, shown, end, colours, text)
        _percent_axis(ax)
        ax.set_ylim(0, 1)
        ax.set_ylabel("weight (%)")
        ax.set_title(f"{name}: top {len(biggest)} names by average weight")
        _legend_outside(ax, fontsize=7)
    _date_axis(axes[-1])
    fig.suptitle("Weights by name over time (target weights at each review)")
    return Chart(
        "weights-by-name",
        "Weights by name over time",
        fig,
        f"The {top} largest names by average target weight; the rest as 'other'.",
    )


def exposure_chart(result: BacktestResult) -> Chart:
    plt = _pyplot()
    fig, ax = _new(plt)
    ai = result.ai_exposure
    colours = _series_colours(_schedules(result))
    for n in ai.columns:
        ax.plot(ai.index, ai[n], label=str(n), color=colours.get(str(n), None), linewidth=1.3)
    _percent_axis(ax)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("AI exposure: weighted ai_score (%)")
    ax.set_title("AI exposure over time")
    _legend_below(fig)
    _date_axis(ax)
    return Chart(
        "ai-exposure",
        "AI exposure over time",
        fig,
        "sum of weight x ai_score with weights drifting daily between reviews.",
    )


def turnover_chart(result: BacktestResult) -> Chart:
    plt = _pyplot()
    fig, ax = _new(plt)
    to = result.turnover
    names = [str(c) for c in to.columns]
    colours = _series_colours(_schedules(result))
    pos = np.arange(len(to))
    width = 0.8 / max(len(names), 1)
    for j, n in enumerate(names):
        ax.bar(
            pos + (j - (len(names) - 1) / 2) * width,
            to[n].to_numpy(dtype=np.float64),
            width=width,
            label=n,
            color=colours.get(n),
        )
    step = max(1, len(pos) // 16)
    ax.set_xticks(pos[::step])
    ax.set_xticklabels([d.strftime("%Y-%m-%d") for d in to.index[::step]], rotation=45, ha="right")
    _percent_axis(ax)
    ax.set_xlabel("review (rebalance) date")
    ax.set_ylabel("traded fraction, sum |Δw| (%)")
    ax.set_title("Turnover per review")
    ax.legend(loc="upper right", framealpha=0.9)
    return Chart(
        "turnover",
        "Turnover per review",
        fig,
        "Traded fraction of index value at each review (0 at the initial build).",
    )


def frontier_chart(frontier: Frontier) -> Chart:
    plt = _pyplot()
    fig, ax = _new(plt, height=5.0)
    t = frontier.table
    off = t[~t["on_frontier"]]
    on = t[t["on_frontier"]].sort_values(frontier.x)
    ax.scatter(off[frontier.x], off[frontier.y], s=12, color="#bdbdbd", label="candidates")
    ax.plot(
        on[frontier.x], on[frontier.y], "-o", color="#1f77b4", markersize=4, label="Pareto frontier"
    )
    if frontier.chosen is not None:
        c = t.loc[frontier.chosen]
        ax.scatter(
            [c[frontier.x]],
            [c[frontier.y]],
            marker="*",
            s=260,
            color="#d62728",
            edgecolor="black",
            zorder=5,
            label=f"chosen: {frontier.chosen}",
        )
        ax.annotate(
            frontier.chosen,
            (c[frontier.x], c[frontier.y]),
            xytext=(8, 8),
            textcoords="offset points",
        )
    for axis, col, sense in (
        ("x", frontier.x, frontier.senses[0]),
        ("y", frontier.y, frontier.senses[1]),
    ):
        label = f"{col} ({'higher' if sense == 'max' else 'lower'} is better)"
        values = t[col].to_numpy(dtype=np.float64)
        fraction = np.isfinite(values).all() and np.nanmax(np.abs(values)) <= 1.5
        if axis == "x":
            ax.set_xlabel(label + (", %" if fraction else ""))
            if fraction:
                from matplotlib.ticker import PercentFormatter

                ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        else:
            ax.set_ylabel(label + (", %" if fraction else ""))
            if fraction:
                _percent_axis(ax)
    ax.set_title(
        f"Search: Pareto frontier of {frontier.y} vs {frontier.x} "
        f"({len(t)} candidates, {int(t['on_frontier'].sum())} on the frontier)"
    )
    ax.legend(loc="best", frameon=False)
    return Chart(
        "frontier",
        "Pareto frontier of the search",
        fig,
        "Every candidate in grey; the non-dominated ones joined; the chosen one starred.",
    )


def build_charts(
    result: BacktestResult | None,
    benchmark: str = "HSTECH",
    dataset: Dataset | None = None,
    frontier: Frontier | None = None,
    top_names: int = 10,
) -> list[Chart]:
    """All charts of a report, in page order (the layer chart needs ``dataset`` for layers)."""
    charts: list[Chart] = []
    if result is not None:
        charts += [levels_chart(result, benchmark, dataset), drawdown_chart(result, benchmark)]
        if dataset is not None:
            sec = dataset.securities.set_index("id")
            charts.append(layer_chart(result, sec["ai_layer"]))
            labels = sec["name"] if "name" in sec.columns else None
        else:
            labels = None
        charts += [
            names_chart(result, top_names, labels),
            exposure_chart(result),
            turnover_chart(result),
        ]
    if frontier is not None:
        charts.append(frontier_chart(frontier))
    return charts
