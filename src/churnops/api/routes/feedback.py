"""``/feedback``: the true labels of records the service predicted, behind authentication."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from churnops.api.body import check_content_type, parse_records, read_body
from churnops.api.deps import Served
from churnops.api.errors import json_response
from churnops.api.openapi import FEEDBACK_RESPONSES, FeedbackOut
from churnops.errors import DataError, RecordError, StoreError
from churnops.monitoring.store import MAX_KEY_CHARS
from churnops.monitoring.writer import PredictionWriter

router = APIRouter()

MAX_KEY_INTEGER = 2**63 - 1
FLUSH_SECONDS = 5.0  # this worker's queued predictions are written first, so their keys count


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    responses=FEEDBACK_RESPONSES,
    summary="Report the true labels of predicted records",
    description='Send a JSON array of {"key": ..., "label": ...}: the key is the value of '
    "the record's ID column when it was predicted, the label one of the model's classes. Labels "
    "of keys no logged prediction has are not stored; they are counted and the first few named.",
)
async def feedback(request: Request, model: Served) -> Response:
    check_content_type(request)
    state = request.app.state
    settings = state.settings
    prediction_log: PredictionWriter | None = state.prediction_log
    with state.body_budget.hold() as hold:
        body = await read_body(request, settings.max_body_bytes, settings.body_timeout, hold)
        pairs = await run_in_threadpool(
            label_pairs, body, settings.max_records, model.scorer.classes
        )
    request.state.records = len(pairs)
    if prediction_log is None:
        raise StoreError("the prediction log is off (--no-store): labels cannot be stored")
    outcome = await run_in_threadpool(_store, prediction_log, pairs)
    return json_response(
        200,
        {
            "stored": outcome.stored,
            "unknown": outcome.unknown,
            "unknown_keys": outcome.unknown_keys,
        },
    )


def _store(prediction_log: PredictionWriter, pairs: list[tuple[str, str]]) -> Any:
    prediction_log.flush(FLUSH_SECONDS)
    return prediction_log.store.store_labels(pairs, "api")


def label_pairs(
    body: bytes | bytearray, max_records: int, classes: tuple[str, ...]
) -> list[tuple[str, str]]:
    """``(key, label)`` of each element of a /feedback body.

    Raises
    ------
    RecordError
        An element is not ``{"key": ..., "label": ...}`` with a usable key and one of
        ``classes`` as label (422; every problem is named by its position and field).
    """
    entries = parse_records(body, max_records)
    if not entries:
        raise DataError("no labels: the array is empty")
    pairs: list[tuple[str, str]] = []
    problems: list[dict[str, object]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append({"record": i, "field": None, "problem": "expected an object"})
            continue
        extra = sorted(set(entry) - {"key", "label"})
        if extra:
            problems.append(
                {"record": i, "field": extra[0], "problem": "unknown field: send key and label"}
            )
        key, key_problem = _key(entry.get("key"), "key" in entry)
        if key_problem:
            problems.append({"record": i, "field": "key", "problem": key_problem})
        label = entry.get("label")
        if not isinstance(label, str) or label not in classes:
            problem = (
                f"missing: send one of the model's classes {list(classes)}"
                if "label" not in entry
                else f"{label!r}"[:60] + f" is not one of the model's classes {list(classes)}"
            )
            problems.append({"record": i, "field": "label", "problem": problem})
        elif key is not None:
            pairs.append((key, label))
        if len(problems) >= 100:
            break
    if problems:
        raise RecordError(problems)
    return pairs


def _key(value: object, present: bool) -> tuple[str | None, str | None]:
    if not present:
        return None, "missing: the record's ID as it was sent to /predict"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_KEY_INTEGER:
            return None, "an integer key must fit in 64 bits"
        return str(value), None
    if isinstance(value, str):
        if not value or len(value) > MAX_KEY_CHARS:
            return None, f"a key has 1 to {MAX_KEY_CHARS} characters"
        if "\x00" in value:
            return None, "a key cannot contain NUL characters"
        return value, None
    return None, "expected a string or an integer"
