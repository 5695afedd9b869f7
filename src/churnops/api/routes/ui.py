"""``/ui``: the scoring page — a form made from the served model's schema, and a CSV upload.

The page is static HTML, CSS and JavaScript shipped in the package (``churnops/api/static``);
its script reads the form's description from ``/ui/form.json`` and scores through the API's own
routes (``POST /predict`` for the form, ``POST /predict/csv`` for a file), so the page has no
scoring of its own. Every answer carries a strict Content-Security-Policy: scripts and styles
from this origin only (no inline script), no framing.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

from churnops.api.deps import Served
from churnops.api.errors import json_response
from churnops.config import Settings

router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

ASSETS = {
    "ui.html": "text/html; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
}


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files("churnops.api").joinpath("static", name).read_bytes()


def _asset_response(name: str) -> Response:
    return Response(_asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


@router.get("/ui")
async def page() -> Response:
    return _asset_response("ui.html")


@router.get("/ui/form.json")
async def form(request: Request, model: Served) -> Response:
    """What the page's form is made from: the served model's schema, threshold and limits."""
    settings: Settings = request.app.state.settings
    schema = model.artifact.schema
    features = []
    for feature in schema.features:
        field: dict[str, object] = {
            "name": feature.name,
            "kind": feature.kind,
            "allows_missing": feature.allows_missing,
        }
        if feature.kind == "categorical":
            field["categories"] = list(feature.categories)
        else:
            field.update(minimum=feature.minimum, maximum=feature.maximum, integer=feature.integer)
        features.append(field)
    return json_response(
        200,
        {
            "model": {
                "name": model.artifact.name,
                "version": model.version,
                "synthetic_training_data": model.artifact.synthetic,
            },
            "target": schema.target,
            "positive_label": schema.positive_label,
            "negative_label": schema.negative_label,
            "threshold": model.scorer.threshold,
            "id_columns": list(schema.id_columns),
            "features": features,
            "limits": {
                "max_records": settings.max_records,
                "max_body_bytes": settings.max_body_bytes,
            },
        },
        headers={**SECURITY_HEADERS, "X-Model-Version": model.version},
    )


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS or name == "ui.html":
        return json_response(404, {"detail": "Not Found"}, SECURITY_HEADERS)
    return _asset_response(name)
