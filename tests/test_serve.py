"""The reference HTTP server over loopback: uvicorn in a thread on a free port, urllib client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from indexlab.api import schema  # noqa: E402
from indexlab.cli import _serve, build_parser  # noqa: E402
from loopback_server import running_server  # noqa: E402


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running_server() as port:
        yield f"http://127.0.0.1:{port}"


def _call(url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_healthz(base_url: str) -> None:
    status, doc = _call(base_url + "/healthz")
    assert status == 200 and doc["status"] == "ok"


def test_schema_route(base_url: str) -> None:
    status, doc = _call(base_url + "/v1/schema")
    assert status == 200 and doc == json.loads(json.dumps(schema()))


def test_handle_route(base_url: str) -> None:
    req = {
        "api_version": "1",
        "kind": "build",
        "dataset": {"name": "synthetic", "n_securities": 120, "years": 2, "seed": 3},
        "rules": "HSTECH",
        "overrides": {"n": 20},
    }
    status, doc = _call(base_url + "/v1/handle", json.dumps(req).encode())
    assert status == 200 and len(doc["result"]["latest"]) == 20
    assert abs(sum(doc["result"]["latest"].values()) - 1) < 1e-12


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{oops", 400, "invalid_request"),
        (
            b'{"api_version": "1", "kind": "build", "dataset": {"name": "hk_tech"}}',
            400,
            "invalid_request",
        ),
        (
            json.dumps(
                {
                    "api_version": "1",
                    "kind": "build",
                    "rules": "HSTECH",
                    "overrides": {"n": 10},
                    "dataset": {"name": "synthetic", "n_securities": 120, "years": 2, "seed": 3},
                }
            ).encode(),
            422,
            "infeasible",
        ),
    ],
)
def test_handle_route_errors(base_url: str, body: bytes, status: int, code: str) -> None:
    got, doc = _call(base_url + "/v1/handle", body)
    assert got == status and doc["error"]["code"] == code


def test_serve_subcommand_is_wired() -> None:
    args = build_parser().parse_args(["serve", "--port", "8123", "--host", "127.0.0.1"])
    assert args.run is _serve and args.port == 8123 and args.host == "127.0.0.1"
