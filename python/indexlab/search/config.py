"""``indexlab search --config FILE``: a TOML description of a search, run end to end.

The format is documented by ``examples/search.toml`` (sections ``dataset``, ``period``,
``search``, ``costs``, ``candidates.rules``, ``candidates.members``, ``candidates.optimised``,
``candidates.random``, ``output``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from indexlab import datasets, rules
from indexlab.backtest import HKCosts
from indexlab.data import Dataset
from indexlab.errors import DataError, IndexlabError
from indexlab.search.candidates import MemberList, OptimisedCandidate, random_subsets
from indexlab.search.evaluate import evaluate
from indexlab.search.result import SearchResult

__all__ = ["candidates_from_config", "load_dataset", "run_config"]

PRESETS = rules.PRESETS


def _preset(name: str, where: str) -> rules.IndexRules:
    if name not in PRESETS:
        raise DataError(f"{where}: unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]


def _known(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    bad = sorted(set(section) - allowed)
    if bad:
        raise DataError(f"[{where}]: unknown key(s) {bad}; expected some of {sorted(allowed)}")


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DataError(f"[{where}]: expected a table, found {value!r}")
    return value


def _tables(value: Any, where: str) -> list[Mapping[str, Any]]:
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list) or not all(isinstance(v, Mapping) for v in items):
        raise DataError(f"[{where}]: expected a table or an array of tables, found {value!r}")
    return items


def _build(where: str, make: Any, **kwargs: Any) -> Any:
    """``make(**kwargs)`` with a plain ``TypeError``/``ValueError`` (a wrong type in the TOML)
    turned into a :class:`DataError` naming the section."""
    try:
        return make(**kwargs)
    except IndexlabError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise DataError(f"[{where}]: {type(err).__name__}: {err}".splitlines()[0]) from None


def load_dataset(spec: Mapping[str, Any]) -> Dataset:
    """``{"name": "hk_tech"}`` or ``{"name": "synthetic", "n_securities": .., "years": ..,
    "seed": ..}``."""
    params = dict(_table(spec, "dataset"))
    name = params.pop("name", "hk_tech")
    if name == "hk_tech":
        _known(params, set(), "dataset")
        return datasets.hk_tech()
    if name == "synthetic":
        _known(params, {"n_securities", "years", "seed"}, "dataset")
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(f"[dataset] {key}: expected a number, found {value!r}")
        ds: Dataset = _build("dataset", datasets.synthetic, **params)
        return ds
    raise DataError(f"[dataset] name: expected 'hk_tech' or 'synthetic', got {name!r}")


def candidates_from_config(cfg: Mapping[str, Any], dataset: Dataset) -> Iterator[Any]:
    """The candidates a config's ``[candidates]`` tables describe, lazily."""
    cands = _table(cfg.get("candidates", {}), "candidates")
    _known(cands, {"rules", "members", "optimised", "random"}, "candidates")
    for g in _tables(cands.get("rules", []), "candidates.rules"):
        axes = {k: v if isinstance(v, list) else [v] for k, v in g.items() if k != "base"}
        base = _preset(g.get("base", "HSTECH"), "candidates.rules")
        yield from _guarded("candidates.rules", rules.grid, base, **axes)
    for m in _tables(cands.get("members", []), "candidates.members"):
        _known(m, {"name", "ids", "weighting", "cap"}, "candidates.members")
        yield _build("candidates.members", MemberList, **m)
    for o in _tables(cands.get("optimised", []), "candidates.optimised"):
        allowed = {"name", "members", "te_weight", "cap", "top_k", "markets", "te_budget"}
        allowed |= {"min_adv_hkd", "connect_only", "aum_hkd", "participation"}
        allowed |= {"turnover_weight", "parent_weights"}
        _known(o, allowed, "candidates.optimised")
        yield _build("candidates.optimised", OptimisedCandidate, **o)
    rnd = cands.get("random")
    if rnd:
        rnd = _table(rnd, "candidates.random")
        _known(rnd, {"count", "k", "seed", "markets", "te_weight", "cap"}, "candidates.random")
        markets = rnd.get("markets", ["HK"])
        if not isinstance(markets, list) or not all(isinstance(x, str) for x in markets):
            raise DataError(
                f"[candidates.random] markets: expected a list of market codes such as "
                f'["HK"], found {markets!r}'
            )
        pool = dataset.ids[dataset.securities["market"].isin(markets).to_numpy()]

        numbers: dict[str, tuple[type, float]] = {"k": (int, 30), "count": (int, 10)}
        numbers |= {"seed": (int, 0), "te_weight": (float, 50.0), "cap": (float, 0.08)}
        args: dict[str, Any] = {}
        for key, (kind, default) in numbers.items():
            value = rnd.get(key, default)
            kinds: tuple[type, ...] = (int, float) if kind is float else (int,)
            if isinstance(value, bool) or not isinstance(value, kinds):
                what = "a number" if kind is float else "a whole number"
                raise DataError(f"[candidates.random] {key}: expected {what}, found {value!r}")
            args[key] = kind(value)
        yield from _guarded(
            "candidates.random",
            random_subsets,
            [str(x) for x in pool],
            args["k"],
            args["count"],
            seed=args["seed"],
            te_weight=args["te_weight"],
            cap=args["cap"],
        )


def _guarded(where: str, make: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Lazily yield from ``make(*args, **kwargs)``, naming the section in a plain error."""
    try:
        yield from make(*args, **kwargs)
    except IndexlabError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise DataError(f"[{where}]: {type(err).__name__}: {err}".splitlines()[0]) from None


def _write(frame: pd.DataFrame, path: Path, overwrite: bool) -> None:
    from indexlab._backtest_io import open_new

    if path.suffix not in (".csv", ".parquet"):
        raise DataError(f"output {path}: expected a .parquet or .csv file name")
    with open_new(path, overwrite, "output") as f:
        if path.suffix == ".csv":
            frame.to_csv(f)
        else:
            frame.to_parquet(f)


def output_path(out: Path, name: Any, key: str) -> Path:
    """``out / name`` for an ``[output]`` file name, refusing any name that leaves ``out``
    (an absolute path, ``..``, or a symbolic link pointing elsewhere).

    Examples
    --------
    >>> from pathlib import Path
    >>> output_path(Path("runs"), "t.csv", "table").as_posix()
    'runs/t.csv'
    >>> output_path(Path("runs"), "../t.csv", "table")
    Traceback (most recent call last):
    ...
    indexlab.errors.DataError: [output] table: expected a file name inside runs, found '../t.csv'
    """
    if not isinstance(name, str) or not name:
        raise DataError(f"[output] {key}: expected a file name, found {name!r}")
    target = out / name
    base = out.resolve()
    if Path(name).is_absolute() or not target.resolve().is_relative_to(base):
        raise DataError(f"[output] {key}: expected a file name inside {out}, found {name!r}")
    return target


def run_config(path: Path, out: Path = Path("."), overwrite: bool = False) -> int:
    """Run the search a TOML file describes; write the table and the frontier; print the top.

    Output names (``[output] table`` and ``frontier``) are relative to ``out`` and must stay
    inside it. Existing output files are refused before the search runs unless
    ``overwrite`` (CLI: ``--force``).
    """
    try:
        cfg = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot read the search config {path}: {exc}") from None
    _known(cfg, {"dataset", "period", "search", "costs", "candidates", "output"}, "top level")
    output = _table(cfg.get("output", {}), "output")
    _known(output, {"table", "frontier", "top"}, "output")
    table_path = output_path(out, output.get("table", "search_table.parquet"), "table")
    front_path = output_path(out, output.get("frontier", "search_frontier.csv"), "frontier")
    top_n = output.get("top", 10)
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0:
        raise DataError(f"[output] top: expected a whole number >= 0, found {top_n!r}")
    for p in (front_path, table_path):
        if p.suffix not in (".csv", ".parquet"):
            raise DataError(f"output {p}: expected a .parquet or .csv file name")
    if not overwrite:
        # Checked before the (long) search runs, and again atomically when writing.
        for p in (table_path, front_path):
            if p.exists():
                raise DataError(
                    f"output {p} exists: expected a new file; pass --force to replace it"
                )
    ds = load_dataset(cfg.get("dataset", {}))
    period = _table(cfg.get("period", {}), "period")
    _known(period, {"start", "end"}, "period")
    opts = dict(_table(cfg.get("search", {}), "search"))
    objectives = [tuple(o) for o in opts.pop("objectives", [])] or None
    allowed = {"benchmark", "parent", "weighting", "chunk_size", "participation"}
    _known(opts, allowed | {"liquidity_days", "threads", "n_factors"}, "search")
    if "parent" in opts:
        opts["parent"] = _preset(opts["parent"], "search.parent")
    costs = _build("costs", HKCosts, **_table(cfg.get("costs", {}), "costs"))
    res: SearchResult = _build(
        "search",
        evaluate,
        dataset=ds,
        candidates=candidates_from_config(cfg, ds),
        start=period.get("start"),
        end=period.get("end"),
        costs=costs,
        **opts,
    )
    front = _build("search", res.pareto, objectives=objectives)
    if table_path.suffix == ".parquet":
        # The best by information ratio is the candidate `indexlab report` marks on the frontier.
        chosen = str(res.best().name) if (res.table["status"] == "ok").any() else None
        res.to_parquet(table_path, chosen=chosen, overwrite=overwrite)
    else:
        _write(res.table, table_path, overwrite)
    _write(front, front_path, overwrite)
    shown = [c for c, _ in objectives or []] or ["ai_exposure", "tracking_error"]
    cols = [*dict.fromkeys(["kind", *shown, "annual_return", "information_ratio", "n_members"])]
    top = front[cols].head(top_n)
    ok = int((res.table["status"] == "ok").sum())
    note = " (interrupted: partial results)" if res.interrupted else ""
    print(
        f"indexlab search: {len(res)} candidates, {ok} feasible, {len(front)} on the frontier"
        f"{note}\n\n{top.to_string(float_format=lambda x: f'{x:.4g}')}\n\n"
        f"table: {table_path}\nfrontier: {front_path}"
    )
    return 0
