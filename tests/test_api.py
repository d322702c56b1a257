"""indexlab.api: request validation, results against direct library calls and independent
solves, error codes, limits, deadlines and thread safety."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import indexlab
import numpy as np
import pandas as pd
import pytest
from hand_market import security_row
from indexlab import api, search
from indexlab.api import handlers
from indexlab.api import models as api_models

ROOT = Path(__file__).resolve().parents[1]
SYN = {"name": "synthetic", "n_securities": 120, "years": 2, "seed": 3}


def req(kind: str, **fields: Any) -> dict[str, Any]:
    return {"api_version": "1", "kind": kind, "dataset": SYN, **fields}


def ok(doc: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in doc, doc.get("error")
    json.dumps(doc, allow_nan=False)  # JSON-ready: no NaN, no numpy scalars, no dates
    assert doc["api_version"] == "1" and doc["indexlab_version"] == indexlab.__version__
    assert doc["timings"]["total"] >= 0
    return doc


def err(doc: dict[str, Any], code: str) -> dict[str, Any]:
    assert "result" not in doc
    json.dumps(doc, allow_nan=False)
    assert doc["error"]["code"] == code, doc["error"]
    assert "Traceback" not in doc["error"]["message"]
    return doc["error"]


def without_timings(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "timings"}


# ------------------------------------------------------------------------------ schema


def test_schema_matches_checked_in_copy() -> None:
    path = ROOT / "docs" / "api-schema.json"
    assert path.read_text(encoding="utf-8") == api.schema_json(), (
        "docs/api-schema.json is stale; regenerate it with "
        "`python -m indexlab.api --write-schema docs/api-schema.json`"
    )


def test_schema_lists_every_model() -> None:
    s = api.schema()
    for name in ("BuildRequest", "BacktestRequest", "OptimiseRequest", "SearchRequest"):
        assert s[name]["properties"]["api_version"]["const"] == "1"
        assert name.replace("Request", "Response") in s
    assert "ErrorResponse" in s


# ------------------------------------------------------------------------------ build


def test_build_matches_build_index() -> None:
    doc = ok(api.handle(req("build", rules="HSTECH", overrides={"n": 20}, request_id="r1")))
    assert doc["kind"] == "build" and doc["request_id"] == "r1"
    ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    hist = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=20))
    rev = hist.reviews
    assert len(doc["result"]["reviews"]) == len(rev)
    got = pd.DataFrame(doc["result"]["reviews"])
    np.testing.assert_array_equal(got["id"], rev["id"])
    np.testing.assert_allclose(got["weight"], rev["weight"], rtol=0, atol=0)
    assert list(got["effective_date"]) == list(rev["effective_date"].dt.strftime("%Y-%m-%d"))
    last = rev[rev["effective_date"] == rev["effective_date"].max()]
    assert doc["result"]["latest"] == dict(zip(last["id"], last["weight"], strict=True))
    assert sum(doc["result"]["latest"].values()) == pytest.approx(1.0, abs=1e-12)
    assert max(doc["result"]["latest"].values()) <= 0.08 + 1e-12
    assert doc["result"]["rules"]["selection"]["n"] == 20
    assert doc["diagnostics"]["counts"]["n_latest"] == 20
    assert len(doc["result"]["changes"]) == len(hist.changes())
    assert {"dataset", "build", "serialise", "total"} <= set(doc["timings"])


def test_build_accepts_json_text_and_rules_dict() -> None:
    rules = indexlab.rules.HSTECH.replace(n=15).to_dict()
    doc = ok(api.handle(json.dumps(req("build", rules=rules))))
    assert len(doc["result"]["latest"]) == 15


# ------------------------------------------------------------------------------ backtest


def test_backtest_matches_library_joint_call() -> None:
    """The API runs schedules one at a time (deadline checks); the joint call is the reference."""
    ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    ids = [str(i) for i in ds.ids[:3]]
    w_sched = {"dates": ["2016-07-04", "2017-01-03"], "ids": ids, "weights": [[0.5, 0.3, 0.2]] * 2}
    doc = ok(
        api.handle(
            req(
                "backtest",
                schedules={"tech": {"rules": "HSTECH", "overrides": {"n": 20}}, "w": w_sched},
                include_weights=True,
            )
        )
    )
    ref = indexlab.backtest(
        ds,
        {
            "tech": indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=20)),
            "w": indexlab.Schedule(w_sched["dates"], ids, w_sched["weights"]),
        },
    )
    res = doc["result"]
    assert res["levels"]["dates"] == list(ref.levels.index.strftime("%Y-%m-%d"))
    for col in ("tech", "w", "benchmark"):
        got = np.array([np.nan if v is None else v for v in res["levels"]["values"][col]])
        np.testing.assert_allclose(got, ref.levels[col].to_numpy(), rtol=1e-13, equal_nan=True)
    for name in ("tech", "w"):
        for key in ("total_return", "tracking_error", "ai_exposure"):
            assert res["metrics"][name][key] == pytest.approx(ref.metrics.loc[name, key], rel=1e-12)
        to = ref.turnover[name].dropna().to_numpy()
        np.testing.assert_allclose(res["turnover"][name]["values"][name], to, rtol=1e-14)
        # The joint call's average is NaN when schedules rebalance on different dates (its
        # turnover frame is their union); one schedule at a time gives the plain mean.
        assert res["metrics"][name]["average_turnover"] == pytest.approx(to[1:].mean(), rel=1e-12)
    target = ref.weights[ref.weights["kind"] == "target"]
    assert len(res["weights"]) == len(target)


def inline_dataset() -> dict[str, Any]:
    sec = [security_row(i, ai_layer="application", ai_score=0.5) for i in ("0001.HK", "0002.HK")]
    tr = {"0001.HK": [10.0, 11.0, 12.1, 11.0], "0002.HK": [20.0, 19.0, 21.0, 22.0]}
    days = ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07"]
    panel = [
        {
            "date": d,
            "id": i,
            "close": tr[i][t],
            "total_return": tr[i][t],
            "shares_outstanding": 1e9,
            "free_float_factor": 0.5,
            "turnover_value": 1e8,
            "turnover_shares": 1e7,
        }
        for t, d in enumerate(days)
        for i in tr
    ]
    return {"name": "inline", "securities": sec, "panel": panel}


def test_backtest_inline_data_against_hand_computation() -> None:
    sched = {"dates": ["2025-01-02"], "ids": ["0001.HK", "0002.HK"], "weights": [[0.25, 0.75]]}
    doc = ok(
        api.handle(
            {
                "api_version": "1",
                "kind": "backtest",
                "dataset": inline_dataset(),
                "schedules": {"s": sched},
                "benchmark": None,
            }
        )
    )
    a = np.array([10.0, 11.0, 12.1, 11.0])
    b = np.array([20.0, 19.0, 21.0, 22.0])
    expected = 1000 * (0.25 * a / a[0] + 0.75 * b / b[0])  # one rebalance: no cost after day 0
    np.testing.assert_allclose(doc["result"]["levels"]["values"]["s"], expected, rtol=1e-14)
    assert "benchmark" not in doc["result"]["levels"]["values"]


def test_inline_data_error_names_the_problem() -> None:
    data = inline_dataset()
    data["panel"][3]["id"] = "9999.HK"
    e = err(
        api.handle({"api_version": "1", "kind": "build", "dataset": data, "rules": "HSTECH"}),
        "data_error",
    )
    assert "9999.HK" in e["message"] and e["where"] == ["dataset"]


# ------------------------------------------------------------------------------ optimise


def test_optimise_matches_cvxpy_solve() -> None:
    cp = pytest.importorskip("cvxpy")
    from indexlab.optimise import RiskModel, ai_chain_model

    ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    mcap = ds.market_cap()[-1]
    tr = ds.field("total_return") * ds.fx_to_hkd()
    cols = np.flatnonzero(np.isfinite(mcap) & (mcap > 0) & np.isfinite(tr[-1]))
    ids = [str(i) for i in ds.ids[cols]]
    mask_ids = ids[:40]
    doc = ok(
        api.handle(req("optimise", cap=0.1, te_weight=5.0, mask=mask_ids, scores={ids[0]: 0.9}))
    )
    res = doc["result"]
    assert res["status"] == "optimal" and list(res["weights"]) == ids

    # Reference: the same model, solved by cvxpy itself (Clarabel), inputs built with numpy.
    window = pd.DataFrame(tr[-253:, cols]).ffill().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        rets = window[1:] / window[:-1] - 1
    rm = RiskModel.from_returns(rets, n_factors=5)
    bench = np.nan_to_num(mcap[cols]) / np.nan_to_num(mcap[cols]).sum()
    scores = ds.securities["ai_score"].to_numpy(dtype=float)[cols]
    scores[0] = 0.9
    mask = np.isin(ids, mask_ids).astype(float)
    prob, w = ai_chain_model(ids, bench, scores, rm, cap=0.1, te_weight=5.0)
    next(p for p in prob.parameters() if p.name() == "mask").value = mask
    prob.solve(solver=cp.CLARABEL)
    got = np.array(list(res["weights"].values()))
    np.testing.assert_allclose(got, w.value, atol=2e-6)
    assert res["objective"] == pytest.approx(prob.value, abs=1e-6)
    assert res["ai_exposure"] == pytest.approx(float(scores @ w.value), abs=1e-6)
    assert got[~np.isin(ids, mask_ids)].max() <= 1e-9


def test_optimise_infeasible_cap() -> None:
    e = err(api.handle(req("optimise", cap=0.1, mask=["0015.HK"])), "infeasible")
    assert "1 names x cap 0.1" in e["message"]


# ------------------------------------------------------------------------------ search


def test_search_matches_evaluate() -> None:
    ds = indexlab.datasets.synthetic(**{k: v for k, v in SYN.items() if k != "name"})
    snap = ds.snapshot(ds.dates[0]).nlargest(60, "free_float_mcap_hkd")  # listed from the start
    pools = [list(snap["id"].iloc[i : i + 20]) for i in range(0, 60, 20)]
    doc = ok(api.handle(req("search", candidates={"type": "members", "members": pools})))
    direct = search.evaluate(ds, [search.MemberList(tuple(p)) for p in pools], progress=False)
    got = doc["result"]["table"]
    assert [row["candidate"] for row in got] == list(direct.table.index)
    for row, (_, want) in zip(got, direct.table.iterrows(), strict=True):
        for col in ("total_return", "tracking_error", "ai_exposure", "average_turnover"):
            assert row[col] == pytest.approx(float(want[col]), rel=1e-12, nan_ok=True)
    assert doc["result"]["frontier"] == [str(i) for i in direct.pareto().index]
    assert doc["diagnostics"]["counts"]["n_candidates"] == 3


def test_search_optimiser_candidates_take_a_te_budget_and_screens() -> None:
    ds = indexlab.datasets.synthetic(**{k: v for k, v in SYN.items() if k != "name"})
    snap = ds.snapshot(ds.dates[0]).nlargest(40, "free_float_mcap_hkd")
    pool = list(snap["id"])
    spec = {"te_weight": 0.0, "te_budget": 0.3, "min_adv_hkd": 1e5, "connect_only": True}
    cands = {"type": "optimiser", "members": [pool], **spec}
    doc = ok(api.handle(req("search", candidates=cands)))
    direct = search.evaluate(
        ds, [search.OptimisedCandidate(members=tuple(pool), **spec)], progress=False
    )
    (row,) = doc["result"]["table"]
    want = direct.table.iloc[0]
    assert row["status"] == want["status"]
    for col in ("te_budget", "ex_ante_te", "tracking_error", "ai_exposure"):
        assert row[col] == pytest.approx(float(want[col]), rel=1e-12, nan_ok=True)


@pytest.mark.parametrize("bad", [{"te_budget": -0.01}, {"min_adv_hkd": -1.0}, {"te_budget": "x"}])
def test_search_refuses_a_bad_te_budget_or_screen(bad: dict[str, Any]) -> None:
    cands = {"type": "optimiser", "members": [["a"]], **bad}
    e = err(api.handle(req("search", candidates=cands)), "invalid_request")
    assert next(iter(bad)) in json.dumps(e)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("request_", "where", "words"),
    [
        ("{not json", [], "not valid JSON"),
        ("[1, 2]", [], "JSON object"),
        ({"kind": "build"}, ["api_version"], "api_version"),
        ({"api_version": "2", "kind": "build"}, ["api_version"], "'2'"),
        ({"api_version": "1", "kind": "nope"}, ["kind"], "'nope'"),
        (req("build", rules="HSTECH", colour="red"), ["colour"], "Extra inputs"),
        (
            req("build", rules="NOPE"),
            ["rules", "literal['HSI','HSTECH','HSTECH_2026','AI_CHAIN','AI_CHAIN_AH']"],
            "HSI",
        ),
        (req("build", rules={"selection": {"size": 3}}), ["rules"], "size"),
        (req("build", rules="HSTECH", overrides={"colour": 1}), ["overrides"], "colour"),
        ({**req("build", rules="HSI"), "dataset": {"name": "moon"}}, ["dataset"], "moon"),
        (req("build", rules="HSI", start="2020-13-01"), ["start"], "date"),
        (
            req(
                "backtest",
                schedules={"s": {"dates": ["2016-01-04"], "ids": ["a"], "weights": [[0.5, 0.5]]}},
            ),
            ["schedules", "s", "weights"],
            "weights[0]",
        ),
        (req("optimise", universe=["0015.HK", "nope.HK"]), ["universe"], "nope.HK"),
        (req("optimise", deadline_seconds=-1), ["deadline_seconds"], "greater than 0"),
    ],
)
def test_invalid_requests(request_: Any, where: list[Any], words: str) -> None:
    e = err(api.handle(request_), "invalid_request")
    assert e["where"][: len(where)] == where
    assert words in e["message"]


def test_infeasible_rules() -> None:
    e = err(api.handle(req("build", rules="HSTECH", overrides={"n": 10})), "infeasible")
    assert "cap" in e["message"]


def test_data_error() -> None:
    e = err(
        api.handle(req("build", rules="HSTECH", start="1990-01-01", end="1990-02-01")), "data_error"
    )
    assert e["message"]


def test_internal_error_is_generic_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(handlers, "_build", boom)
    with caplog.at_level(logging.ERROR, logger="indexlab.api"):
        e = err(api.handle(req("build", rules="HSTECH")), "internal")
    assert "secret detail" not in e["message"] and "incident" in e["message"]
    assert "secret detail" in caplog.text


def test_solver_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*a: Any, **k: Any) -> Any:
        raise indexlab.SolverError("no progress")

    monkeypatch.setattr(handlers, "_build", fail)
    assert err(api.handle(req("build", rules="HSTECH")), "solver_error")["message"] == (
        "no progress"
    )


@pytest.mark.parametrize(
    ("limit", "value", "request_", "words"),
    [
        ("MAX_SECURITIES", 100, req("build", rules="HSI"), "n_securities"),
        ("MAX_DATES", 400, req("build", rules="HSI"), "trading days"),
        (
            "MAX_SCHEDULES",
            1,
            req("backtest", schedules={"a": {"rules": "HSI"}, "b": {"rules": "HSI"}}),
            "schedules",
        ),
        (
            "MAX_PANEL_ROWS",
            7,
            {"api_version": "1", "kind": "build", "rules": "HSI", "dataset": inline_dataset()},
            "panel rows",
        ),
        (
            "MAX_CANDIDATES",
            3,
            req(
                "search",
                candidates={
                    "type": "rules_grid",
                    "rules": "HSI",
                    "axes": {"n": [10, 20], "cap": [0.1, 0.2]},
                },
            ),
            "candidates",
        ),
    ],
)
def test_size_limits(
    monkeypatch: pytest.MonkeyPatch, limit: str, value: int, request_: Any, words: str
) -> None:
    monkeypatch.setattr(api_models, limit, value)
    e = err(api.handle(request_), "invalid_request")
    assert words in e["message"] and limit in e["message"]


def test_request_bytes_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_models, "MAX_REQUEST_BYTES", 50)
    e = err(api.handle(json.dumps(req("build", rules="HSI"))), "invalid_request")
    assert "MAX_REQUEST_BYTES" in e["message"]


# ------------------------------------------------------------------------------ deadlines


def test_deadline_returns_timeout_and_frees_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage that blocks until released, with a 0.1 s deadline: handle() answers 'timeout'
    while the stage is still blocked; once released, the worker stops at its next checkpoint
    (the build never runs) and its thread ends."""
    release = threading.Event()
    entered = threading.Event()
    built: list[int] = []
    real = handlers._synthetic

    def blocked(*a: Any) -> Any:
        entered.set()
        release.wait(60)
        return real(*a)

    import indexlab.rules as rules_mod

    monkeypatch.setattr(handlers, "_synthetic", blocked)
    monkeypatch.setattr(rules_mod, "build_index", lambda *a, **k: built.append(1))
    e = err(api.handle(req("build", rules="HSTECH", deadline_seconds=0.1)), "timeout")
    assert not release.is_set()  # answered while the stage (if it started) is still blocked
    assert "0.1 s" in e["message"]
    workers = [th for th in threading.enumerate() if th.name.startswith("indexlab-api-")]
    assert workers
    release.set()
    for th in workers:
        th.join(30)
        assert not th.is_alive()
    assert built == []


def test_deadline_not_reached_gives_the_same_answer() -> None:
    a = ok(api.handle(req("build", rules="HSTECH", overrides={"n": 20})))
    b = ok(api.handle(req("build", rules="HSTECH", overrides={"n": 20}, deadline_seconds=600)))
    assert without_timings(a) == without_timings(b)


def test_cancel_token() -> None:
    token = api.CancelToken(None)
    token.check("x")
    token.cancel()
    with pytest.raises(api.DeadlineExceeded):
        token.check("x")
    assert api.CancelToken(0.0).cancelled


# ------------------------------------------------------------------------------ threads


def test_eight_threads_match_sequential() -> None:
    requests: list[dict[str, Any]] = [
        req("build", rules="HSTECH", overrides={"n": 20}),
        req("build", rules="HSI"),
        req("build", rules="AI_CHAIN"),
        req("backtest", schedules={"a": {"rules": "HSTECH", "overrides": {"n": 25}}}),
        req("backtest", schedules={"b": {"rules": "HSI"}}, benchmark="HSI"),
        req("build", rules="HSTECH", overrides={"cap": 0.1, "n": 20}),
        {**req("build", rules="HSTECH"), "dataset": {**SYN, "seed": 4}},
        req("build", rules="HSTECH", overrides={"n": 10}),  # an error document
    ]
    if pytest.importorskip("cvxpy", reason="optimise needs cvxpy") is not None:
        requests[2] = req("optimise", cap=0.1)
    sequential = [without_timings(api.handle(r)) for r in requests]
    assert "error" in sequential[-1] and all("error" not in d for d in sequential[:-1])
    results: list[Any] = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def run(k: int) -> None:
        barrier.wait()
        results[k] = without_timings(api.handle(requests[k]))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(requests))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert results == sequential


def test_api_preset_names_are_the_rules_presets() -> None:
    from typing import get_args

    from indexlab import rules
    from indexlab.api.models import PresetName

    assert set(get_args(PresetName)) == set(rules.PRESETS)
