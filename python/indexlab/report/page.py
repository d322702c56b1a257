"""The self-contained HTML page: inline CSS, charts as inline SVG, the metrics as an HTML table.

Nothing on the page points outside the file (no scripts, fonts, stylesheets or images fetched):
matplotlib writes text as SVG paths, and the SVG prolog (XML declaration, DTD reference,
RDF metadata) is dropped before inlining.
"""

from __future__ import annotations

import html as _html
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from indexlab.report.charts import Chart

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 0 auto; max-width: 1100px; padding: 1.5em; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.sub { color: #666; margin-top: 0; }
nav a { margin-right: 1em; color: #1f77b4; text-decoration: none; }
figure { margin: 0.5em 0 1.5em 0; }
figure svg { width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
table.metrics { border-collapse: collapse; font-size: 0.9em; }
table.metrics th, table.metrics td { border: 1px solid #ddd; padding: 0.3em 0.7em; }
table.metrics td { text-align: right; font-variant-numeric: tabular-nums; }
table.metrics th { background: #f5f5f5; text-align: left; }
p.note { color: #8a6d3b; background: #fcf8e3; padding: 0.5em; }
"""

#: How each metric is shown: percent, plain number, or date.
PERCENT = {
    "total_return",
    "annual_return",
    "volatility",
    "max_drawdown",
    "tracking_error",
    "average_turnover",
    "ai_exposure",
}
LABELS = {
    "total_return": "total return",
    "annual_return": "annualised return",
    "volatility": "volatility (annualised)",
    "sharpe": "Sharpe ratio",
    "sortino": "Sortino ratio",
    "max_drawdown": "max drawdown",
    "drawdown_peak": "drawdown peak",
    "drawdown_trough": "drawdown trough",
    "calmar": "Calmar ratio",
    "tracking_error": "tracking error vs benchmark",
    "information_ratio": "information ratio",
    "beta": "beta vs benchmark",
    "correlation": "correlation with benchmark",
    "average_turnover": "average turnover per review",
    "ai_exposure": "average AI exposure",
}

_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_XMLNS = re.compile(r'\s+xmlns(:xlink)?="http://www\.w3\.org/[^"]*"')


def svg_of(chart: Chart) -> str:
    """The chart as an ``<svg>`` element ready to inline (no prolog, no external references)."""
    import matplotlib

    buf = io.StringIO()
    # A per-chart salt keeps the SVG ids (clip paths, glyphs) unique across charts on one page
    # and the output deterministic.
    with matplotlib.rc_context({"svg.hashsalt": f"indexlab-{chart.id}", "svg.fonttype": "path"}):
        chart.figure.savefig(buf, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _PROLOG.sub("", buf.getvalue(), count=1))
    # Inside HTML the parser puts <svg> and xlink:href in their namespaces itself, so the
    # namespace declarations (the page's only URLs) can go.
    return _XMLNS.sub("", svg)


def _cell(metric: str, value: object) -> str:
    if isinstance(value, pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(value)
        return "" if pd.isna(ts) else ts.strftime("%Y-%m-%d")
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _html.escape(str(value))
    if np.isnan(x):
        return "–"
    return f"{x:.2%}" if metric in PERCENT else f"{x:.2f}"


def metrics_table(metrics: pd.DataFrame) -> str:
    """Metrics (schedules x metrics) as an HTML table with metrics as rows."""
    head = "".join(f"<th>{_html.escape(str(c))}</th>" for c in metrics.index)
    rows = []
    for col in metrics.columns:
        label = _html.escape(LABELS.get(str(col), str(col)))
        cells = "".join(f"<td>{_cell(str(col), metrics.at[i, col])}</td>" for i in metrics.index)
        rows.append(f"<tr><th>{label}</th>{cells}</tr>")
    return (
        '<table class="metrics" id="metrics-table"><thead><tr><th>metric</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render(
    title: str,
    subtitle: str,
    charts: Sequence[Chart],
    metrics: pd.DataFrame | None,
    notes: Sequence[str] = (),
) -> str:
    """The whole HTML document."""
    esc = _html.escape
    nav = []
    body = []
    if metrics is not None:
        nav.append('<a href="#metrics">Metrics</a>')
        body.append(
            '<section id="metrics"><h2>Metrics</h2>'
            f"{metrics_table(metrics)}"
            "<p class='sub'>Returns, volatility and drawdowns from daily levels (252 days a "
            "year); tracking error, information ratio, beta and correlation against the "
            "benchmark over the days it covers.</p></section>"
        )
    for c in charts:
        nav.append(f'<a href="#chart-{esc(c.id)}">{esc(c.title)}</a>')
        body.append(
            f'<section id="chart-{esc(c.id)}"><h2>{esc(c.title)}</h2><figure>{svg_of(c)}'
            f"<figcaption>{esc(c.caption)}</figcaption></figure></section>"
        )
    note_html = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><p class='sub'>{esc(subtitle)}</p>"
        f"<nav>{''.join(nav)}</nav>{note_html}{''.join(body)}"
        "</body></html>\n"
    )
