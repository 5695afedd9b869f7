"""Health and metrics: the routes a platform calls, without authentication."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from churnops.api.deps import holder
from churnops.api.errors import json_response
from churnops.api.metrics import drift_exposition
from churnops.api.openapi import HealthOut, ReadyOut

router = APIRouter()


@router.get("/health/live", response_model=HealthOut, summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "No model loaded yet."}},
    summary="The model is loaded and verified",
)
async def ready(request: Request) -> Response:
    model = holder(request).model
    if model is None:
        return json_response(503, {"status": "loading", "model_version": None})
    return json_response(200, {"status": "ready", "model_version": model.version})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    payload, content_type = request.app.state.metrics.exposition()
    return Response(payload + await _drift(request.app.state), media_type=content_type)


DRIFT_CACHE_SECONDS = 10.0  # an unauthenticated route: at most one store query per 10 s


async def _drift(state: Any) -> bytes:
    """The latest drift check of the served model from the prediction store, if there is one."""
    log, model = state.prediction_log, state.holder.model
    if log is None or model is None:
        return b""
    key = (model.artifact.name, model.version)
    cached = getattr(state, "drift_cache", None)
    now = time.monotonic()
    if cached is not None and cached[0] == key and now - cached[1] < DRIFT_CACHE_SECONDS:
        return bytes(cached[2])
    try:
        summary = await run_in_threadpool(log.store.latest_drift, *key)
    except Exception as exc:
        logging.getLogger("churnops.api").warning(f"drift metrics unavailable: {exc}")
        summary = None
    text = drift_exposition(summary) if summary else b""
    state.drift_cache = (key, now, text)
    return text
