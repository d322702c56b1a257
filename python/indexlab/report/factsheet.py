"""A factsheet as ONE self-contained HTML page (inline CSS and SVG charts), or its charts as PNG.

The page follows a provider's factsheet: key facts, period returns, calendar-year returns
against HSTECH and HSI (price and total return, labelled), risk against the chosen benchmark,
the top 10 constituents, breakdowns by industry, AI layer and market, and turnover per review;
charts of the levels, drawdowns, AI-layer weights and turnover. Needs matplotlib.

Examples
--------
>>> import os, tempfile, indexlab
>>> from indexlab import analytics
>>> from indexlab.report import factsheet
>>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
>>> fs = analytics.factsheet(ds, indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=15)))
>>> page = factsheet.html(fs, os.path.join(tempfile.mkdtemp(), "factsheet.html"))
>>> 'id="top10"' in page.read_text()
True
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from indexlab.errors import DataError
from indexlab.report.charts import (
    LAYER_COLOURS,
    LAYERS,
    Chart,
    _date_axis,
    _legend_below,
    _new,
    _percent_axis,
    _pyplot,
    _series_colours,
)

if TYPE_CHECKING:
    from indexlab.analytics.factsheet import Factsheet

__all__ = ["SECTIONS", "charts", "html", "png"]

#: Section ids of the page, in order (the tests check each is present).
SECTIONS = (
    "key-facts",
    "period-returns",
    "calendar-years",
    "risk",
    "top10",
    "breakdown-industry",
    "breakdown-ai_layer",
    "breakdown-market",
    "turnover",
)
_RISK_LABELS = {
    "volatility": "volatility (annualised)",
    "max_drawdown": "max drawdown",
    "sharpe": "Sharpe ratio (rf 0)",
    "tracking_error": "tracking error",
    "information_ratio": "information ratio",
}
_PLAIN = {"sharpe", "information_ratio"}


def _pct(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return _html.escape(str(x))
    return "–" if not np.isfinite(v) else f"{v:.2%}"


def _num(x: Any, digits: int = 2) -> str:
    v = float(x)
    return "–" if not np.isfinite(v) else f"{v:.{digits}f}"


def _table(table_id: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = _html.escape
    h = "".join(f"<th>{esc(c)}</th>" for c in head)
    body = "".join(
        "<tr>" + f"<th>{r[0]}</th>" + "".join(f"<td>{c}</td>" for c in r[1:]) + "</tr>"
        for r in rows
    )
    return (
        f'<table class="metrics" id="{table_id}-table"><thead><tr>{h}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _returns_rows(frame: pd.DataFrame, columns: Sequence[str], label: Any) -> list[list[str]]:
    return [[_html.escape(label(i))] + [_pct(frame.at[i, c]) for c in columns] for i in frame.index]


def _billions(x: float) -> str:
    return "–" if not np.isfinite(x) else f"HK${x / 1e9:,.1f} bn"


def _sections(fs: Factsheet) -> list[tuple[str, str, str]]:
    """``(id, title, inner html)`` of each section, in :data:`SECTIONS` order."""
    esc = _html.escape
    ret_cols = [c for c in fs.period_returns.columns if c != "annualised"]
    cap = fs.market_cap
    facts = [
        ["Index", esc(fs.name)],
        ["Inception (first level)", f"{fs.inception:%Y-%m-%d}"],
        ["As of", f"{fs.as_of:%Y-%m-%d}"],
        ["Benchmark (risk)", esc(fs.benchmark)],
        ["Constituents", f"{fs.n_constituents} (weights of {fs.composition_date:%Y-%m-%d})"],
        ["Average market cap", _billions(cap["average_market_cap_hkd"])],
        ["Median market cap", _billions(cap["median_market_cap_hkd"])],
        ["Average free-float market cap", _billions(cap["average_ff_market_cap_hkd"])],
        ["Median free-float market cap", _billions(cap["median_ff_market_cap_hkd"])],
        ["Average one-way turnover per review", _pct(fs.turnover.mean())],
    ]
    out = [
        (
            "key-facts",
            "Key facts",
            _table("key-facts", ["", "value"], [[esc(a), b] for a, b in facts]),
        )
    ]
    ann = fs.period_returns["annualised"]
    out.append(
        (
            "period-returns",
            "Period returns",
            _table(
                "period-returns",
                ["period", *ret_cols],
                _returns_rows(
                    fs.period_returns, ret_cols, lambda i: f"{i} (annualised)" if ann[i] else str(i)
                ),
            )
            + "<p class='sub'>HKD, net of trading costs. Periods over a year are annualised; a "
            "blank cell: the history is shorter than the period.</p>",
        )
    )
    cal = fs.calendar_years
    out.append(
        (
            "calendar-years",
            "Calendar-year returns",
            _table(
                "calendar-years",
                ["year", *ret_cols, "partial year"],
                [
                    [str(y)]
                    + [_pct(cal.at[y, c]) for c in ret_cols]
                    + [esc(str(cal.at[y, "partial"]))]
                    for y in cal.index
                ],
            ),
        )
    )
    risk = fs.risk
    out.append(
        (
            "risk",
            f"Risk against {fs.benchmark}",
            _table(
                "risk",
                ["measure", *risk.columns],
                [
                    [esc(_RISK_LABELS.get(str(m), str(m)))]
                    + [
                        _num(risk.at[m, c]) if m in _PLAIN else _pct(risk.at[m, c])
                        for c in risk.columns
                    ]
                    for m in risk.index
                ],
            )
            + f"<p class='sub'>Daily price returns, 252 days a year; tracking error and "
            f"information ratio of the price index against {esc(fs.benchmark)} (price).</p>",
        )
    )
    top = fs.top10
    out.append(
        (
            "top10",
            "Top 10 constituents",
            _table(
                "top10",
                ["code", "name", "weight", "industry", "AI layer", "market"],
                [
                    [
                        esc(str(r.id)),
                        esc(str(r.name)),
                        _pct(r.weight),
                        esc(r.industry),
                        esc(r.ai_layer),
                        esc(r.market),
                    ]
                    for r in top.itertuples(index=False)
                ],
            ),
        )
    )
    titles = {"industry": "industry", "ai_layer": "AI layer", "market": "market"}
    for key, label in titles.items():
        b = fs.breakdowns[key]
        out.append(
            (
                f"breakdown-{key}",
                f"Weights by {label}",
                _table(
                    f"breakdown-{key}",
                    [label, "weight", "names"],
                    [
                        [esc(str(g)), _pct(b.at[g, "weight"]), str(int(b.at[g, "count"]))]
                        for g in b.index
                    ],
                ),
            )
        )
    to = fs.turnover
    out.append(
        (
            "turnover",
            "One-way turnover per review",
            _table(
                "turnover",
                ["rebalance", "one-way turnover"],
                [[f"{d:%Y-%m-%d}", _pct(v)] for d, v in to.items()],
            )
            + "<p class='sub'>sum |w<sub>new</sub> − w<sub>drifted</sub>| / 2 at each rebalance "
            "after the first.</p>",
        )
    )
    return out


# ------------------------------------------------------------------------------ charts


def charts(fs: Factsheet) -> list[Chart]:
    """The factsheet's charts (matplotlib figures): levels, drawdowns, AI layers, turnover."""
    plt = _pyplot()
    items = []
    lv = fs.levels
    colours = _series_colours(list(lv.columns))
    fig, ax = _new(plt)
    for c in lv.columns:
        bench = not c.startswith(fs.name + " ")
        ax.plot(
            lv.index,
            lv[c],
            label=c,
            color="black" if c.startswith(fs.benchmark + " ") else colours[c],
            linewidth=1.0 if bench else 1.4,
            linestyle="--" if bench else "-",
        )
    ax.axhline(1000.0, color="#999999", linewidth=0.6)
    ax.set_ylabel("index points (base 1000)")
    ax.set_title(f"{fs.name} against the benchmarks")
    _legend_below(fig)
    _date_axis(ax)
    items.append(
        Chart("fs-levels", "Index levels", fig, "HKD, net of trading costs, rebased to 1000.")
    )

    fig, ax = _new(plt)
    for c in lv.columns:
        s = lv[c].dropna()
        if s.empty:
            continue
        ax.plot(s.index, s / s.cummax() - 1.0, label=c, color=colours[c], linewidth=1.1)
    _percent_axis(ax)
    ax.set_ylabel("drawdown from running peak (%)")
    ax.set_title("Drawdowns")
    _legend_below(fig)
    _date_axis(ax)
    items.append(Chart("fs-drawdown", "Drawdowns", fig, "Fall from each series' running maximum."))

    fig, ax = _new(plt, height=3.2)
    b = fs.breakdowns["ai_layer"]["weight"]
    order = [x for x in LAYERS if x in b.index] + [x for x in b.index if x not in LAYERS]
    ax.barh(
        order, [float(b[x]) for x in order], color=[LAYER_COLOURS.get(x, "#999999") for x in order]
    )
    ax.invert_yaxis()
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("weight (%)")
    ax.set_title(f"Weights by AI layer on {fs.composition_date:%Y-%m-%d}")
    items.append(
        Chart("fs-ai-layer", "Weights by AI layer", fig, "Target weights at the last rebalance.")
    )

    fig, ax = _new(plt, height=3.2)
    to = fs.turnover
    pos = np.arange(len(to))
    ax.bar(pos, to.to_numpy(dtype=np.float64), color="#1f77b4")
    step = max(1, len(pos) // 16)
    ax.set_xticks(pos[::step])
    ax.set_xticklabels([d.strftime("%Y-%m-%d") for d in to.index[::step]], rotation=45, ha="right")
    _percent_axis(ax)
    ax.set_ylabel("one-way turnover (%)")
    ax.set_title("One-way turnover per review")
    items.append(Chart("fs-turnover", "Turnover per review", fig, "sum |Δw| / 2 per rebalance."))
    return items


def _close(items: Sequence[Chart]) -> None:
    import matplotlib.pyplot as plt

    for c in items:
        plt.close(c.figure)


def render(fs: Factsheet) -> str:
    """The whole factsheet page as a string."""
    from indexlab.report.page import CSS, svg_of

    esc = _html.escape
    items = charts(fs)
    try:
        figures = "".join(
            f'<section id="chart-{esc(c.id)}"><h2>{esc(c.title)}</h2><figure>{svg_of(c)}'
            f"<figcaption>{esc(c.caption)}</figcaption></figure></section>"
            for c in items
        )
    finally:
        _close(items)
    sections = _sections(fs)
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{inner}</section>'
        for sid, title, inner in sections
    )
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in fs.notes)
    title = f"{fs.name}: factsheet as of {fs.as_of:%d %B %Y}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><p class='sub'>Levels in HKD from {fs.inception:%Y-%m-%d}, net "
        f"of trading costs; risk against {esc(fs.benchmark)}.</p>"
        f"<nav>{nav}</nav>{notes}{body}{figures}</body></html>\n"
    )


def html(fs: Factsheet, path: Any, overwrite: bool = False) -> Path:
    """Write the factsheet as ONE self-contained HTML page and return its path.

    Raises
    ------
    DataError
        When ``path`` exists and ``overwrite`` is false, or cannot be written.
    """
    from indexlab.report import _write_text

    out = Path(path)
    if not overwrite and out.exists():
        raise DataError(f"{out} exists: pass overwrite=True (CLI: --force) to replace it")
    _write_text(out, render(fs), overwrite)
    return out


def png(fs: Factsheet, dir: Any, overwrite: bool = False, dpi: int = 110) -> list[Path]:
    """Write the factsheet's charts as ``<dir>/<chart id>.png`` and return the paths.

    Raises
    ------
    DataError
        A file that exists without ``overwrite``, or a folder that cannot be written.
    """
    folder = Path(dir)
    items = charts(fs)
    paths = []
    try:
        targets = [folder / f"{c.id}.png" for c in items]
        for p in targets:
            if p.exists() and not overwrite:
                raise DataError(f"{p} exists: pass overwrite=True (CLI: --force) to replace it")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for c, p in zip(items, targets, strict=True):
                c.figure.savefig(p, format="png", dpi=dpi, facecolor="white")
                paths.append(p)
        except OSError as err:
            raise DataError(f"cannot write {folder}: {err.strerror or err}") from None
    finally:
        _close(items)
    return paths
