"""indexlab.search.evaluate and SearchResult, checked against independent computations."""

from __future__ import annotations

from pathlib import Path

import cvxpy as cp
import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import rules, search
from indexlab.errors import InfeasibleError
from search_helpers import always_listed, mixed

N_SEC, YEARS, SEED = 150, 3, 2


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return indexlab.datasets.synthetic(n_securities=N_SEC, years=YEARS, seed=SEED)


def reference_capped(m: np.ndarray, cap: float) -> np.ndarray:
    fixed = np.zeros(len(m), dtype=bool)
    while True:
        w = np.where(fixed, cap, m / m[~fixed].sum() * (1.0 - cap * fixed.sum()))
        if not (~fixed & (w > cap)).any():
            return w
        fixed |= w > cap


def implementation_days(ds: indexlab.Dataset) -> np.ndarray:
    cal = rules.review_calendar(ds.dates, rules.HSTECH)
    return cal["impl_idx"].to_numpy()[cal["impl_idx"].to_numpy() <= len(ds.dates) - 2]


COMPARE = ["total_return", "volatility", "max_drawdown", "tracking_error", "ai_exposure"]


def test_member_list_equals_the_schedule_backtested_directly(ds: indexlab.Dataset) -> None:
    ids = always_listed(ds, 20)
    res = search.evaluate(ds, [search.MemberList(ids, name="m20")], keep_levels=True)
    impl = implementation_days(ds)
    cols = pd.Index(ds.ids).get_indexer(ids)
    ffm = ds.field("close") * ds.field("shares_outstanding") * ds.field("free_float_factor")
    w = np.array([reference_capped(ffm[t, cols], 0.08) for t in impl])
    ref = indexlab.backtest(ds, {"m20": indexlab.Schedule(ds.dates[impl], ids, w)})
    np.testing.assert_allclose(res.levels["m20"], ref.levels["m20"], rtol=1e-12)
    row = res.table.loc["m20"]
    for col in [*COMPARE, "average_turnover"]:
        assert row[col] == pytest.approx(ref.metrics.loc["m20", col], rel=1e-9, abs=1e-12)
    assert row["n_members"] == 20 and set(row["members"].split(",")) == set(ids)
    # Liquidity capacity by hand: 20% of the 63-day median turnover, least liquid holding.
    tv = np.nan_to_num(ds.field("turnover_value") * ds.fx_to_hkd())
    cap = min(
        (0.2 * np.median(tv[t - 62 : t + 1, cols], axis=0) / w[j]).min() for j, t in enumerate(impl)
    )
    assert row["liquidity_capacity"] == pytest.approx(cap, rel=1e-12)


def test_rule_variant_equals_build_index_then_backtest(ds: indexlab.Dataset) -> None:
    variant = rules.HSTECH.replace(n=20, cap=0.1)
    res = search.evaluate(ds, [variant], keep_levels=True)
    name = "HSTECH[n=20,cap=0.1]"
    ref = indexlab.backtest(ds, {name: indexlab.build_index(ds, variant)})
    np.testing.assert_allclose(res.levels[name], ref.levels[name], rtol=1e-12)
    for col in [*COMPARE, "average_turnover"]:
        assert res.table.loc[name, col] == pytest.approx(ref.metrics.loc[name, col], rel=1e-9)
    assert res.table.loc[name, "cap"] == 0.1 and res.table.loc[name, "n"] == 20


def test_optimiser_weights_equal_a_cvxpy_solve_at_each_review(ds: indexlab.Dataset) -> None:
    ids = always_listed(ds, 30)
    cand = search.OptimisedCandidate(members=ids, te_weight=20.0, cap=0.08, name="opt")
    res = search.evaluate(ds, [cand], keep_weights=True)
    dates, got_ids, got = res.weights["opt"].weights_matrix()
    parent = indexlab.build_index(ds, rules.HSTECH)
    cal = parent.calendar
    rev = parent.reviews[parent.reviews["event"] == "review"]
    scores = ds.securities["ai_score"].to_numpy()
    n = len(ds.ids)
    mask = np.isin(ds.ids, ids).astype(float)
    for j in (0, len(dates) - 1):
        rows = rev[rev["review_date"] == cal["cutoff"].iloc[j]]
        bench = np.zeros(n)
        bench[pd.Index(ds.ids).get_indexer(rows["id"])] = rows["weight"].to_numpy()
        sigma = search.review_risk_model(ds, int(cal["cutoff_idx"].iloc[j])).covariance()
        w = cp.Variable(n)
        obj = scores @ w - 20.0 * cp.quad_form(w - bench, cp.psd_wrap(sigma))
        prob = cp.Problem(cp.Maximize(obj), [cp.sum(w) == 1, w >= 0, w <= 0.08 * mask])
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        np.testing.assert_allclose(got[j], w.value, atol=1e-5)
        assert np.datetime64(dates[j]) == ds.dates[int(cal["impl_idx"].iloc[j])]
    assert list(got_ids) == list(ds.ids)


def brute_pareto(x: np.ndarray, senses: list[str]) -> np.ndarray:
    y = np.where(np.array(senses) == "max", -x, x)
    out = []
    for i in range(len(y)):
        dom = any((y[k] <= y[i]).all() and (y[k] < y[i]).any() for k in range(len(y)))
        out.append(not dom and not np.isnan(y[i]).any())
    return np.array(out)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_pareto_matches_brute_force(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=(60, m)).astype(float)  # many ties and duplicates
    x[rng.integers(0, 60, 3), 0] = np.nan
    senses = ["max", "min", "max"][:m]
    np.testing.assert_array_equal(search.pareto_mask(x, senses), brute_pareto(x, senses))


def small_result() -> search.SearchResult:
    t = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "infeasible at review 0", "ok"],
            "ai_exposure": [0.5, 0.7, 0.4, np.nan, 0.7],
            "tracking_error": [0.02, 0.05, 0.03, np.nan, 0.04],
            "information_ratio": [0.3, -0.1, 0.9, np.nan, 0.2],
            "members": ["a,b", "c", "d", "", "e"],
        },
        index=pd.Index(["a", "b", "c", "d", "e"], name="candidate"),
    )
    levels = pd.DataFrame({"a": [1000.0, 1010.0]}, index=pd.date_range("2024-01-01", periods=2))
    return search.SearchResult(t, levels=levels, interrupted=True)


def test_pareto_top_best() -> None:
    res = small_result()
    front = res.pareto([("ai_exposure", "max"), ("tracking_error", "min")])
    assert list(front.index) == ["a", "e"]  # b is beaten by e; c by a; d is infeasible
    assert list(res.top(2, by="information_ratio").index) == ["c", "a"]
    assert list(res.top(2, by="tracking_error").index) == ["a", "c"]
    assert res.best().name == "c"
    with pytest.raises(indexlab.DataError, match="unknown objective"):
        res.pareto([("nope", "max"), ("tracking_error", "min")])


def test_parquet_round_trip(tmp_path: Path) -> None:
    res = small_result()
    res.to_parquet(tmp_path / "s.parquet")
    back = search.SearchResult.from_parquet(tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(back.table, res.table)
    assert back.levels is not None and res.levels is not None
    pd.testing.assert_frame_equal(back.levels, res.levels, check_freq=False)
    assert back.interrupted


def test_search_file_renders_as_a_frontier_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from indexlab import report

    res = small_result()
    res.to_parquet(tmp_path / "s.parquet", chosen="c")
    result, frontier = report.read(tmp_path / "s.parquet")
    assert result is None and frontier is not None
    assert (frontier.x, frontier.y, frontier.chosen) == ("tracking_error", "ai_exposure", "c")
    ok = res.table["status"] == "ok"
    expected = search.pareto_mask(
        res.table.loc[ok, ["tracking_error", "ai_exposure"]].to_numpy(), ["min", "max"]
    )
    marked = frontier.table.loc[res.table.index[ok], "on_frontier"].to_numpy()
    np.testing.assert_array_equal(marked, expected)


def test_same_result_whatever_the_thread_count_and_chunking(ds: indexlab.Dataset) -> None:
    a = search.evaluate(ds, mixed(ds, 6), threads=1, chunk_size=100)
    b = search.evaluate(ds, iter(mixed(ds, 6)), threads=2, chunk_size=5)
    assert len(a) == 16 and (a.table["status"] == "ok").all()
    pd.testing.assert_frame_equal(a.table, b.table)


def test_ctrl_c_returns_the_finished_chunks(
    ds: indexlab.Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[int, int | None]] = []

    def stop_after_first(done: int, total: int | None) -> None:
        calls.append((done, total))
        raise KeyboardInterrupt

    cands = mixed(ds, 3)
    res = search.evaluate(ds, cands, chunk_size=4, progress=stop_after_first)
    assert res.interrupted and len(res) == 4 and calls == [(4, len(cands))]
    search.evaluate(ds, cands[:2], progress=True)
    assert "2/2 candidates" in capsys.readouterr().err


def test_infeasible_names_the_constraint_and_the_review(ds: indexlab.Dataset) -> None:
    ids = always_listed(ds, 30)
    bad = search.OptimisedCandidate(members=ids, cap=0.02, name="tight")
    with pytest.raises(InfeasibleError) as err:
        search.evaluate(ds, [bad, search.MemberList(ids[:5], name="five")])
    msg = str(err.value)
    assert "no candidate is feasible" in msg and "weight cap" in msg
    assert "30 names listed x 2.00% cap = 60.00% < 100%" in msg
    assert "review 0 (cut-off " in msg and "5 members listed" in msg
    res = search.evaluate(ds, [bad, search.MemberList(ids, name="ok")])
    assert res.table.loc["ok", "status"] == "ok"
    assert res.table.loc["tight", "status"].startswith("infeasible at review 0")
    assert np.isnan(res.table.loc["tight", "ai_exposure"])
