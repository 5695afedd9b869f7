"""``/predict``, ``/metadata`` and ``/admin/reload``: the routes behind authentication."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from churnops.api.body import BodyHold, check_content_type, parse_records, read_body
from churnops.api.deps import Holder, Served
from churnops.api.errors import json_response
from churnops.api.metrics import Metrics
from churnops.api.openapi import PREDICT_RESPONSES, RESPONSES, MetadataOut, ReloadOut
from churnops.api.serving import ServedModel
from churnops.config import Settings
from churnops.inference import Scorer
from churnops.monitoring.store import Answers, PredictionLog

router = APIRouter()

# Bodies up to this size (about 70 customer records) are scored on the event loop; larger ones in
# the thread pool, so CPU-bound work never holds the loop for more than about a millisecond.
INLINE_BODY_BYTES = 32 * 1024


@router.post(
    "/predict",
    responses=PREDICT_RESPONSES,
    summary="Predict churn for customer records",
    description="Send a JSON array of customer records (values as JSON strings or numbers; "
    "extra keys such as an ID are ignored). The request schema below is the served model's. "
    "Each record gets `prediction` (the class), `probability` (of that class, as the chapter's "
    "API answers), `churn_probability` (of the positive class, the column `churnops predict` "
    "writes), `probabilities` (of each class) and `warnings` (unseen categories and numbers "
    "outside the training range: scored, and named here).",
)
async def predict(request: Request, model: Served) -> Response:
    # Authentication has passed (a dependency of the router); only now is the body read.
    check_content_type(request)
    state = request.app.state
    with state.body_budget.hold() as hold:
        scored = await _predict(request, state.settings, model, hold, state.metrics)
    request.state.records = scored.records
    request.state.model_version = model.version
    prediction_log: PredictionLog | None = state.prediction_log
    if prediction_log is not None:
        # Only a queue append here: rows, JSON and the insert are made by the log's thread.
        id_columns = model.artifact.schema.id_columns
        answers: Answers = (
            time.time(), model.artifact.name, model.version, request.state.request_id,
            id_columns[0] if id_columns else None, scored.request_body, tuple(scored.labels),
            tuple(scored.probabilities),
        )  # fmt: skip
        prediction_log.append(answers)
    return Response(
        scored.body, media_type="application/json", headers={"X-Model-Version": model.version}
    )


class Scored(NamedTuple):
    """A scored /predict body: the response and what the prediction log keeps."""

    body: bytes
    records: int
    labels: list[str]
    probabilities: list[float]  # of the positive class
    request_body: bytes | bytearray  # as received: the prediction log parses it again


async def _predict(
    request: Request, settings: Settings, model: ServedModel, hold: BodyHold, metrics: Metrics
) -> Scored:
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout, hold)
    if len(body) <= INLINE_BODY_BYTES:
        # A few records score in well under a millisecond, less than handing them to a worker
        # thread costs (measured: 1-record throughput +30%, p99 at concurrency 8 halved).
        return score_body(model.scorer, body, settings.max_records, metrics)
    # At most two large bodies are parsed and scored at once (this machine's cores): the CPU
    # is busy anyway, and the memory of parsing stays bounded.
    limiter: anyio.CapacityLimiter = request.app.state.large_bodies
    return await anyio.to_thread.run_sync(
        score_body, model.scorer, body, settings.max_records, metrics, limiter=limiter
    )


def score_body(
    scorer: Scorer, body: bytes | bytearray, max_records: int, metrics: Metrics
) -> Scored:
    """Parse, validate and score a /predict body; return the response and the answers."""
    records = parse_records(body, max_records)
    scores = scorer.score_records(records)
    positive = scorer.positive_label
    negative = scorer.classes[0] if scorer.classes[1] == positive else scorer.classes[1]
    p = scores.positive_probability.tolist()
    result: dict[str, Any] = {}
    warnings = scores.warnings
    for i, (label, p_positive) in enumerate(zip(scores.labels, p, strict=True)):
        result[str(i)] = {
            "prediction": label,
            "probability": p_positive if label == positive else 1.0 - p_positive,
            "churn_probability": p_positive,
            "probabilities": {negative: 1.0 - p_positive, positive: p_positive},
            "warnings": warnings.get(i, []),
        }
    if warnings:
        counts = Counter((w.field, w.kind) for found in warnings.values() for w in found)
        for (field, kind), count in counts.items():
            metrics.input_warnings.labels(field, kind).inc(count)
    positives = sum(1 for label in scores.labels if label == positive)
    if positives:
        metrics.predictions.labels(positive).inc(positives)
    if len(p) - positives:
        metrics.predictions.labels(negative).inc(len(p) - positives)
    metrics.records.observe(len(p))
    return Scored(orjson.dumps(result), len(p), scores.labels, p, body)


@router.get(
    "/metadata", response_model=MetadataOut, responses=RESPONSES, summary="The served model"
)
async def metadata(model: Served) -> Response:
    artifact, scorer = model.artifact, model.scorer
    manifest = artifact.manifest
    source = manifest.data.source
    return json_response(
        200,
        {
            "name": artifact.name,
            "version": artifact.version,
            "registry_version": model.location.registry_version,
            "created_at": manifest.created_at,
            "synthetic_training_data": artifact.synthetic,
            "runtime": scorer.runtime,
            "fast_path": scorer.fast,
            "fallback_reason": scorer.fallback_reason,
            "classes": list(scorer.classes),
            "positive_label": scorer.positive_label,
            "threshold": scorer.threshold,
            "schema": manifest.schema_,
            "metrics": artifact.metrics,
            "estimator": manifest.estimator,
            # The file's name only: where it lay on the training machine is nobody's business.
            "data": {
                "sha256": manifest.data.sha256,
                "rows": manifest.data.rows,
                "source": Path(source).name if source else None,
            },
        },
        headers={"X-Model-Version": model.version},
    )


@router.post(
    "/admin/reload",
    response_model=ReloadOut,
    summary="Load the model again from its source (directory or registry alias)",
    responses={409: {"description": "The new model was refused; the old one serves on."},
               **RESPONSES},
)  # fmt: skip
async def admin_reload(holder: Holder) -> Response:
    outcome, message = await holder.reload("admin call")
    version = holder.model.version if holder.model else None
    return json_response(
        409 if outcome == "refused" else 200,
        {"outcome": outcome, "detail": message, "version": version},
        headers={"X-Model-Version": version or ""},
    )
