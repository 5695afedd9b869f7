"""``/report``: the served model's training report, behind authentication."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from churnops.api.deps import Served
from churnops.api.errors import json_response
from churnops.api.openapi import RESPONSES

router = APIRouter()

# The page has no scripts, links, images or fonts to fetch: inline CSS and inline SVG only
# (its plots' style attributes need 'unsafe-inline' for styles, and nothing else is allowed).
REPORT_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


@router.get(
    "/report",
    summary="The served model's training report",
    description="A self-contained HTML page: held-out metrics beside their baselines, ROC, "
    "precision-recall and calibration curves, the confusion matrix, feature importance, the "
    "AutoML search and the data. The bytes are the artifact's verified report.html.",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        404: {"description": "The served model's artifact has no training report."},
        **RESPONSES,
    },
)
async def report(model: Served) -> Response:
    if model.report is None:
        artifact = model.artifact
        return json_response(
            404,
            {
                "detail": f"model {artifact.name} version {artifact.version} has no training "
                "report: its artifact was written before HTML reports were; retrain it, or "
                "run `churnops report DIR` if it stores its evaluation data"
            },
            headers={"X-Content-Type-Options": "nosniff"},
        )
    return Response(
        model.report,
        media_type="text/html; charset=utf-8",
        headers={**REPORT_HEADERS, "X-Model-Version": model.version},
    )
