"""`indexlab demo` end to end, checked against an independent numpy computation."""

from __future__ import annotations

import re
from pathlib import Path

import indexlab
import numpy as np
import pytest
from indexlab.cli import main


def reference_capped(m: np.ndarray, cap: float) -> np.ndarray:
    fixed = np.zeros(len(m), dtype=bool)
    while True:
        w = np.where(fixed, cap, m / m[~fixed].sum() * (1.0 - cap * fixed.sum()))
        if not (~fixed & (w > cap)).any():
            return w
        fixed |= w > cap


def test_demo_prints_a_capped_30_name_index(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\s*\d+\s+(\S+\.HK)\s.*?([\d.]+)%$", out, flags=re.M)
    assert len(rows) == 30
    weights = np.array([float(w) for _, w in rows]) / 100
    assert weights.sum() == pytest.approx(1.0, abs=1e-3)
    assert weights.max() <= 0.08 + 1e-9
    assert "Weight per AI layer" in out

    # Independent: top 30 HK names by ff mcap from the raw arrays at the last date through which
    # the universe is complete (the demo's default date).
    ds = indexlab.datasets.hk_tech()
    t = ds.date_index(ds.universe_complete_until)
    # A name without a close that day counts at its last close (the market layer carries it).
    mcap = indexlab.market.Market.of(ds).market_cap_hkd()[t]
    seen = ~np.isnan(ds.field("close")[: t + 1])
    last = t - np.argmax(seen[::-1], axis=0)
    fresh = (ds.dates[t] - ds.dates[last]).astype(int) <= 20  # traded within 20 days
    listed = ds.dates[t] - ds.securities["listing_date"].to_numpy().astype("datetime64[D]")
    hk = (ds.securities["market"] == "HK").to_numpy() & ~np.isnan(mcap) & fresh
    hk &= listed.astype(int) >= 90
    order = np.argsort(-np.where(hk, mcap, -np.inf))[:30]
    expected = dict(zip(ds.ids[order], reference_capped(mcap[order], 0.08), strict=True))
    for name, w in rows:
        assert float(w) / 100 == pytest.approx(expected[name], abs=5e-5)


def test_bad_cap_exits_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--cap", "0.02"]) == 1
    err = capsys.readouterr().err
    assert "InfeasibleError" in err and "30 names x 2.0000% cap" in err


SEARCH_CONFIG = """
[dataset]
name = "synthetic"
n_securities = 150
years = 3
seed = 2

[search]
objectives = [["ai_exposure", "max"], ["tracking_error", "min"]]

[candidates.rules]
base = "HSTECH"
n = [20, 30]

[[candidates.optimised]]
name = "seed"
top_k = 25

[candidates.random]
count = 4
k = 30

[output]
table = "t.csv"
frontier = "f.parquet"
top = 3
"""


def test_search_writes_the_table_and_the_frontier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    cfg = tmp_path / "s.toml"
    cfg.write_text(SEARCH_CONFIG)
    assert main(["search", "--config", str(cfg), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "t.csv", index_col=0)
    front = pd.read_parquet(tmp_path / "f.parquet")
    assert len(table) == 7 and (table["status"] == "ok").all()
    # Independent frontier: brute force over the written table.
    x = table[["ai_exposure", "tracking_error"]].to_numpy()
    dominated = [
        any(
            (x[k, 0] >= x[i, 0]) and (x[k, 1] <= x[i, 1]) and (x[k] != x[i]).any()
            for k in range(len(x))
        )
        for i in range(len(x))
    ]
    assert sorted(front.index) == sorted(table.index[~np.array(dominated)])
    assert f"7 candidates, 7 feasible, {len(front)} on the frontier" in out
    assert front.index[0] in out


def test_search_config_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[dataset]\nname = "synthetic"\nsize = 3\n')
    assert main(["search", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "[dataset]: unknown key(s) ['size']" in err


def test_demo_pipeline_backtests_three_designs_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from indexlab.demo import PIPELINE_START

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = {m[0]: m[1] for m in re.findall(r"^(\S+)\s+(-?[\d.]+)%", out, flags=re.M)}
    assert {"HSTECH[n=30,cap=0.08]", "AI_CHAIN[n=30,cap=0.08]", "AI_CHAIN_OPT"} <= set(rows)
    # Independent: the rules engine + backtest for HSTECH over the same window.
    ds = indexlab.datasets.hk_tech()
    ref = indexlab.backtest(
        ds, indexlab.build_index(ds, indexlab.rules.HSTECH, start=PIPELINE_START)
    )
    total = float(ref.metrics["total_return"].iloc[0])
    assert float(rows["HSTECH[n=30,cap=0.08]"]) == pytest.approx(total * 100, abs=0.051)
