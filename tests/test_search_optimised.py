"""Liquidity participation caps, turnover penalties, market filters, parent weight vectors and
the realised TE of `search.OptimisedCandidate`.

Every weight here is checked against cvxpy's own solve (Clarabel) of the same review problem,
written independently with the full covariance of `search.review_risk_model`; ADV, benchmark
weights and levels are recomputed with numpy from the dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cvxpy as cp
import indexlab
import numpy as np
import pandas as pd
import pytest
from hand_market import ZERO_COSTS
from indexlab import search
from indexlab.errors import DataError
from indexlab.market import Market
from search_helpers import parent_reviews


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return indexlab.datasets.synthetic(n_securities=120, years=3, seed=3)


@pytest.fixture(scope="module")
def full(ds: indexlab.Dataset) -> np.ndarray:
    """Names with a close on every day: listed at every review."""
    return np.asarray(np.isfinite(ds.field("close")).all(axis=0))


def adv_at(ds: indexlab.Dataset, cut: int) -> np.ndarray:
    """Median HKD turnover value over the 63 days to the cut-off (0 unless a full-data name)."""
    tv = ds.field("turnover_value") * ds.fx_to_hkd()
    return np.nan_to_num(np.median(tv[cut - 62 : cut + 1], axis=0), nan=0.0)


def drift(ds: indexlab.Dataset, prev: np.ndarray, start: int, end: int) -> np.ndarray:
    """Weights set at day ``start`` as held at day ``end`` (total return in HKD, the levels a
    search compounds without a benchmark): what the turnover penalty measures against."""
    levels = ds.field("total_return") * ds.fx_to_hkd()
    held = prev * np.nan_to_num(levels[end] / levels[start], nan=1.0)
    return held / held.sum() if held.sum() > 0 else held


def reference(
    ds: indexlab.Dataset,
    cut: int,
    mask: np.ndarray,
    bench: np.ndarray,
    te_weight: float,
    cap: float,
    aum: float | None = None,
    participation: float = 0.2,
    prev: np.ndarray | None = None,
    turnover_weight: float = 0.0,
) -> np.ndarray:
    """cvxpy's own solve of one review: ``max s'w - te (w-b)'Sigma(w-b) - tw |w - prev|_1``."""
    n = len(ds.ids)
    sigma = search.review_risk_model(ds, cut).covariance()
    scores = ds.securities_at(ds.dates[cut])["ai_score"].to_numpy(dtype=float)
    w = cp.Variable(n)
    obj = scores @ w - te_weight * cp.quad_form(w - bench, cp.psd_wrap(sigma))
    cons = [cp.sum(w) == 1, w >= 0, w <= cap * mask]
    if aum is not None:
        size = cp.Parameter(nonneg=True, value=aum)
        cons.append(size * w <= participation * adv_at(ds, cut))
    if prev is not None and turnover_weight > 0:
        obj = obj - turnover_weight * cp.norm1(w - prev)
    cp.Problem(cp.Maximize(obj), cons).solve(solver=cp.CLARABEL)
    assert w.value is not None
    return np.clip(w.value, 0.0, None)


def objective(
    ds: indexlab.Dataset,
    cut: int,
    bench: np.ndarray,
    te_weight: float,
    prev: np.ndarray,
    turnover_weight: float,
) -> Callable[[np.ndarray], float]:
    """The objective of :func:`reference`, in numpy."""
    sigma = search.review_risk_model(ds, cut).covariance()
    scores = ds.securities_at(ds.dates[cut])["ai_score"].to_numpy(dtype=float)

    def value(w: np.ndarray) -> float:
        a = w - bench
        return float(
            scores @ w - te_weight * a @ sigma @ a - turnover_weight * np.abs(w - prev).sum()
        )

    return value


def test_liquidity_cap_and_parent_weights_match_cvxpy(
    ds: indexlab.Dataset, full: np.ndarray
) -> None:
    ids = np.asarray(ds.ids)
    hk = full & (ds.securities["market"].to_numpy() == "HK")
    liquidity = np.median(ds.field("turnover_value"), axis=0)
    members = ids[hk][np.argsort(-liquidity[hk])[:40]]
    parent = pd.Series(1.0, index=ids[hk][10:50])  # a user-supplied benchmark, equal weights
    cands = [
        search.OptimisedCandidate(
            members=tuple(members), name="liquid", te_weight=20.0, aum_hkd=3e8
        ),
        search.OptimisedCandidate(
            members=tuple(members), name="own_parent", te_weight=20.0, parent_weights=parent
        ),
    ]
    res = search.evaluate(ds, cands, keep_weights=True, progress=False, benchmark=None)
    assert (res.table["status"] == "ok").all(), res.table["status"].tolist()
    mask = np.isin(ids, members).astype(float)
    pw = np.where(np.isin(ids, parent.index), 1.0 / parent.size, 0.0)
    binding = 0
    for name in ("liquid", "own_parent"):
        dates, _, w = res.weights[name].weights_matrix()
        for (cut, _impl, bench), wj in zip(parent_reviews(ds, dates), w, strict=True):
            if name == "liquid":
                ref = reference(ds, cut, mask, bench, 20.0, 0.08, aum=3e8)
                liq = 0.2 * adv_at(ds, cut) / 3e8
                assert (wj <= liq + 1e-9).all()
                binding += int(((ref > 1e-6) & (ref > liq - 1e-6) & (liq < 0.08)).sum())
            else:
                ref = reference(ds, cut, mask, pw, 20.0, 0.08)
            np.testing.assert_allclose(wj, ref, atol=2e-5)
    assert binding > 0  # the participation cap shapes the answer


def test_turnover_penalty_matches_sequential_cvxpy_and_trades_less(
    ds: indexlab.Dataset, full: np.ndarray
) -> None:
    ids = np.asarray(ds.ids)
    members = tuple(ids[full & (ds.securities["market"].to_numpy() == "HK")][:30])
    cands = [
        search.OptimisedCandidate(
            members=members, name="sticky", te_weight=20.0, turnover_weight=0.01
        ),
        search.OptimisedCandidate(members=members, name="free", te_weight=20.0),
    ]
    res = search.evaluate(ds, cands, keep_weights=True, progress=False, benchmark=None)
    t = res.table
    assert (t["status"] == "ok").all(), t["status"].tolist()
    mask = np.isin(ids, members).astype(float)
    dates, _, w = res.weights["sticky"].weights_matrix()
    prev, last = np.zeros(len(ids)), -1
    for (cut, impl, bench), wj in zip(parent_reviews(ds, dates), w, strict=True):
        if last >= 0:
            prev = drift(ds, prev, last, impl)
        ref = reference(ds, cut, mask, bench, 20.0, 0.08, prev=prev, turnover_weight=0.01)
        # An L1 term leaves flat directions near its kinks: the weights agree to solver
        # tolerance, the objective to far better.
        np.testing.assert_allclose(wj, ref, atol=2e-4)
        value = objective(ds, cut, bench, 20.0, prev, 0.01)
        assert value(wj) == pytest.approx(value(ref), abs=1e-7)
        prev, last = wj, impl
    assert t.loc["sticky", "average_turnover"] < t.loc["free", "average_turnover"]


def test_turnover_penalty_with_a_te_budget(ds: indexlab.Dataset, full: np.ndarray) -> None:
    ids = np.asarray(ds.ids)
    members = tuple(ids[full & (ds.securities["market"].to_numpy() == "HK")][:30])
    cand = search.OptimisedCandidate(
        members=members, name="b", te_weight=0.0, te_budget=0.12, turnover_weight=0.01
    )
    res = search.evaluate(ds, [cand], keep_weights=True, progress=False, benchmark=None)
    assert res.table.loc["b", "status"] == "ok", res.table.loc["b", "status"]
    mask = np.isin(ids, members).astype(float)
    dates, _, w = res.weights["b"].weights_matrix()
    prev, last = np.zeros(len(ids)), -1
    scores = ds.securities["ai_score"].to_numpy(dtype=float)
    for (cut, impl, bench), wj in zip(parent_reviews(ds, dates), w, strict=True):
        if last >= 0:
            prev = drift(ds, prev, last, impl)
        sigma = search.review_risk_model(ds, cut).covariance()
        x = cp.Variable(len(ids))
        reference = cp.Problem(
            cp.Maximize(scores @ x - 0.01 * cp.norm1(x - prev)),
            [
                cp.sum(x) == 1,
                x >= 0,
                x <= 0.08 * mask,
                cp.quad_form(x - bench, cp.psd_wrap(sigma)) <= 0.12**2,
            ],
        )
        reference.solve(solver=cp.CLARABEL)
        te = np.sqrt((wj - bench) @ sigma @ (wj - bench))
        assert te <= 0.12 * (1 + 1e-6)
        got = scores @ wj - 0.01 * np.abs(wj - prev).sum()
        assert got == pytest.approx(reference.value, abs=1e-6)
        prev, last = wj, impl


def test_market_filter_and_connect(ds: indexlab.Dataset, full: np.ndarray) -> None:
    ids = np.asarray(ds.ids)
    market = ds.securities["market"].to_numpy()
    members = tuple(ids[full])  # HK and A-share names
    cands = [
        search.OptimisedCandidate(members=members, name="a", markets=("A",), cap=0.1),
        search.OptimisedCandidate(
            members=members, name="hk_connect", markets=("HK",), connect_only=True
        ),
    ]
    res = search.evaluate(ds, cands, keep_weights=True, progress=False, benchmark=None)
    assert (res.table["status"] == "ok").all(), res.table["status"].tolist()
    connect = ds.securities["connect_eligible"].fillna(False).to_numpy(dtype=bool)
    a_mask = (full & np.isin(market, ["SH", "SZ"])).astype(float)
    dates, _, w = res.weights["a"].weights_matrix()
    for (cut, _impl, bench), wj in zip(parent_reviews(ds, dates), w, strict=True):
        assert wj[~np.isin(market, ["SH", "SZ"])].max() == 0.0
        np.testing.assert_allclose(wj, reference(ds, cut, a_mask, bench, 50.0, 0.1), atol=2e-5)
    _, _, w = res.weights["hk_connect"].weights_matrix()
    held = (w > 0).any(axis=0)
    assert held.any() and (market[held] == "HK").all() and connect[held].all()


def test_realised_te_against_numpy_levels(ds: indexlab.Dataset, full: np.ndarray) -> None:
    ids = np.asarray(ds.ids)
    hk = ids[full & (ds.securities["market"].to_numpy() == "HK")]
    parent = pd.Series(np.linspace(1.0, 2.0, 30), index=hk[:30])
    cand = search.OptimisedCandidate(
        members=tuple(hk[5:45]), name="c", te_weight=20.0, parent_weights=parent
    )
    res = search.evaluate(
        ds,
        [cand],
        keep_weights=True,
        keep_levels=True,
        progress=False,
        benchmark=None,
        costs=ZERO_COSTS,
    )
    t = res.table
    assert res.levels is not None
    dates, _, w = res.weights["c"].weights_matrix()
    tr = Market.of(ds).level_input("total_return")
    days = [_impl for _cut, _impl, _b in parent_reviews(ds, dates)]
    t0 = days[0]
    t1 = t0 + len(res.levels) - 1
    pw = np.where(np.isin(ids, parent.index), parent.reindex(ids).fillna(0.0), 0.0)
    pw = pw / pw.sum()

    def levels(rows: np.ndarray) -> np.ndarray:
        """docs/conventions.md, no costs: level[t] = level[r_j] sum_i w_ij tr[t,i]/tr[r_j,i]."""
        out = np.empty(t1 - t0 + 1)
        level = 1000.0
        for j, r0 in enumerate(days):
            end = days[j + 1] if j + 1 < len(days) else t1
            held = rows[j] > 0
            out[r0 - t0 : end - t0 + 1] = (
                level * (tr[r0 : end + 1, held] / tr[r0, held]) @ (rows[j, held])
            )
            level = out[end - t0]
        return out

    cand_lv = res.levels["c"].to_numpy()
    np.testing.assert_allclose(levels(w), cand_lv, rtol=1e-9)
    bench_lv = levels(np.tile(pw, (len(days), 1)))
    diff = np.diff(cand_lv) / cand_lv[:-1] - np.diff(bench_lv) / bench_lv[:-1]
    expected = np.std(diff, ddof=1) * np.sqrt(252)
    assert t.loc["c", "realised_te"] == pytest.approx(expected, rel=1e-8)
    assert np.isfinite(t.loc["c", "ex_ante_te"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"markets": ("XX",)}, "unknown market 'XX'"),
        ({"markets": "HK"}, "markets must be a sequence"),
        ({"aum_hkd": 0.0}, "aum_hkd must be > 0"),
        ({"aum_hkd": -1.0}, "aum_hkd must be a finite number >= 0"),
        ({"turnover_weight": float("nan")}, "turnover_weight must be a finite number"),
        ({"parent_weights": {"a": -1.0}}, "parent_weights must be finite and >= 0"),
        ({"parent_weights": {"a": 0.0}}, "no positive weight"),
    ],
)
def test_checked_at_construction(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        search.OptimisedCandidate(name="bad", **kwargs)  # type: ignore[arg-type]


def test_infeasible_liquidity_and_unknown_parent_ids(
    ds: indexlab.Dataset, full: np.ndarray
) -> None:
    ids = np.asarray(ds.ids)
    members = tuple(ids[full][:30])
    res = search.evaluate(
        ds,
        [
            search.OptimisedCandidate(members=members, name="huge", aum_hkd=1e15),
            search.OptimisedCandidate(members=members, name="ok"),
        ],
        progress=False,
        benchmark=None,
    )
    assert res.table.loc["huge", "status"].startswith("infeasible at review 0")
    assert "liquidity cap" in res.table.loc["huge", "status"]
    with pytest.raises(DataError, match="parent_weights name ids not in the dataset"):
        search.evaluate(
            ds,
            [search.OptimisedCandidate(members=members, parent_weights={"NOPE.HK": 1.0})],
            progress=False,
            benchmark=None,
        )


API_DATA = {"name": "synthetic", "n_securities": 120, "years": 3, "seed": 3}


def test_api_search_takes_the_same_optimiser_options(
    ds: indexlab.Dataset, full: np.ndarray
) -> None:
    from indexlab import api

    ids = np.asarray(ds.ids)
    pool = [str(i) for i in ids[full][:40]]
    spec: dict[str, Any] = {
        "te_weight": 20.0,
        "markets": ["HK", "A"],
        "aum_hkd": 1e8,
        "turnover_weight": 0.01,
        "parent_weights": {pool[0]: 1.0, pool[1]: 2.0, pool[2]: 1.0},
    }
    doc = api.handle(
        {
            "api_version": "1",
            "kind": "search",
            "dataset": API_DATA,
            "candidates": {"type": "optimiser", "members": [pool], **spec},
        }
    )
    assert "error" not in doc, doc.get("error")
    kwargs = dict(spec, markets=tuple(spec["markets"]))
    direct = search.evaluate(
        ds, [search.OptimisedCandidate(members=tuple(pool), **kwargs)], progress=False
    )
    (row,) = doc["result"]["table"]
    want = direct.table.iloc[0]
    assert row["status"] == want["status"] == "ok"
    for col in ("ex_ante_te", "realised_te", "tracking_error", "ai_exposure", "average_turnover"):
        assert row[col] == pytest.approx(float(want[col]), rel=1e-9)


@pytest.mark.parametrize(
    "bad",
    [
        {"markets": ["XX"]},
        {"aum_hkd": 0.0},
        {"turnover_weight": -1.0},
        {"parent_weights": {"a": 0.0}},
        {"participation": float("inf")},
    ],
)
def test_api_refuses_bad_optimiser_options(bad: dict[str, object]) -> None:
    from indexlab import api

    cands = {"type": "optimiser", "members": [["a"]], **bad}
    doc = api.handle(
        {"api_version": "1", "kind": "search", "dataset": API_DATA, "candidates": cands}
    )
    assert doc["error"]["code"] == "invalid_request", doc["error"]
    assert next(iter(bad)) in str(doc["error"])


def test_config_takes_the_optimiser_options(ds: indexlab.Dataset) -> None:
    from indexlab.search.config import candidates_from_config

    cfg = {
        "candidates": {
            "optimised": [
                {
                    "name": "o",
                    "markets": ["A"],
                    "aum_hkd": 5e8,
                    "participation": 0.1,
                    "turnover_weight": 0.02,
                    "te_budget": 0.08,
                    "parent_weights": {"a": 1.0, "b": 3.0},
                }
            ]
        }
    }
    (c,) = list(candidates_from_config(cfg, ds))
    assert c.markets == ("SH", "SZ") and c.aum_hkd == 5e8 and c.participation == 0.1
    assert c.turnover_weight == 0.02 and c.te_budget == 0.08
    assert c.parent_weights.to_dict() == {"a": 1.0, "b": 3.0}
