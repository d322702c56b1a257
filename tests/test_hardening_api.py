"""Hardening of the service API and the shared sample (README, Errors): bad input gets a typed error
naming the field, the dataset cache is bounded in bytes, an interrupted search is never a plain
success, the reference server refuses an over-limit body before reading it, and no caller's
edit of ``hk_tech()`` reaches another caller or the API."""

from __future__ import annotations

import copy
import dataclasses
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import indexlab
import numpy as np
import pytest
from hand_market import security_row
from indexlab import api, search
from indexlab.api import handlers
from indexlab.api import models as api_models
from loopback_server import running_server

SYN = {"name": "synthetic", "n_securities": 120, "years": 2, "seed": 3}


def req(kind: str, **fields: Any) -> dict[str, Any]:
    return {"api_version": "1", "kind": kind, "dataset": SYN, **fields}


def error(doc: dict[str, Any], code: str) -> dict[str, Any]:
    assert "result" not in doc, "expected an error document"
    json.dumps(doc, allow_nan=False)
    assert doc["error"]["code"] == code, doc["error"]
    return dict(doc["error"])


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("request_", "where", "field", "value"),
    [
        (req("build", rules="HSTECH", overrides={"n": 30.5}), ["overrides"], "selection.n", "30.5"),
        (
            req("build", rules="HSTECH", overrides={"cap": True}),
            ["overrides"],
            "weighting.cap",
            "True",
        ),
        (
            req("build", rules="HSTECH", overrides={"universe.markets": "HK"}),
            ["overrides"],
            "universe.markets",
            "'HK'",
        ),
        (req("build", rules={"universe": {"markets": "HK"}}), ["rules"], "universe.markets", "HK"),
        (
            req("backtest", schedules={"a": {"rules": "HSTECH", "overrides": {"n": 30.5}}}),
            ["schedules", "a", "overrides"],
            "selection.n",
            "30.5",
        ),
        (
            req(
                "search",
                candidates={"type": "rules_grid", "rules": "HSTECH", "axes": {"n": [20, 30.5]}},
            ),
            ["candidates", "axes"],
            "selection.n",
            "30.5",
        ),
    ],
)
def test_bad_rule_values_are_invalid_requests_naming_the_field(
    request_: dict[str, Any], where: list[Any], field: str, value: str
) -> None:
    """Whichever layer refuses the value first (the rules model or the API's own check of
    every rules field against its declared type), the answer is an invalid_request whose
    ``where`` points at the request field and whose message names the rules field and value."""
    e = error(api.handle(request_), "invalid_request")
    assert e["where"][: len(where)] == where, e
    assert field in e["message"] and value in e["message"], e


def test_the_api_checks_rules_fields_against_their_types() -> None:
    """The API's own check, independent of what the rules model accepts."""
    from indexlab import rules as rules_mod

    good = rules_mod.HSTECH
    handlers._check_rules(good, ["rules"], "rules")  # a preset passes
    bad = dataclasses.replace(good, selection=_unchecked(good.selection, n=30.5))
    with pytest.raises(api.ApiError) as info:
        handlers._check_rules(bad, ["overrides"], "overrides")
    assert info.value.where == ["overrides", "selection.n"]
    assert "expected an integer, found 30.5" in info.value.message
    bad = dataclasses.replace(good, universe=_unchecked(good.universe, markets="HK"))
    with pytest.raises(api.ApiError, match="universe.markets: expected a list, found 'HK'"):
        handlers._check_rules(bad, ["rules"], "rules")


def _unchecked(obj: Any, **changes: Any) -> Any:
    """A copy of a frozen dataclass with fields set past its own validation."""
    out = copy.copy(obj)
    for k, v in changes.items():
        object.__setattr__(out, k, v)
    return out


def test_deeply_nested_json_text_is_an_invalid_request() -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    e = error(api.handle(deep), "invalid_request")
    assert "MAX_NESTING" in e["message"]


def test_deeply_nested_object_is_refused_before_validation() -> None:
    nested: dict[str, Any] = {}
    cur = nested
    for _ in range(api_models.MAX_NESTING + 5):
        cur["x"] = {}
        cur = cur["x"]
    e = error(api.handle(req("build", rules="HSTECH", overrides=nested)), "invalid_request")
    assert "MAX_NESTING" in e["message"] and e["where"][:2] == ["overrides", "x"]


def test_a_bad_inline_date_is_a_data_error() -> None:
    sec = security_row("a", name="A", ai_score=0.1)
    row = {"id": "a", "close": 1.0, "total_return": 1.0, "shares_outstanding": 1.0}
    row |= {"free_float_factor": 1.0, "turnover_value": 1.0, "turnover_shares": 1.0}
    data = {"name": "inline", "securities": [sec], "panel": [{"date": "2021-99-01", **row}]}
    e = error(
        api.handle({"api_version": "1", "kind": "build", "rules": "HSI", "dataset": data}),
        "data_error",
    )
    assert e["where"] == ["dataset"] and "2021-99-01" in e["message"]


# ------------------------------------------------------------------------------ the cache


@pytest.fixture
def empty_cache() -> Iterator[None]:
    with handlers._synthetic_lock:
        saved = dict(handlers._synthetic_cache)
        handlers._synthetic_cache.clear()
    yield
    with handlers._synthetic_lock:
        handlers._synthetic_cache.clear()
        handlers._synthetic_cache.update(saved)


def test_dataset_cache_default_budget_is_well_under_a_gigabyte() -> None:
    assert handlers.DATASET_CACHE_BYTES <= 256 * 1024 * 1024
    assert api.dataset_cache_info()["budget"] == handlers.DATASET_CACHE_BYTES


def test_dataset_cache_is_bounded_in_bytes_lru(
    monkeypatch: pytest.MonkeyPatch, empty_cache: None
) -> None:
    one = handlers._synthetic(10, 1.0, 0)
    size = api.dataset_cache_info()["bytes"]
    # Independent size: the arrays and frames, doubled (module docstring, "Memory").
    arrays = one.dates.nbytes + sum(a.nbytes for a in one.fields.values())
    frames = sum(
        int(f.memory_usage(index=True, deep=True).sum())
        for f in (one.securities, one.fx, one.benchmarks, one.classification)
        if f is not None
    )
    assert size == 2 * (arrays + frames)
    monkeypatch.setattr(handlers, "DATASET_CACHE_BYTES", int(2.5 * size))
    for seed in (1, 2, 3):
        handlers._synthetic(10, 1.0, seed)
        info = api.dataset_cache_info()
        assert info["bytes"] <= info["budget"] and info["entries"] <= 2
    assert list(handlers._synthetic_cache) == [(10, 1.0, 2), (10, 1.0, 3)]
    handlers._synthetic(10, 1.0, 2)  # a hit moves it to the end: seed 3 goes next
    handlers._synthetic(10, 1.0, 4)
    assert list(handlers._synthetic_cache) == [(10, 1.0, 2), (10, 1.0, 4)]


def test_a_dataset_over_the_budget_is_served_but_not_kept(
    monkeypatch: pytest.MonkeyPatch, empty_cache: None
) -> None:
    monkeypatch.setattr(handlers, "DATASET_CACHE_BYTES", 1000)
    doc = api.handle(req("build", rules="HSTECH", overrides={"n": 20}))
    assert "error" not in doc and len(doc["result"]["latest"]) == 20
    assert api.dataset_cache_info()["entries"] == 0


# ------------------------------------------------------------------------------ interruption


def test_an_interrupted_search_is_a_cancelled_error_not_a_partial_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = search.evaluate

    def ctrl_c_after_first_chunk(*args: Any, **kwargs: Any) -> Any:
        def progress(done: int, total: int | None) -> None:
            raise KeyboardInterrupt

        return real(*args, **{**kwargs, "progress": progress})

    monkeypatch.setattr(search, "evaluate", ctrl_c_after_first_chunk)
    monkeypatch.setattr(handlers, "SEARCH_CHUNK", 1)
    ds = indexlab.datasets.synthetic(n_securities=120, years=2, seed=3)
    snap = ds.snapshot(ds.dates[0]).nlargest(60, "free_float_mcap_hkd")
    pools = [list(snap["id"].iloc[i : i + 20]) for i in range(0, 60, 20)]
    doc = api.handle(req("search", candidates={"type": "members", "members": pools}))
    e = error(doc, "cancelled")
    assert "1 of 3" in e["message"] and e["where"] == "search"


def test_a_cancelled_token_says_cancelled_and_a_passed_deadline_says_timeout() -> None:
    token = api.CancelToken(None)
    token.cancel()
    with pytest.raises(api.DeadlineExceeded) as info:
        token.check("build")
    assert info.value.code == "cancelled"
    with pytest.raises(api.DeadlineExceeded) as info:
        api.CancelToken(0.0).check("build")
    assert info.value.code == "timeout"


def test_every_error_code_is_in_the_schema_and_has_an_http_status() -> None:
    from indexlab.api.server import HTTP_STATUS

    schema_codes = api.schema()["ErrorResponse"]["$defs"]["ErrorBody"]["properties"]["code"]
    assert set(schema_codes["enum"]) == set(api.ERROR_CODES) == set(HTTP_STATUS)


# ------------------------------------------------------------------------------ hk_tech copies


def test_hk_tech_hands_each_caller_its_own_frames() -> None:
    from indexlab.datasets import _hk_tech_shared

    first = indexlab.datasets.hk_tech()
    name0 = first.securities.loc[0, "name"]
    first.securities.loc[0, "name"] = "edited"
    first.fx.iloc[:, 0] = -1.0
    first.benchmarks.iloc[0, 0] = -1.0
    if first.classification is not None:
        first.classification.iloc[0, 0] = "edited"
    first.fields["close"] = np.zeros(1)  # type: ignore[index]
    later = indexlab.datasets.hk_tech()
    assert later.securities.loc[0, "name"] == name0
    assert (later.fx.to_numpy() > 0).all()
    assert later.benchmarks.iloc[0, 0] != -1.0
    assert later.classification is None or later.classification.iloc[0, 0] != "edited"
    assert later.field("close").shape == (len(later.dates), len(later.ids))
    # The API reads its own instance: the caller's edits are not there either.
    shared = _hk_tech_shared()
    assert shared.securities.loc[0, "name"] == name0 and shared is not first
    # The panel arrays are read-only, so they are shared rather than copied.
    assert not later.field("close").flags.writeable


def test_hk_tech_stays_fast() -> None:
    indexlab.datasets.hk_tech()  # the one load
    start = time.perf_counter()
    for _ in range(20):
        indexlab.datasets.hk_tech()
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.02, f"hk_tech() took {per_call * 1000:.1f} ms per call"


# ------------------------------------------------------------------------------ the server

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    with running_server() as port:
        yield port


def _raw(port: int, head: bytes, body_parts: list[bytes]) -> tuple[int, dict[str, Any]]:
    """Send a request over loopback part by part (a part the server no longer reads may fail
    to send) and read the answer; a 5 s timeout: the server must answer without the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed: the rest is not read
                break
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, json.loads(payload[: _length(data) - len(header) - 4])


def _length(data: bytes) -> int:
    header, sep, _ = data.partition(b"\r\n\r\n")
    for line in header.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return len(header) + len(sep) + int(value)
    return 1 << 62


def test_server_refuses_an_over_limit_content_length_before_reading_the_body(
    server_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_models, "MAX_REQUEST_BYTES", 1000)
    head = (
        b"POST /v1/handle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    # 300 MB announced, 1 KB sent: the answer must come from the header alone.
    status, doc = _raw(server_port, head, [b"x" * 1024])
    assert status == 413 and doc["error"]["code"] == "invalid_request"
    assert "300000000 bytes" in doc["error"]["message"]
    assert "MAX_REQUEST_BYTES" in doc["error"]["message"]


def test_server_refuses_a_chunked_body_once_it_passes_the_limit(
    server_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_models, "MAX_REQUEST_BYTES", 1000)
    head = (
        b"POST /v1/handle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"258\r\n" + b" " * 600 + b"\r\n"  # 0x258 = 600 bytes
    # Never terminated: only a server that stops at the limit can answer.
    status, doc = _raw(server_port, head, [chunk] * 4)
    assert status == 413 and doc["error"]["code"] == "invalid_request"
    assert "more than 1000" in doc["error"]["message"]


def test_server_still_reads_a_chunked_body_under_the_limit(server_port: int) -> None:
    head = (
        b"POST /v1/handle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    body = b'{"api_version": "1", "kind": "nope"}'
    status, doc = _raw(server_port, head, [b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)])
    assert status == 400 and doc["error"]["where"] == ["kind"]
