"""The ``indexlab`` command line: ``indexlab demo``, ``indexlab search``, ``indexlab bench``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from indexlab.datasets import hk_tech
    from indexlab.demo import latest_capped_index, render

    index = latest_capped_index(hk_tech(), n=args.n, cap=args.cap)
    print(render(index, args.cap))
    if not args.no_pipeline:
        from indexlab.demo import pipeline, render_pipeline

        print(render_pipeline(*pipeline()))
    return 0


def _search(args: argparse.Namespace) -> int:
    from indexlab.search.config import run_config

    return run_config(Path(args.config), Path(args.out))


def _bench(args: argparse.Namespace) -> int:
    """Run the pytest-benchmark benches; their summary prints indexlab vs baseline ratios."""
    benches = Path(args.path)
    if not benches.is_dir():
        print(f"indexlab bench: no benches folder at {benches} (run from a source checkout)")
        return 2
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="indexlab", description="Design, optimise and backtest rules-based equity indices."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a capped index on the bundled hk_tech sample")
    demo.add_argument("--n", type=int, default=30, help="number of constituents (default 30)")
    demo.add_argument("--cap", type=float, default=0.08, help="weight cap (default 0.08)")
    demo.add_argument(
        "--no-pipeline", action="store_true", help="only the capped index, not the backtests"
    )
    demo.set_defaults(run=_demo)
    search = sub.add_parser("search", help="evaluate candidate designs from a TOML config")
    search.add_argument("--config", required=True, help="TOML file (see examples/search.toml)")
    search.add_argument("--out", default=".", help="folder for relative output paths")
    search.set_defaults(run=_search)
    bench = sub.add_parser("bench", help="run the benches against their peer baselines")
    bench.add_argument("--path", default="benches", help="benches folder (default ./benches)")
    bench.add_argument("-k", default="", help="only benches matching this pytest expression")
    bench.set_defaults(run=_bench)
    serve = sub.add_parser("serve", help="serve indexlab.api over HTTP (extra 'serve')")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``indexlab`` script."""
    from indexlab.errors import IndexlabError

    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except IndexlabError as err:
        print(f"indexlab {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
