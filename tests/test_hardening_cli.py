"""Hardening of the CLI, the writers and the readers (README, Errors): every command given bad input
prints one line on stderr and exits non-zero; nothing is overwritten without ``--force`` /
``overwrite=True``; output names cannot leave ``--out``; readers name the file they cannot
read."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import indexlab
import pandas as pd
import pytest
from indexlab import report
from indexlab.cli import build_parser, main
from indexlab.search import SearchResult

SMALL_SEARCH = """
[dataset]
name = "synthetic"
n_securities = 120
years = 2
seed = 3

[candidates.rules]
base = "HSTECH"
n = [20]

[output]
table = "{table}"
frontier = "f.csv"
"""


def _bad_arguments(tmp: Path) -> dict[str, list[list[str]]]:
    """Bad input for every subcommand, each case cheap to refuse."""
    garbage = tmp / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    existing = tmp / "exists.html"
    existing.write_text("keep me")
    escape = tmp / "escape.toml"
    escape.write_text(SMALL_SEARCH.format(table="../outside.csv"))
    absolute = tmp / "absolute.toml"
    absolute.write_text(SMALL_SEARCH.format(table=str(tmp / "abs.csv")))
    not_toml = tmp / "rules.toml"
    not_toml.write_text("[[[ not toml")
    bad_search = tmp / "bad_search.toml"
    bad_search.write_text('[costs]\ncommission = "high"\n[dataset]\nname = "synthetic"\n')
    return {
        "demo": [["demo", "--n", "0"], ["demo", "--cap", "2"], ["demo", "--n", "x"]],
        "search": [
            ["search", "--config", str(tmp / "missing.toml")],
            ["search", "--config", str(escape), "--out", str(tmp / "out")],
            ["search", "--config", str(absolute), "--out", str(tmp / "out")],
            ["search", "--config", str(not_toml)],
        ],
        "report": [
            ["report", str(tmp / "missing.parquet"), "-o", str(tmp / "r.html")],
            ["report", str(garbage), "-o", str(tmp / "r.html")],
            ["report", str(garbage), "-o", str(existing)],
        ],
        "methodology": [["methodology", "NOPE"], ["methodology", str(not_toml)]],
        "factsheet": [
            ["factsheet", "NOPE", "-o", str(tmp / "f.html")],
            ["factsheet", "AI_CHAIN", "-o", str(existing)],
        ],
        "data": [
            ["data", "update", "--source", "bloomberg", "--ids", "0700.HK"],
            ["data", "update", "--ids", "0700.HK", "--timeout", "nan"],
            ["data", "update", "--ids", "0700.HK", "--retries", "-1"],
        ],
        "bench": [["bench", "--path", str(tmp / "no-benches")]],
        "serve": [["serve", "--port", "70000"], ["serve", "--port", "http"]],
    }


def _subcommands() -> set[str]:
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_the_cases_cover_every_subcommand_in_help(tmp_path: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "indexlab.cli", "--help"], capture_output=True, text=True
    ).stdout
    names = set(re.search(r"\{([a-z,]+)\}", listed).group(1).split(","))  # type: ignore[union-attr]
    assert names == _subcommands() == set(_bad_arguments(tmp_path))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusing the command line
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_every_subcommand_refuses_bad_input_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command, cases in _bad_arguments(tmp_path).items():
        for argv in cases:
            code, err = _run(argv, capsys)
            lines = err.strip().splitlines()
            assert code != 0, (argv, err)
            assert len(lines) == 1, (argv, err)
            assert lines[0].startswith(f"indexlab {command}"), (argv, err)
            assert "Traceback" not in err
    assert (tmp_path / "exists.html").read_text() == "keep me"
    assert not (tmp_path / "outside.csv").exists() and not (tmp_path / "abs.csv").exists()


def test_messages_say_what_was_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = _bad_arguments(tmp_path)
    _, err = _run(cases["search"][1], capsys)
    assert "expected a file name inside" in err and "'../outside.csv'" in err
    _, err = _run(cases["report"][1], capsys)
    assert "garbage.parquet" in err and "DataError" in err
    _, err = _run(cases["report"][2], capsys)
    assert "--force" in err
    _, err = _run(cases["serve"][0], capsys)
    assert "expected a TCP port 0-65535, found '70000'" in err


def test_a_subprocess_gets_one_line_and_a_nonzero_status(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "indexlab.cli", "report", str(tmp_path / "nope.parquet")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_search_refuses_existing_outputs_before_running_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text(SMALL_SEARCH.format(table="t.csv"))
    (tmp_path / "t.csv").write_text("keep me")
    code, err = _run(["search", "--config", str(cfg), "--out", str(tmp_path)], capsys)
    assert code == 1 and "exists" in err and "--force" in err
    assert (tmp_path / "t.csv").read_text() == "keep me"
    code, err = _run(["search", "--config", str(cfg), "--out", str(tmp_path), "--force"], capsys)
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "t.csv", index_col=0)) == 1


# ------------------------------------------------------------------------------ writers


@pytest.fixture(scope="module")
def small_result() -> indexlab.BacktestResult:
    ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=3)
    s = indexlab.Schedule([ds.dates[5]], list(ds.ids[:2]), [[0.5, 0.5]])
    return indexlab.backtest(ds, {"two": s}, benchmark=None)


def test_backtest_to_parquet_refuses_to_overwrite(
    tmp_path: Path, small_result: indexlab.BacktestResult
) -> None:
    path = tmp_path / "bt.parquet"
    path.write_bytes(b"precious")
    with pytest.raises(indexlab.DataError, match="exists"):
        small_result.to_parquet(path)
    assert path.read_bytes() == b"precious"


def test_search_to_parquet_refuses_to_overwrite_the_table_or_its_levels(tmp_path: Path) -> None:
    levels = pd.DataFrame(
        {"a": [1000.0, 1010.0]}, index=pd.to_datetime(["2024-01-02", "2024-01-03"])
    )
    res = SearchResult(pd.DataFrame({"status": ["ok"]}, index=["a"]), levels=levels)
    path = tmp_path / "s.parquet"
    res.to_parquet(path)
    with pytest.raises(indexlab.DataError, match="search table .* exists"):
        res.to_parquet(path)
    path.unlink()
    with pytest.raises(indexlab.DataError, match="search levels .* exists"):
        res.to_parquet(path)
    assert not path.exists()  # nothing written when one of the two files is refused
    res.to_parquet(path, overwrite=True)
    assert SearchResult.from_parquet(path).levels.equals(levels)  # type: ignore[union-attr]


def test_report_html_and_png_refuse_to_overwrite(tmp_path: Path) -> None:
    cands = pd.DataFrame(
        {"tracking_error": [0.02, 0.05], "ai_exposure": [0.3, 0.6]}, index=["a", "b"]
    )
    page = tmp_path / "r.html"
    page.write_text("keep me")
    with pytest.raises(indexlab.DataError, match="exists"):
        report.html(None, page, frontier=cands)
    assert page.read_text() == "keep me"
    assert "chart-frontier" in report.html(None, page, frontier=cands, overwrite=True).read_text()
    (tmp_path / "frontier.png").write_bytes(b"keep me")
    with pytest.raises(indexlab.DataError, match="frontier.png exists"):
        report.png(None, tmp_path, frontier=cands)
    assert (tmp_path / "frontier.png").read_bytes() == b"keep me"
    assert report.png(None, tmp_path, frontier=cands, overwrite=True)


# ------------------------------------------------------------------------------ readers


@pytest.mark.parametrize(
    "read",
    [indexlab.BacktestResult.from_parquet, SearchResult.from_parquet, report.read],
    ids=["BacktestResult.from_parquet", "SearchResult.from_parquet", "report.read"],
)
@pytest.mark.parametrize("content", [None, b"", b"not parquet", b"PAR1\x00\x00PAR1"])
def test_readers_name_the_file_they_cannot_read(
    tmp_path: Path, read: object, content: bytes | None
) -> None:
    path = tmp_path / "bad.parquet"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(indexlab.DataError, match="bad.parquet"):
        read(path)  # type: ignore[operator]


def test_reading_a_search_table_as_a_backtest_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    SearchResult(pd.DataFrame({"status": ["ok"]}, index=["a"])).to_parquet(path)
    with pytest.raises(indexlab.DataError, match="s.parquet"):
        indexlab.BacktestResult.from_parquet(path)
