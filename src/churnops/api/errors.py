"""The one place where churnops' domain errors become HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from churnops.api.body import (
    BadRequestError,
    ClientGoneError,
    RequestTimeoutError,
    ServerBusyError,
    UnsupportedMediaTypeError,
)
from churnops.errors import (
    ArtifactError,
    ChurnopsError,
    ConfigError,
    DataError,
    ExplainError,
    LimitError,
    RecordError,
    StoreError,
)

log = logging.getLogger("churnops.api")


STATUS: list[tuple[type[ChurnopsError], int]] = [
    (RecordError, 422),
    (BadRequestError, 400),
    (UnsupportedMediaTypeError, 415),
    (RequestTimeoutError, 408),
    # nginx's "client closed request": the client is gone, so nobody reads it; it keeps the
    # event out of the 5xx counts and error logs, where a server fault would be.
    (ClientGoneError, 499),
    (ServerBusyError, 503),
    # The prediction store is off or down: /feedback cannot store labels now (/predict never
    # waits for the store).
    (StoreError, 503),
    (LimitError, 413),
    (ArtifactError, 503),
    (DataError, 422),
    # The served model cannot compute feature contributions: /predict?explain=true is refused
    # as a whole (the request without explain=true is answered as usual).
    (ExplainError, 501),
    (ConfigError, 500),
]


CLOSE_AFTER = frozenset({408, 413, 415, 503})


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(ChurnopsError)
    async def domain_error(request: Request, exc: ChurnopsError) -> Response:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
        body: dict[str, object] = {"detail": str(exc)}
        if isinstance(exc, RecordError):
            body["problems"] = exc.problems
        # The rest of a refused body may still be on its way: close rather than read it.
        headers = {"Connection": "close"} if status in CLOSE_AFTER else {}
        if isinstance(exc, ServerBusyError):
            headers["Retry-After"] = "1"
        return json_response(status, body, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
            for e in exc.errors()
        ]
        return json_response(422, {"detail": "invalid request", "problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return json_response(exc.status_code, {"detail": exc.detail}, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = request.scope.get("state", {}).get("request_id")
        log.exception("unhandled error", extra={"request_id": request_id})
        return json_response(500, {"detail": "internal error", "request_id": request_id})
