"""Health and metrics: the routes a platform calls, without authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.responses import Response

from churnops.api.deps import holder
from churnops.api.errors import json_response
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
    return Response(payload, media_type=content_type)
