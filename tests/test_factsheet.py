"""The factsheet page: every section present, self-contained, opens in headless Chromium
without a console message (skipped only where no chromium binary exists, like
tests/test_report.py), its charts as PNG, and ``indexlab factsheet`` on the command line."""

from __future__ import annotations

import re
from pathlib import Path

import indexlab
import numpy as np
import pytest
from indexlab import analytics
from indexlab.cli import main
from test_report import chromium, console_errors, png_size, run_browser

pytest.importorskip("matplotlib", reason="the factsheet page needs the 'report' extra")
from indexlab.report import factsheet as page

CHARTS = ["fs-levels", "fs-drawdown", "fs-ai-layer", "fs-turnover"]


@pytest.fixture(scope="module")
def sheet() -> analytics.Factsheet:
    ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
    hist = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=15))
    return analytics.factsheet(ds, hist, benchmark="HSI")


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory, sheet: analytics.Factsheet) -> Path:
    return page.html(sheet, tmp_path_factory.mktemp("fs") / "factsheet.html")


def test_every_section_and_chart_is_on_the_page(html: Path, sheet: analytics.Factsheet) -> None:
    text = html.read_text(encoding="utf-8")
    found = re.findall(r'<section id="([^"]+)">', text)
    assert found == [*page.SECTIONS, *(f"chart-{c}" for c in CHARTS)]
    for c in CHARTS:
        body = re.search(rf'<section id="chart-{c}">(.*?)</section>', text, flags=re.S)
        assert body is not None and "<svg" in body.group(1)
    # The top 10 table lists the ten largest weights, in order, formatted as percentages.
    top = re.search(r'id="top10-table">.*?<tbody>(.*?)</tbody>', text, flags=re.S)
    rows = re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", top.group(1))  # type: ignore[union-attr]
    assert [r[0] for r in rows] == sheet.top10["id"].tolist()
    weights = [re.findall(r"<td>([^<]*)</td>", r[1])[1] for r in rows]
    assert weights == [f"{w:.2%}" for w in sheet.top10["weight"]]
    for label in ("HSI (price)", "HSTECH (price)", f"{sheet.name} (total return)"):
        assert f"<th>{label}</th>" in text
    assert "3Y (annualised)" in text and "Risk against HSI" in text


def test_page_is_self_contained(html: Path) -> None:
    text = html.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "url(" not in text.replace("url(#", "")


def test_page_opens_in_headless_chromium(html: Path, tmp_path: Path) -> None:
    from PIL import Image

    browser = chromium()
    shot = tmp_path / "shot.png"
    run = run_browser(
        browser, html, "--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={shot}"
    )
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert console_errors(run.stderr) == []
    with Image.open(shot) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int64)
    assert len(np.unique(rgb.reshape(-1, 3) // 16, axis=0)) > 20, "screenshot nearly blank"


def test_png_charts(tmp_path: Path, sheet: analytics.Factsheet) -> None:
    paths = page.png(sheet, tmp_path)
    assert [p.name for p in paths] == [f"{c}.png" for c in CHARTS]
    for p in paths:
        width, height = png_size(p)
        assert width >= 800 and height >= 300
    with pytest.raises(indexlab.DataError, match="exists"):
        page.png(sheet, tmp_path)


def test_cli_factsheet_and_announcement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, md = tmp_path / "ai.html", tmp_path / "ai.md"
    args = ["factsheet", "AI_CHAIN", "-o", str(out), "--announcement", str(md)]
    assert main([*args, "--start", "2023-01-01"]) == 0
    assert "factsheet written to" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert all(f'<section id="{s}">' in text for s in page.SECTIONS)
    notice = md.read_text(encoding="utf-8")
    assert notice.startswith("# AI_CHAIN: Results of the index review")
    assert "## Constituent changes" in notice and "## Pro-forma constituents" in notice
    assert main(args) == 1  # exists, no --force
    assert "exists" in capsys.readouterr().err
    assert (
        main(["factsheet", "AI_CHAIN", "-o", str(tmp_path / "x.html"), "--benchmark", "SPX"]) == 1
    )
    assert "benchmark must be one of" in capsys.readouterr().err
