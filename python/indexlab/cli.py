"""The ``indexlab`` command line: demo, search, report, methodology, factsheet, serve, bench,
data.

Every command given bad input prints ONE line on stderr (``indexlab <command>: <what was
expected, what was found>``) and exits non-zero: 2 for a malformed command line, 1 for input
the command cannot use, 130 when interrupted. Files are never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _checked(parse: Callable[[str], Any], ok: Callable[[Any], bool], expected: str) -> Any:
    """An argparse type: ``parse`` the text and accept it when ``ok``; else one clear line."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not ok(value):  # a NaN fails every comparison, so it is refused
            raise argparse.ArgumentTypeError(f"expected {expected}, found {text!r}")
        return value

    return convert


_positive_int = _checked(int, lambda v: v >= 1, "a whole number >= 1")
_fraction = _checked(float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
_port = _checked(int, lambda v: 0 <= v <= 65535, "a TCP port 0-65535")


def _demo(args: argparse.Namespace) -> int:
    from indexlab.datasets import hk_tech
    from indexlab.demo import latest_capped_index, render

    if args.report and Path(args.report).exists() and not args.force:
        from indexlab.errors import DataError

        # Before the pipeline runs (minutes), not after.
        raise DataError(f"{args.report} exists: expected a new file; pass --force to replace it")
    index = latest_capped_index(hk_tech(), n=args.n, cap=args.cap)
    print(render(index, args.cap))
    res = None
    if not args.no_pipeline:
        from indexlab.demo import pipeline, render_pipeline

        res, how = pipeline(keep_weights=bool(args.report))
        print(render_pipeline(res, how))
        from indexlab.story import pro_forma_50, render_pro_forma, render_story, story_2026

        print(render_story(story_2026(hk_tech())))
        print(render_pro_forma(pro_forma_50(hk_tech())))
        from indexlab.demo import products

        print(products(hk_tech(), args.report, overwrite=args.force))
    if args.report:
        _demo_report(args.report, res, overwrite=args.force)
    return 0


def _demo_report(path: str, pipeline_result: object = None, overwrite: bool = False) -> None:
    """The demo's report: the pipeline's three indices (or, with ``--no-pipeline``, the HSTECH
    and AI_CHAIN presets) against HSTECH, with the pipeline's frontier."""
    import indexlab
    from indexlab import report
    from indexlab.datasets import hk_tech

    ds = hk_tech()
    if pipeline_result is None:
        result, frontier, title = report.demo_result(ds), None, "HSTECH vs AI_CHAIN presets"
    else:
        res: Any = pipeline_result
        result = indexlab.backtest(ds, res.weights, benchmark="HSTECH")
        frontier, title = res.table, "HSTECH, AI_CHAIN and the optimised AI-chain candidate"
    out = report.html(
        result,
        path,
        frontier=frontier,
        chosen=None if frontier is None else "AI_CHAIN_OPT",
        dataset=ds,
        title=f"indexlab demo: {title}",
        overwrite=overwrite,
    )
    print(f"report written to {out}")


def _report(args: argparse.Namespace) -> int:
    """Render a BacktestResult (or search) Parquet file as one self-contained HTML page."""
    from indexlab import report
    from indexlab.errors import DataError

    if Path(args.output).exists() and not args.force:
        raise DataError(f"{args.output} exists: expected a new file; pass --force to replace it")
    result, frontier = report.read(args.result)
    if args.frontier:
        extra_result, frontier = report.read(args.frontier)
        result = result if result is not None else extra_result
    dataset = None
    if args.dataset == "hk_tech" and result is not None:
        from indexlab.datasets import hk_tech

        dataset = hk_tech()
        if not set(result.weights["id"]).issubset(set(dataset.ids)):
            print("indexlab report: the result holds ids not in hk_tech; no AI-layer chart")
            dataset = None
    out = report.html(
        result,
        args.output,
        frontier=frontier,
        title=args.title,
        dataset=dataset,
        benchmark=args.benchmark,
        overwrite=args.force,
    )
    print(f"report written to {out}")
    if args.png:
        paths = report.png(
            result,
            args.png,
            frontier=frontier,
            dataset=dataset,
            benchmark=args.benchmark,
            overwrite=args.force,
        )
        print(f"{len(paths)} PNG charts written to {args.png}")
    return 0


def _load_rules(spec: str) -> Any:
    """A preset by name (any case), or an ``IndexRules`` TOML file."""

    from indexlab.errors import DataError
    from indexlab.rules.methodology import PRESETS
    from indexlab.rules.model import IndexRules

    preset = PRESETS.get(spec.upper())
    if preset is not None:
        return preset
    path = Path(spec)
    if not path.is_file():
        raise DataError(
            f"unknown preset or file {spec!r}; presets are {', '.join(sorted(PRESETS))}, or "
            "give an IndexRules TOML file"
        )
    try:
        return IndexRules.from_toml(path.read_text(encoding="utf-8"))
    except DataError as err:
        raise DataError(f"rules file {spec}: {err}") from None
    except (OSError, ValueError, TypeError, KeyError) as err:  # TOMLDecodeError is a ValueError
        raise DataError(f"cannot read rules from {spec}: {err}".splitlines()[0]) from None


def _methodology(args: argparse.Namespace) -> int:
    """Print a rule set's methodology as Markdown; optionally write it as an HTML page."""
    from indexlab.rules.methodology import methodology

    rules = _load_rules(args.rules)
    if args.html:
        from indexlab import report
        from indexlab.errors import DataError

        if Path(args.html).exists() and not args.overwrite:
            raise DataError(f"{args.html} exists; pass --force (or --overwrite) to replace it")
        try:
            report.methodology_html(rules, args.html, overwrite=args.overwrite, as_of=args.as_of)
        except OSError as err:
            raise DataError(f"cannot write {args.html}: {err}") from None
        print(f"methodology written to {args.html}", file=sys.stderr)
    print(methodology(rules, as_of=args.as_of), end="")
    return 0


def _factsheet(args: argparse.Namespace) -> int:
    """Build a rule set on hk_tech and write its factsheet (HTML, optional PNG charts) and,
    with ``--announcement``, the notice of its latest review (Markdown)."""
    import indexlab
    from indexlab import analytics
    from indexlab.errors import DataError
    from indexlab.report import factsheet as page

    targets = [args.output, args.announcement]
    for target in [t for t in targets if t]:
        if Path(target).exists() and not args.force:
            raise DataError(f"{target} exists: expected a new file; pass --force to replace it")
    rules = _load_rules(args.rules)
    ds = indexlab.datasets.hk_tech()
    hist = indexlab.build_index(ds, rules, start=args.start)
    fs = analytics.factsheet(ds, hist, benchmark=args.benchmark, end=args.end)
    out = page.html(fs, args.output, overwrite=args.force)
    print(f"factsheet written to {out}")
    if args.png:
        print(f"charts written to {args.png}: {len(page.png(fs, args.png, overwrite=args.force))}")
    if args.announcement:
        notice = analytics.announcement(ds, hist)
        path = Path(args.announcement)
        try:
            with path.open("w" if args.force else "x", encoding="utf-8") as f:
                f.write(notice.to_markdown())
        except FileExistsError:
            raise DataError(f"{path} exists: pass --force to replace it") from None
        print(f"announcement written to {path}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from indexlab.search.config import run_config

    return run_config(Path(args.config), Path(args.out), overwrite=args.force)


def _bench(args: argparse.Namespace) -> int:
    """Run the pytest-benchmark benches; their summary prints indexlab vs baseline ratios."""
    benches = Path(args.path)
    if not benches.is_dir():
        from indexlab.errors import DataError

        raise DataError(f"no benches folder at {benches} (run from a source checkout)")
    cmd = [sys.executable, "-m", "pytest", str(benches), "-q", "-p", "no:cacheprovider"]
    if args.k:
        cmd += ["-k", args.k]
    return subprocess.call(cmd)


def _serve(args: argparse.Namespace) -> int:
    """The reference HTTP server over ``indexlab.api.handle`` (needs the ``serve`` extra)."""
    try:
        from indexlab.api.server import serve
    except ImportError as err:
        print(f"indexlab serve: {err}", file=sys.stderr)
        return 2
    try:
        serve(host=args.host, port=args.port)
    except ImportError as err:
        print(f"indexlab serve: {err}", file=sys.stderr)
        return 2
    return 0


def _data_update(args: argparse.Namespace) -> int:
    """Fetch what the local cache lacks for each id (``indexlab.sources.update``)."""
    from indexlab import sources

    report = sources.update(
        args.ids,
        args.source,
        until=args.until,
        start=args.start,
        cache_dir=args.cache,
        timeout=args.timeout,
        retries=args.retries,
        min_interval=args.min_interval,
        progress=sys.stderr,
    )
    print(report.render())
    if report.failed:
        print(
            f"indexlab data update: {len(report.failed)} of {len(report.ids)} id(s) failed: "
            f"{', '.join(report.failed)} (their cached data are unchanged)",
            file=sys.stderr,
        )
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="indexlab", description="Design, optimise and backtest rules-based equity indices."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a capped index on the bundled hk_tech sample")
    demo.add_argument(
        "--n", type=_positive_int, default=30, help="number of constituents (default 30)"
    )
    demo.add_argument("--cap", type=_fraction, default=0.08, help="weight cap (default 0.08)")
    demo.add_argument(
        "--no-pipeline", action="store_true", help="only the capped index, not the backtests"
    )
    demo.add_argument("--report", metavar="OUT.html", help="also write an HTML backtest report")
    demo.add_argument("--force", action="store_true", help="replace an existing --report file")
    demo.set_defaults(run=_demo)
    search = sub.add_parser("search", help="evaluate candidate designs from a TOML config")
    search.add_argument("--config", required=True, help="TOML file (see examples/search.toml)")
    search.add_argument(
        "--out", default=".", help="folder the output files go in (names may not leave it)"
    )
    search.add_argument("--force", action="store_true", help="replace existing output files")
    search.set_defaults(run=_search)
    rep = sub.add_parser("report", help="render a backtest/search Parquet file as HTML (+PNG)")
    rep.add_argument("result", help="a BacktestResult.to_parquet file (or a search table)")
    rep.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    rep.add_argument("--frontier", help="a search Parquet file whose frontier to add")
    rep.add_argument("--png", metavar="DIR", help="also write the charts as PNG files here")
    rep.add_argument(
        "--dataset",
        choices=["hk_tech", "none"],
        default="hk_tech",
        help="dataset for AI layers, names and the other index (default hk_tech)",
    )
    rep.add_argument("--benchmark", default="HSTECH", help="name of the benchmark column")
    rep.add_argument("--title", default="indexlab backtest report", help="page title")
    rep.add_argument("--force", action="store_true", help="replace existing HTML and PNG files")
    rep.set_defaults(run=_report)
    meth = sub.add_parser("methodology", help="print a rule set's methodology as Markdown")
    meth.add_argument("rules", metavar="PRESET_OR_TOML", help="HSTECH, HSI, ... or a TOML file")
    meth.add_argument("--html", metavar="OUT.html", help="also write it as one HTML page")
    meth.add_argument(
        "--force",
        "--overwrite",
        dest="overwrite",
        action="store_true",
        help="replace an existing --html file",
    )
    meth.add_argument(
        "--as-of", default=None, help="date from which to list the next reviews (default today)"
    )
    meth.set_defaults(run=_methodology)
    fact = sub.add_parser("factsheet", help="write a rule set's factsheet on hk_tech as HTML")
    fact.add_argument("rules", metavar="PRESET_OR_TOML", help="AI_CHAIN, HSTECH, ... or TOML")
    fact.add_argument("-o", "--output", default="factsheet.html", help="HTML file to write")
    fact.add_argument("--png", metavar="DIR", help="also write the charts as PNG files here")
    fact.add_argument("--announcement", metavar="OUT.md", help="the latest review's notice")
    fact.add_argument("--benchmark", default="HSTECH", help="HSTECH or HSI (default HSTECH)")
    fact.add_argument("--start", default="2020-01-01", help="first review cut-off (2020-01-01)")
    fact.add_argument("--end", default=None, help="factsheet date (default: complete universe)")
    fact.add_argument("--force", action="store_true", help="replace existing output files")
    fact.set_defaults(run=_factsheet)
    bench = sub.add_parser("bench", help="run the benches against their peer baselines")
    bench.add_argument("--path", default="benches", help="benches folder (default ./benches)")
    bench.add_argument("-k", default="", help="only benches matching this pytest expression")
    bench.set_defaults(run=_bench)
    serve = sub.add_parser("serve", help="serve indexlab.api over HTTP (extra 'serve')")
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.set_defaults(run=_serve)
    data = sub.add_parser("data", help="market data from yfinance or akshare, cached locally")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    upd = data_sub.add_parser("update", help="fetch only what the cache lacks, per id")
    upd.add_argument("--source", choices=["yfinance", "akshare"], default="yfinance")
    upd.add_argument("--ids", nargs="+", required=True, help="0700.HK 688256.SH ^HSI ...")
    upd.add_argument("--until", default="today", help="last day wanted (default today)")
    upd.add_argument("--start", default=None, help="first day for an uncached id (2019-01-02)")
    upd.add_argument("--cache", default=None, help="cache folder (default ~/.cache/indexlab)")
    seconds = _checked(float, lambda v: 0.0 <= v <= 3600.0, "seconds in [0, 3600]")
    upd.add_argument(
        "--timeout",
        type=_checked(float, lambda v: 0.0 < v <= 3600.0, "seconds in (0, 3600]"),
        default=10.0,
        help="seconds per request (default 10)",
    )
    upd.add_argument(
        "--retries",
        type=_checked(int, lambda v: 0 <= v <= 10, "a whole number 0-10"),
        default=2,
        help="attempts after a network failure (default 2)",
    )
    upd.add_argument(
        "--min-interval", type=seconds, default=0.5, help="seconds between requests (rate limit)"
    )
    upd.set_defaults(run=_data_update)
    return parser


def _line(text: str) -> str:
    """One line: the message's lines joined (a multi-line library message stays one line)."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``indexlab`` script.

    Returns the exit status; every failure is one line on stderr (set ``INDEXLAB_DEBUG=1`` to
    get the traceback of an unexpected error instead).
    """
    from indexlab.errors import IndexlabError

    args = build_parser().parse_args(argv)
    where = f"indexlab {args.command}"
    try:
        return int(args.run(args))
    except IndexlabError as err:
        print(f"{where}: {type(err).__name__}: {_line(str(err))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        name = f" {err.filename}" if err.filename else ""
        print(f"{where}: cannot use{name}: {err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:
        if os.environ.get("INDEXLAB_DEBUG"):
            raise
        print(
            f"{where}: unexpected {type(err).__name__}: {_line(str(err))} "
            "(INDEXLAB_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
