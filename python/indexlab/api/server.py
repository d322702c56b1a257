"""A minimal reference HTTP server over :func:`indexlab.api.handle` (FastAPI + uvicorn).

Install the ``serve`` extra (``pip install indexlab[serve]``) and run ``indexlab serve --port
8000``. Routes: ``POST /v1/handle`` (body: the request JSON; answer: the response document,
HTTP 200 on success, 4xx/5xx by error code), ``GET /v1/schema``, ``GET /healthz``.

``handle`` runs in Starlette's worker thread pool, so requests overlap while the Rust core
holds no GIL.

Request bodies are bounded by :data:`indexlab.api.models.MAX_REQUEST_BYTES` (read per request):
a ``Content-Length`` above it is answered 413 before any of the body is read, and a body sent
without one (chunked) is read chunk by chunk and answered 413 as soon as it passes the limit,
so an over-limit body is never held in memory.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time,
# and `Request` is imported inside create_app (the extra is optional).

from typing import Any

__all__ = ["HTTP_STATUS", "create_app", "serve"]

#: HTTP status per error code (a successful document is 200).
HTTP_STATUS = {
    "invalid_request": 400,
    "data_error": 422,
    "infeasible": 422,
    "solver_error": 500,
    "timeout": 504,
    "cancelled": 503,
    "internal": 500,
}

#: HTTP status of a body over ``MAX_REQUEST_BYTES`` (the document's code is invalid_request).
TOO_LARGE = 413


def create_app() -> Any:
    """The FastAPI application (needs the ``serve`` extra).

    Examples
    --------
    >>> from indexlab.api.server import create_app  # doctest: +SKIP
    >>> app = create_app()  # doctest: +SKIP
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse
        from starlette.concurrency import run_in_threadpool
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "indexlab serve needs FastAPI and uvicorn: pip install 'indexlab[serve]'"
        ) from err
    from indexlab import __version__
    from indexlab.api import handle, schema
    from indexlab.api import models as m
    from indexlab.api.errors import ApiError
    from indexlab.api.handlers import _error_doc

    app = FastAPI(title="indexlab", version=__version__)

    def refuse(message: str, status: int) -> JSONResponse:
        doc = _error_doc(ApiError("invalid_request", message, []), None, None, {}, 0.0)
        doc["timings"] = {}
        # The client may still be sending: close the connection rather than drain the body.
        return JSONResponse(doc, status_code=status, headers={"Connection": "close"})

    @app.post("/v1/handle")
    async def handle_route(request: Request) -> JSONResponse:
        # The raw body goes to handle() unparsed: it answers malformed JSON with its own
        # invalid_request document. The work runs in the thread pool, off the event loop.
        limit = int(m.MAX_REQUEST_BYTES)
        too_big = (
            "request body is {} bytes; at most {} allowed (indexlab.api.models.MAX_REQUEST_BYTES)"
        )
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return refuse(
                    f"Content-Length: expected a whole number of bytes, found {declared!r}", 400
                )
            if int(declared) > limit:
                return refuse(too_big.format(int(declared), limit), TOO_LARGE)
        parts: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return refuse(too_big.format(f"more than {limit}", limit), TOO_LARGE)
            parts.append(chunk)
        doc = await run_in_threadpool(handle, b"".join(parts))
        status = HTTP_STATUS.get(doc["error"]["code"], 500) if "error" in doc else 200
        return JSONResponse(doc, status_code=status)

    @app.get("/v1/schema")
    def schema_route() -> dict[str, Any]:
        return schema()

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "indexlab_version": __version__}

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the reference server until interrupted."""
    try:
        import uvicorn
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "indexlab serve needs FastAPI and uvicorn: pip install 'indexlab[serve]'"
        ) from err
    uvicorn.run(create_app(), host=host, port=port, log_level=log_level)
