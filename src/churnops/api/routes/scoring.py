"""``/predict``, ``/predict/csv``, ``/metadata``, ``/admin/reload``: the routes behind auth."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread
import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from churnops.api.body import (
    BodyHold,
    check_content_type,
    check_csv_content_type,
    parse_records,
    read_body,
)
from churnops.api.deps import Holder, Served, served_model
from churnops.api.errors import json_response
from churnops.api.metrics import Metrics
from churnops.api.openapi import (
    CSV_REQUEST_BODY,
    PREDICT_CSV_RESPONSES,
    PREDICT_RESPONSES,
    RESPONSES,
    MetadataOut,
    ReloadOut,
)
from churnops.api.serving import ServedModel
from churnops.api.table import parse_csv, scored_csv, with_lines
from churnops.config import Settings
from churnops.errors import ExplainError, RecordError
from churnops.inference import Explanation, Scorer
from churnops.monitoring.writer import PredictionWriter

router = APIRouter()

Args = TypeVarTuple("Args")
Result = TypeVar("Result")

# Bodies up to this size (about 130 Telco customers, parsed and scored in 0.5–0.8 ms) are scored
# on the event loop; larger ones in the thread pool, so CPU-bound work never holds the loop for
# more than about a millisecond.
INLINE_BODY_BYTES = 64 * 1024
# /predict bodies are parsed on the event loop (small ones) or by at most LARGE_BODY_WORKERS
# threads, so a whole parse by orjson up to 1 MiB costs at most a few times that in memory at
# once (a hostile 1 MiB of `[[],…]`: about 20 MiB), and 100 customers (about 50 KB) parse 6×
# faster than element by element.
SCORING_WHOLE_PARSE_BYTES = 1024 * 1024
# Contributions listed per record with explain=true unless ``top`` says otherwise.
DEFAULT_TOP = 5
QUERY_PARAMETERS = frozenset({"explain", "top"})


# /predict is on a router of its own, without FastAPI dependencies: it authenticates, finds the
# model and reads its query itself, in the order FastAPI's dependencies would (auth, then 503,
# then the query), because solving dependencies cost a third of a 1-record request's time in
# the app (profiled: about 60 µs of 200). Its documentation is declared with it. The app also
# calls ``predict`` straight from the ASGI call, ahead of the framework (api/app.py ChurnopsApp).
predict_router = APIRouter()

PREDICT_PARAMETERS = [
    {
        "name": "explain",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": False},
        "description": "Add each record's feature contributions (`explanation`).",
    },
    {
        "name": "top",
        "in": "query",
        "required": False,
        "schema": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "description": f"Contributions listed per record with explain=true (default "
        f"{DEFAULT_TOP}, at most the model's number of fields), largest |contribution| first; "
        "without explain=true it changes nothing.",
    },
]
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})  # as FastAPI reads a bool query
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


@predict_router.post(
    "/predict",
    responses=PREDICT_RESPONSES,
    summary="Predict churn for customer records",
    description="Send a JSON array of customer records (values as JSON strings or numbers; "
    "extra keys such as an ID are ignored). The request schema below is the served model's. "
    "Each record gets `prediction` (the class), `probability` (of that class, as the chapter's "
    "API answers), `churn_probability` (of the positive class, the column `churnops predict` "
    "writes), `probabilities` (of each class) and `warnings` (unseen categories and numbers "
    "outside the training range: scored, and named here). "
    "With `explain=true` each record's result also holds `explanation`: `base_value` and the "
    "`top` fields' `contributions` (Shapley values) to the log-odds of the positive class, "
    "largest first; base_value plus all fields' contributions is log(p / (1 - p)) of its "
    "probability.",
    openapi_extra={"parameters": PREDICT_PARAMETERS, "security": [{"HTTPBasic": []}]},
)
async def predict(request: Request) -> Response:
    state = request.app.state
    await state.authenticate(request)  # 401/429 before anything else, the body unread
    model = await served_model(request)
    explain, top = _predict_query(request)
    check_content_type(request)
    unknown = sorted(set(request.query_params) - QUERY_PARAMETERS)
    if unknown:  # a misspelt explain would otherwise be answered without explanations
        raise _query_error(unknown[0], "unknown query parameter: /predict takes explain and top")
    shown = _explanation_size(model.scorer, explain, top)
    state = request.app.state
    with state.body_budget.hold() as hold:
        scored = await _predict(request, state.settings, model, hold, state.metrics, shown)
    _answered(request, model, scored)
    return Response(
        scored.body,
        media_type="application/json",
        headers={"X-Model-Version": model.header_version},
    )


@router.post(
    "/predict/csv",
    responses=PREDICT_CSV_RESPONSES,
    openapi_extra=CSV_REQUEST_BODY,
    summary="Score a CSV file of customers; get it back with the scores",
    description="Send a CSV file as the body (`Content-Type: text/csv`, UTF-8, a header row "
    "naming the model's columns; other columns are kept). The answer is the same file with "
    "the columns `prediction`, `probability` (of that label), `churn_probability` (of the "
    "positive label) and `warnings` appended. Same scoring, limits and errors as /predict; "
    "errors name the file's line.",
)
async def predict_csv(request: Request, model: Served) -> Response:
    check_csv_content_type(request)
    state = request.app.state
    settings: Settings = state.settings
    with state.body_budget.hold() as hold:
        body = await read_body(request, settings.max_body_bytes, settings.body_timeout, hold)
        scored_file, scored = await _in_worker(
            request, len(body) <= INLINE_BODY_BYTES, score_csv, model, body, settings.max_records,
            state.metrics,
            state.prediction_log is not None,
        )  # fmt: skip
    _answered(request, model, scored)
    return Response(
        scored_file,
        media_type="text/csv; charset=utf-8",
        headers={
            "X-Model-Version": model.header_version,
            "X-Records": str(scored.records),
            "Content-Disposition": 'attachment; filename="scored.csv"',
        },
    )


def _answered(request: Request, model: ServedModel, scored: Scored) -> None:
    """Note what was answered for the access log, and queue it for the prediction log."""
    # The scope's state dict, not request.state: each attribute of Starlette's State is a
    # Python call, and this runs for every request (timed in this route: one State attribute
    # read, app.state.prediction_log below, 1.25 µs median).
    state = request.scope["state"]
    state["records"] = scored.records
    state["model_version"] = model.version
    prediction_log: PredictionWriter | None = request.app.state.prediction_log
    if prediction_log is not None:
        # Only a queue append here: rows, JSON and the insert are made off the request path.
        # Tuples, not lists: a queued tuple of strings and numbers is not tracked by the garbage
        # collector (see monitoring.store.Answers).
        name, version, key_column = model.logged_as
        prediction_log.append((
            time.time(), name, version, state["request_id"], key_column, scored.request_body,
            tuple(scored.labels), tuple(scored.probabilities),
        ))  # fmt: skip


class Scored(NamedTuple):
    """A scored /predict body: the response and what the prediction log keeps."""

    body: bytes
    records: int
    labels: list[str]
    probabilities: list[float]  # of the positive class
    request_body: bytes | bytearray  # as received: the prediction log parses it again
    warnings: Mapping[int, Sequence[str]]


def _predict_query(request: Request) -> tuple[bool, int | None]:
    """``explain`` and ``top`` of the query, read as FastAPI would (422 naming the one)."""
    query = request.query_params
    explain = False
    if "explain" in query:
        word = query["explain"].strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise _query_error("explain", "explain must be a boolean (true or false)")
        explain = word in TRUE_WORDS
    top = None
    if "top" in query:
        try:
            top = int(query["top"].strip())
        except ValueError:
            raise _query_error("top", "top must be an integer") from None
    return explain, top


def _explanation_size(scorer: Scorer, explain: bool, top: int | None) -> int | None:
    """How many contributions each record's explanation lists (None: no explanation).

    Raises
    ------
    RequestValidationError
        ``top`` outside 1 to the model's number of fields (422).
    ExplainError
        The served model cannot explain its predictions (501), before the body is read.
    """
    fields = len(scorer.layout.fields)
    if top is not None and not 1 <= top <= fields:
        raise _query_error("top", f"top must be between 1 and {fields} (the model's fields)")
    if not explain:
        return None  # top alone changes nothing
    shown = DEFAULT_TOP if top is None else top
    reason = scorer.cannot_explain()
    if reason is not None:
        raise ExplainError(f"this model cannot explain its predictions: {reason}")
    return min(shown, fields)


def _query_error(name: str, problem: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", name), "msg": problem, "type": "value_error", "input": None}]
    )


async def _predict(
    request: Request,
    settings: Settings,
    model: ServedModel,
    hold: BodyHold,
    metrics: Metrics,
    explain_top: int | None = None,
) -> Scored:
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout, hold)
    # Explanations cost more (bench/explain.py): they always go to the thread pool.
    inline = len(body) <= INLINE_BODY_BYTES and explain_top is None
    return await _in_worker(
        request, inline, score_body, model.scorer, body, settings.max_records, metrics, explain_top
    )


async def _in_worker(
    request: Request, inline: bool, work: Callable[[*Args], Result], *args: *Args
) -> Result:
    """Run ``work`` on the event loop when ``inline`` (a small body), else in the thread pool."""
    if inline:
        # A few records score in well under a millisecond, less than handing them to a worker
        # thread costs (measured: 1-record throughput +30%, p99 at concurrency 8 halved).
        return work(*args)
    # At most two large bodies are parsed and scored at once (this machine's cores): the CPU
    # is busy anyway, and the memory of parsing stays bounded.
    limiter: anyio.CapacityLimiter = request.app.state.large_bodies
    return await anyio.to_thread.run_sync(work, *args, limiter=limiter)


def score_body(
    scorer: Scorer,
    body: bytes | bytearray,
    max_records: int,
    metrics: Metrics,
    explain_top: int | None = None,
) -> Scored:
    """Parse, validate and score a /predict body; return the response and the answers."""
    records = parse_records(body, max_records, SCORING_WHOLE_PARSE_BYTES)
    return score_records(scorer, records, metrics, body, explain_top)


def score_csv(
    model: ServedModel,
    body: bytes | bytearray,
    max_records: int,
    metrics: Metrics,
    logged: bool,
) -> tuple[bytes, Scored]:
    """Parse, validate and score a CSV body: the scored file, and the answers.

    ``logged``: the answers go to the prediction log, which keeps the records as JSON.
    """
    table = parse_csv(body, max_records, model.artifact.schema)
    request_body = orjson.dumps(table.records) if logged else b""
    try:
        scored = score_records(model.scorer, table.records, metrics, request_body)
    except RecordError as exc:
        raise with_lines(exc, table.lines) from None
    scorer = model.scorer
    scored_file = scored_csv(
        table, scored.labels, scored.probabilities, scorer.positive_label, scored.warnings
    )
    return scored_file, scored


def score_records(
    scorer: Scorer,
    records: list[Any],
    metrics: Metrics,
    request_body: bytes | bytearray,
    explain_top: int | None = None,
) -> Scored:
    """Validate and score parsed records: the /predict response and the answers.

    With ``explain_top``, each record's result also holds its explanation: the base value and
    its ``explain_top`` largest contributions (by absolute value).
    """
    scores = scorer.score_records(records, explain=explain_top is not None)
    positive, negative = scores.positive_label, scores.negative_label
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
    if explain_top is not None and scores.explanation is not None:
        add_explanations(result, records, scores.explanation, explain_top)
    positives = sum(1 for label in scores.labels if label == positive)
    if positives:
        metrics.child(metrics.predictions, positive).inc(positives)
    if len(p) - positives:
        metrics.child(metrics.predictions, negative).inc(len(p) - positives)
    metrics.records.observe(len(p))
    return Scored(orjson.dumps(result), len(p), scores.labels, p, request_body, scores.warnings)


def add_explanations(
    result: dict[str, Any], records: list[Any], explanation: Explanation, top: int
) -> None:
    """Add to each record's result its base value and ``top`` largest contributions."""
    fields = explanation.fields
    contributions = explanation.contributions
    # Largest |contribution| first; ties keep the layout's order of the fields.
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :top].tolist()
    values = contributions.tolist()
    base = explanation.base_value.tolist()
    for i, (record, ranked) in enumerate(zip(records, order, strict=True)):
        result[str(i)]["explanation"] = {
            "base_value": base[i],
            "contributions": [
                {"feature": fields[j], "value": record.get(fields[j]), "contribution": values[i][j]}
                for j in ranked
            ],
        }


@router.get(
    "/metadata", response_model=MetadataOut, responses=RESPONSES, summary="The served model"
)
async def metadata(model: Served) -> Response:
    artifact, scorer, location = model.artifact, model.scorer, model.location
    manifest = artifact.manifest
    source = manifest.data.source
    return json_response(
        200,
        {
            "name": artifact.name,
            "version": artifact.version,
            "registry_version": location.registry_ref,
            "registry": None
            if location.registry_ref is None
            else {
                "name": location.registry_name,
                "version": location.registry_version,
                "alias": location.registry_alias,
            },
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
        headers={"X-Model-Version": model.header_version},
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
    model = holder.model
    version = model.version if model else None
    return json_response(
        409 if outcome == "refused" else 200,
        {"outcome": outcome, "detail": message, "version": version},
        headers={"X-Model-Version": model.header_version if model else ""},
    )
