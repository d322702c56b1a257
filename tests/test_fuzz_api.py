"""Fuzzing the service API: any JSON document gets a result or a typed error, never a
traceback, and bad input never reports ``internal``."""

from __future__ import annotations

import json

import indexlab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from indexlab.api import ERROR_CODES, handle

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KINDS = st.sampled_from(["build", "backtest", "optimise", "search", "nonsense"])
FIELDS = st.sampled_from(
    [
        "dataset",
        "rules",
        "overrides",
        "schedules",
        "benchmark",
        "start",
        "end",
        "date",
        "deadline_seconds",
        "candidates",
        "universe",
        "scores",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=KINDS, extra=st.dictionaries(FIELDS, JSONISH, max_size=4))
def test_any_document_gets_a_result_or_a_typed_non_internal_error(kind: str, extra: dict) -> None:
    doc = handle({"api_version": "1", "kind": kind, **extra})
    json.dumps(doc, allow_nan=False)  # always serialisable
    if "error" in doc:
        assert doc["error"]["code"] in ERROR_CODES
        assert doc["error"]["code"] != "internal", doc["error"]
    else:
        assert "result" in doc


@settings(max_examples=60, deadline=None)
@given(n=JSONISH, cap=JSONISH)
def test_rule_overrides_of_any_shape_are_invalid_requests_or_run(n: object, cap: object) -> None:
    doc = handle(
        {
            "api_version": "1",
            "kind": "build",
            "dataset": {"name": "synthetic", "n_securities": 60, "years": 1, "seed": 1},
            "rules": "HSTECH",
            "overrides": {"n": n, "cap": cap},
        }
    )
    if "error" in doc:
        assert doc["error"]["code"] in {"invalid_request", "data_error", "infeasible"}, doc
    else:
        assert isinstance(indexlab.__version__, str) and "result" in doc
