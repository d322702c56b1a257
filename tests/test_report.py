"""Reports: one self-contained HTML file, PNG charts, Parquet round trips and the CLI.

The browser check opens the page in headless Chromium (Debian's ``chromium`` package; .ci/run
installs it) and fails on any console message or uncaught error; it skips only where no
chromium binary exists.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import indexlab
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from indexlab import report
from indexlab.cli import main

pytest.importorskip("matplotlib", reason="indexlab.report needs the 'report' extra (matplotlib)")

CHART_IDS = [
    "levels",
    "drawdown",
    "weights-by-layer",
    "weights-by-name",
    "ai-exposure",
    "turnover",
    "frontier",
]
CHART_TITLES = [
    "Index levels against the benchmarks",
    "Drawdowns",
    "Weights by AI layer over time",
    "Weights by name over time",
    "AI exposure over time",
    "Turnover per review",
    "Pareto frontier of the search",
]


def candidates() -> pd.DataFrame:
    """A hand-made search table: a beats c and d beats e on both objectives; a, b, d are the
    non-dominated set (lower tracking error and higher AI exposure are better)."""
    return pd.DataFrame(
        {
            "candidate": ["a", "b", "c", "d", "e"],
            "tracking_error": [0.02, 0.05, 0.04, 0.08, 0.09],
            "ai_exposure": [0.30, 0.45, 0.28, 0.60, 0.50],
        }
    )


@pytest.fixture(scope="module")
def dataset() -> indexlab.Dataset:
    return indexlab.datasets.hk_tech()


@pytest.fixture(scope="module")
def result(dataset: indexlab.Dataset) -> indexlab.BacktestResult:
    return report.demo_result(dataset)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, result, dataset) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    written = report.html(result, out, frontier=candidates(), chosen="b", dataset=dataset)
    assert written == out
    return out


# ------------------------------------------------------------------------------ HTML


def test_html_has_every_chart_and_the_metrics(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for chart_id, title in zip(CHART_IDS, CHART_TITLES, strict=True):
        section = re.search(
            rf'<section id="chart-{chart_id}"><h2>([^<]*)</h2>(.*?)</section>', text, flags=re.S
        )
        assert section is not None, chart_id
        assert section.group(1) == title
        assert "<svg" in section.group(2) and "</svg>" in section.group(2)
    assert text.count("<svg") == len(CHART_IDS)
    assert 'id="metrics-table"' in text


def test_html_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, flags=re.I)
    assert not re.search(r"https?://", text)  # not even namespace or DTD URLs
    assert "<script" not in text.lower()
    assert "@import" not in text and "url(" not in text.replace("url(#", "")
    assert "<link" not in text.lower()


def test_metrics_table_matches_numpy(page: Path, result) -> None:
    text = page.read_text(encoding="utf-8")
    row = re.search(r"<tr><th>total return</th>(.*?)</tr>", text).group(1)  # type: ignore[union-attr]
    cells = re.findall(r"<td>([^<]*)</td>", row)
    schedules = [c for c in result.levels.columns if c != "benchmark"]
    levels = result.levels[schedules].to_numpy()
    expected = [f"{x:.2%}" for x in levels[-1] / levels[0] - 1.0]
    assert cells == expected
    row = re.search(r"<tr><th>max drawdown</th>(.*?)</tr>", text).group(1)  # type: ignore[union-attr]
    dd = [1.0 - (col / np.maximum.accumulate(col)).min() for col in levels.T]
    assert re.findall(r"<td>([^<]*)</td>", row) == [f"{x:.2%}" for x in dd]


def test_frontier_marks_the_non_dominated_and_the_chosen() -> None:
    f = report.frontier_of(candidates(), chosen="b")
    assert (f.x, f.y, f.senses) == ("tracking_error", "ai_exposure", ("min", "max"))
    assert f.table["on_frontier"].to_dict() == {
        "a": True,
        "b": True,
        "c": False,
        "d": True,
        "e": False,
    }
    with pytest.raises(indexlab.DataError, match="chosen candidate 'zz'"):
        report.frontier_of(candidates(), chosen="zz")
    # A search table's many numeric columns default to tracking error vs AI exposure ...
    assert report.frontier_of(candidates().assign(turnover=0.1)).x == "tracking_error"
    # ... any other table needs the two objectives named.
    other = candidates().rename(columns={"ai_exposure": "score"}).assign(turnover=0.1)
    with pytest.raises(indexlab.DataError, match="expected exactly two"):
        report.frontier_of(other)


def test_layer_chart_needs_the_dataset(result) -> None:
    import matplotlib.pyplot as plt

    items = report.charts(result)
    for c in items:
        plt.close(c.figure)
    assert [c.id for c in items] == [
        c for c in CHART_IDS if c not in ("weights-by-layer", "frontier")
    ]


# ------------------------------------------------------------------------------ PNG


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_png_writes_every_chart(tmp_path: Path, result, dataset) -> None:
    from PIL import Image

    paths = report.png(result, tmp_path, frontier=candidates(), chosen="b", dataset=dataset)
    assert sorted(p.name for p in paths) == sorted(f"{c}.png" for c in CHART_IDS)
    for p in paths:
        width, height = png_size(p)
        assert 800 <= width <= 2000 and 300 <= height <= 2000, (p.name, width, height)
        with Image.open(p) as img:
            img.verify()
        with Image.open(p) as img:
            grey = np.asarray(img.convert("L"), dtype=np.float64)
        assert (grey < 200).mean() > 0.01, f"{p.name} is nearly blank"


# ------------------------------------------------------------------------------ Parquet + CLI


def test_backtest_result_parquet_round_trip(tmp_path: Path, result) -> None:
    path = tmp_path / "bt.parquet"
    result.to_parquet(path)
    assert pq.read_schema(path).metadata[b"indexlab:kind"] == b"backtest"
    back = indexlab.BacktestResult.from_parquet(path)
    for name in ("levels", "metrics", "turnover", "weights", "ai_exposure"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name))
    other = tmp_path / "plain.parquet"
    pd.DataFrame({"x": [1.0]}).to_parquet(other)
    with pytest.raises(indexlab.DataError, match="not a BacktestResult file"):
        indexlab.BacktestResult.from_parquet(other)


def test_cli_report_from_backtest_and_search_files(
    tmp_path: Path, result, capsys: pytest.CaptureFixture[str]
) -> None:
    bt = tmp_path / "bt.parquet"
    result.to_parquet(bt)
    search = tmp_path / "search.parquet"
    table = pa.Table.from_pandas(candidates(), preserve_index=False)
    meta = {
        b"indexlab:kind": b"search",
        b"indexlab:objectives": json.dumps(["tracking_error", "ai_exposure"]).encode(),
        b"indexlab:chosen": b"d",
    }
    pq.write_table(table.replace_schema_metadata(meta), search)

    out = tmp_path / "out.html"
    assert main(["report", str(bt), "-o", str(out), "--frontier", str(search)]) == 0
    text = out.read_text(encoding="utf-8")
    for chart_id in CHART_IDS:
        assert f'id="chart-{chart_id}"' in text
    assert "<!-- chosen: d -->" in text  # matplotlib keeps each text as an SVG comment

    only = tmp_path / "frontier.html"
    assert main(["report", str(search), "-o", str(only), "--png", str(tmp_path / "png")]) == 0
    assert [p.name for p in (tmp_path / "png").glob("*.png")] == ["frontier.png"]
    text = only.read_text(encoding="utf-8")
    assert 'id="chart-frontier"' in text and 'id="chart-levels"' not in text


def test_cli_report_rejects_a_plain_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"x": [1.0]}).to_parquet(plain)
    assert main(["report", str(plain), "-o", str(tmp_path / "x.html")]) == 1
    assert "indexlab:kind" in capsys.readouterr().err


def test_demo_writes_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.html"
    assert main(["demo", "--report", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    for chart_id in CHART_IDS[:-1]:
        assert f'id="chart-{chart_id}"' in text
    assert "HSTECH[n=30" in text and "AI_CHAIN_OPT" in text  # the pipeline's three indices


def test_demo_optimised_candidate_is_on_the_frontier_it_is_drawn_on() -> None:
    from indexlab.demo import OPT_TE_BUDGET, pipeline

    res, how = pipeline()
    t = res.table
    assert (t["status"] == "ok").all(), t["status"].to_dict()
    assert f"TE <= {OPT_TE_BUDGET:.0%}" in how
    # Pareto on (ai_exposure max, tracking_error min), by hand: no row at least as good on both
    # axes and better on one.
    me = t.loc["AI_CHAIN_OPT"]
    for name, row in t.drop(index="AI_CHAIN_OPT").iterrows():
        dominated = (
            row["ai_exposure"] >= me["ai_exposure"]
            and row["tracking_error"] <= me["tracking_error"]
            and (
                row["ai_exposure"] > me["ai_exposure"]
                or row["tracking_error"] < me["tracking_error"]
            )
        )
        assert not dominated, (name, row[["ai_exposure", "tracking_error"]].to_dict())
    # The budget it was given holds ex ante (the mean over reviews cannot exceed it).
    assert me["te_budget"] == OPT_TE_BUDGET
    assert me["ex_ante_te"] <= OPT_TE_BUDGET + 1e-6


# ------------------------------------------------------------------------------ browser


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no chromium binary found (CI installs Debian's 'chromium' via apt-get in .ci/run; "
        "install it to run the browser check)"
    )


def run_browser(browser: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        browser,
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        page.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_html_opens_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    from PIL import Image

    browser = chromium()
    # The check itself works: a console error and an uncaught exception are both caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); nope();</script>")
    caught = console_errors(run_browser(browser, bad, "--dump-dom").stderr)
    assert any("boom" in line for line in caught) and any("Uncaught" in line for line in caught)

    # One run renders the page: console messages go to stderr, the pixels to a screenshot.
    shot = tmp_path / "shot.png"
    run = run_browser(
        browser, page, "--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={shot}"
    )
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert console_errors(run.stderr) == []
    assert png_size(shot) == (1200, 2400)
    with Image.open(shot) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int64)
    colours = np.unique(rgb.reshape(-1, 3) // 16, axis=0)
    assert len(colours) > 20, "screenshot is blank or nearly so"
    assert (rgb.sum(axis=2) < 600).mean() > 0.02, "screenshot has almost nothing drawn"
