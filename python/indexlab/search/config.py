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
from indexlab.errors import DataError
from indexlab.search.candidates import MemberList, OptimisedCandidate, random_subsets
from indexlab.search.evaluate import evaluate
from indexlab.search.result import SearchResult

__all__ = ["candidates_from_config", "load_dataset", "run_config"]

PRESETS = {"HSI": rules.HSI, "HSTECH": rules.HSTECH, "AI_CHAIN": rules.AI_CHAIN}
PRESETS["AI_CHAIN_AH"] = rules.AI_CHAIN_AH


def _preset(name: str, where: str) -> rules.IndexRules:
    if name not in PRESETS:
        raise DataError(f"{where}: unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]


def _known(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    bad = sorted(set(section) - allowed)
    if bad:
        raise DataError(f"[{where}]: unknown key(s) {bad}; expected some of {sorted(allowed)}")


def load_dataset(spec: Mapping[str, Any]) -> Dataset:
    """``{"name": "hk_tech"}`` or ``{"name": "synthetic", "n_securities": .., "years": ..,
    "seed": ..}``."""
    params = dict(spec)
    name = params.pop("name", "hk_tech")
    if name == "hk_tech":
        _known(params, set(), "dataset")
        return datasets.hk_tech()
    if name == "synthetic":
        _known(params, {"n_securities", "years", "seed"}, "dataset")
        return datasets.synthetic(**params)
    raise DataError(f"[dataset] name: expected 'hk_tech' or 'synthetic', got {name!r}")


def candidates_from_config(cfg: Mapping[str, Any], dataset: Dataset) -> Iterator[Any]:
    """The candidates a config's ``[candidates]`` tables describe, lazily."""
    cands = cfg.get("candidates", {})
    _known(cands, {"rules", "members", "optimised", "random"}, "candidates")
    grids = cands.get("rules", [])
    for g in [grids] if isinstance(grids, Mapping) else grids:
        axes = {k: v if isinstance(v, list) else [v] for k, v in g.items() if k != "base"}
        yield from rules.grid(_preset(g.get("base", "HSTECH"), "candidates.rules"), **axes)
    for m in cands.get("members", []):
        _known(m, {"name", "ids", "weighting", "cap"}, "candidates.members")
        yield MemberList(**m)
    for o in cands.get("optimised", []):
        allowed = {"name", "members", "te_weight", "cap", "top_k", "markets"}
        _known(o, allowed, "candidates.optimised")
        yield OptimisedCandidate(**o)
    rnd = cands.get("random")
    if rnd:
        _known(rnd, {"count", "k", "seed", "markets", "te_weight", "cap"}, "candidates.random")
        markets = rnd.get("markets", ["HK"])
        pool = dataset.ids[dataset.securities["market"].isin(markets).to_numpy()]
        yield from random_subsets(
            [str(x) for x in pool],
            int(rnd.get("k", 30)),
            int(rnd.get("count", 10)),
            seed=int(rnd.get("seed", 0)),
            te_weight=float(rnd.get("te_weight", 50.0)),
            cap=float(rnd.get("cap", 0.08)),
        )


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        raise DataError(f"output {path}: expected a .parquet or .csv file name")


def run_config(path: Path, out: Path = Path(".")) -> int:
    """Run the search a TOML file describes; write the table and the frontier; print the top."""
    try:
        cfg = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot read the search config {path}: {exc}") from None
    _known(cfg, {"dataset", "period", "search", "costs", "candidates", "output"}, "top level")
    ds = load_dataset(cfg.get("dataset", {}))
    period = cfg.get("period", {})
    _known(period, {"start", "end"}, "period")
    opts = dict(cfg.get("search", {}))
    objectives = [tuple(o) for o in opts.pop("objectives", [])] or None
    allowed = {"benchmark", "parent", "weighting", "chunk_size", "participation"}
    _known(opts, allowed | {"liquidity_days", "threads", "n_factors"}, "search")
    if "parent" in opts:
        opts["parent"] = _preset(opts["parent"], "search.parent")
    costs = HKCosts(**cfg.get("costs", {}))
    res: SearchResult = evaluate(
        ds,
        candidates_from_config(cfg, ds),
        start=period.get("start"),
        end=period.get("end"),
        costs=costs,
        **opts,
    )
    front = res.pareto(objectives)  # type: ignore[arg-type]
    output = cfg.get("output", {})
    _known(output, {"table", "frontier", "top"}, "output")
    table_path = out / output.get("table", "search_table.parquet")
    front_path = out / output.get("frontier", "search_frontier.csv")
    if table_path.suffix == ".parquet":
        table_path.parent.mkdir(parents=True, exist_ok=True)
        # The best by information ratio is the candidate `indexlab report` marks on the frontier.
        chosen = str(res.best().name) if (res.table["status"] == "ok").any() else None
        res.to_parquet(table_path, chosen=chosen)
    else:
        _write(res.table, table_path)
    _write(front, front_path)
    shown = [c for c, _ in objectives or []] or ["ai_exposure", "tracking_error"]
    cols = [*dict.fromkeys(["kind", *shown, "annual_return", "information_ratio", "n_members"])]
    top = front[cols].head(int(output.get("top", 10)))
    ok = int((res.table["status"] == "ok").sum())
    note = " (interrupted: partial results)" if res.interrupted else ""
    print(
        f"indexlab search: {len(res)} candidates, {ok} feasible, {len(front)} on the frontier"
        f"{note}\n\n{top.to_string(float_format=lambda x: f'{x:.4g}')}\n\n"
        f"table: {table_path}\nfrontier: {front_path}"
    )
    return 0
