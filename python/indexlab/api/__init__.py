"""The service API: versioned JSON requests in, JSON-ready documents out, safe from many threads.

A calling web service imports indexlab and calls :func:`handle` from any thread::

    from indexlab.api import handle
    doc = handle({"api_version": "1", "kind": "build",
                  "dataset": {"name": "hk_tech"}, "rules": "HSTECH"})

``kind`` picks the request model (:class:`BuildRequest`, :class:`BacktestRequest`,
:class:`OptimiseRequest`, :class:`SearchRequest`); :func:`schema` returns every model's JSON
Schema (``docs/api-schema.json`` is a checked-in copy: ``python -m indexlab.api --write-schema
docs/api-schema.json`` regenerates it). Failures come back as ``{"error": {"code", "message",
"where"}}`` with a code from :data:`ERROR_CODES`. Size limits are the ``MAX_*`` constants of
:mod:`indexlab.api.models`; ``deadline_seconds`` bounds a request's time (what is and is not
interrupted: :mod:`indexlab.api.handlers`). Named synthetic datasets are cached in at most
``indexlab.api.handlers.DATASET_CACHE_BYTES`` (256 MiB by default, LRU; set that module
attribute to change it; :func:`dataset_cache_info` reports the use).
``indexlab serve`` runs a reference HTTP server
(:mod:`indexlab.api.server`, extra ``serve``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from indexlab.api.errors import ERROR_CODES, ApiError, CancelToken, DeadlineExceeded
from indexlab.api.handlers import dataset_cache_info, handle
from indexlab.api.models import (
    API_VERSION,
    MAX_CANDIDATES,
    MAX_DATES,
    MAX_DEADLINE_SECONDS,
    MAX_NESTING,
    MAX_PANEL_ROWS,
    MAX_REQUEST_BYTES,
    MAX_SCHEDULES,
    MAX_SECURITIES,
    REQUEST_MODELS,
    RESPONSE_MODELS,
    BacktestRequest,
    BacktestResponse,
    BuildRequest,
    BuildResponse,
    Costs,
    ErrorResponse,
    OptimiseRequest,
    OptimiseResponse,
    SearchRequest,
    SearchResponse,
)

__all__ = [
    "API_VERSION",
    "ERROR_CODES",
    "MAX_CANDIDATES",
    "MAX_DATES",
    "MAX_DEADLINE_SECONDS",
    "MAX_NESTING",
    "MAX_PANEL_ROWS",
    "MAX_REQUEST_BYTES",
    "MAX_SCHEDULES",
    "MAX_SECURITIES",
    "ApiError",
    "BacktestRequest",
    "BacktestResponse",
    "BuildRequest",
    "BuildResponse",
    "CancelToken",
    "Costs",
    "DeadlineExceeded",
    "ErrorResponse",
    "OptimiseRequest",
    "OptimiseResponse",
    "SearchRequest",
    "SearchResponse",
    "dataset_cache_info",
    "handle",
    "schema",
]


def schema() -> dict[str, Any]:
    """The JSON Schema of every request and response model, by model name.

    Examples
    --------
    >>> from indexlab.api import schema
    >>> s = schema()
    >>> s["BuildRequest"]["properties"]["kind"]["const"]
    'build'
    """
    models: list[type[BaseModel]] = [
        *REQUEST_MODELS.values(),
        *RESPONSE_MODELS.values(),
        ErrorResponse,
    ]
    return {model.__name__: model.model_json_schema() for model in models}


def schema_json() -> str:
    """:func:`schema` as the text of ``docs/api-schema.json`` (sorted keys, 2-space indent)."""
    import json

    return (
        json.dumps({"api_version": API_VERSION, "models": schema()}, indent=2, sort_keys=True)
        + "\n"
    )
