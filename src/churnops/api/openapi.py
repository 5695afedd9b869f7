"""The OpenAPI document of the served model: its request fields, types and an example.

``/predict`` accepts any churn table's records, so its body schema is generated from the served
model's :class:`~churnops.schema.Schema` (rebuilt when a new model is swapped in), not written by
hand: every feature is a required property (null allowed where training saw missing values);
numeric fields take JSON numbers or numeric text (a value outside the training range is scored
and reported as a warning); categorical fields take text (the known categories as an ``enum``;
an unseen one is scored and reported as a warning); ID and other columns are accepted and
ignored. The answer's schema names the model's classes; errors share one body schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from churnops.monitoring.store import MAX_KEY_CHARS
from churnops.schema import MAX_NUMBER_CHARS, MAX_TEXT_CHARS, NUMBER_PATTERN, Feature, Schema

# Numeric text the server reads: churnops.schema.NUMBER_PATTERN with surrounding blanks.
_SPACE = "[ \\t\\n\\r\\f\\v]"  # churnops.schema.BLANK_CHARS, as a regex class
_NUMBER_TEXT = f"^{_SPACE}*{NUMBER_PATTERN}{_SPACE}*$"
_BLANK_TEXT = f"^{_SPACE}*$"
_NOT_BLANK = "[^ \\t\\n\\r\\f\\v]"

Responses = dict[int | str, dict[str, Any]]
RESPONSES: Responses = {
    401: {"description": "Missing or wrong credentials."},
    429: {"description": "Too many failed logins from this address; see Retry-After."},
    503: {"description": "No model loaded yet."},
}


def body_responses(
    answer: str, items: str, unusable: str, unavailable: str
) -> dict[int | str, Any]:
    """The statuses of a route that reads a JSON array of ``items``, described for it."""
    return {
        200: {"description": answer},
        400: {"description": "The body is not a JSON array of objects."},
        408: {"description": "The body did not arrive within the body timeout."},
        413: {"description": f"Too many {items} or too large a body."},
        415: {"description": "The body is declared as something other than JSON."},
        422: {"description": f"{unusable}; problems name each field."},
        **RESPONSES,
        503: {"description": f"No model loaded yet, or {unavailable}."},
    }


PREDICT_RESPONSES = body_responses(
    "One result per record, keyed by position.",
    "records",
    "A record does not match the model's schema, or explain/top are not usable",
    "too many large bodies in flight (retry)",
) | {501: {"description": "explain=true, and the served model cannot explain (detail says why)."}}
PREDICT_CSV_RESPONSES = {
    **PREDICT_RESPONSES,
    200: {
        "description": "The file with the score columns appended (an attachment).",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    400: {"description": "The body is not CSV with a header row (the line is named)."},
    413: {"description": "Too many rows or too large a body."},
    415: {"description": "The body is declared as something other than CSV."},
    422: {"description": "Columns the model needs are missing, or a value does not fit."},
}
CSV_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
FEEDBACK_RESPONSES = body_responses(
    "Labels stored, and the keys no logged prediction has.",
    "labels",
    "A label or key is not usable",
    "the prediction store is off or unavailable",
)


class FeedbackOut(BaseModel):
    """What became of the labels sent."""

    stored: int = Field(description="Labels stored.")
    unknown: int = Field(description="Labels whose key no logged prediction has (not stored).")
    unknown_keys: list[str] = Field(description="The first few of those keys.")


class HealthOut(BaseModel):
    """The process is up."""

    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Whether a verified model is loaded, and which."""

    status: Literal["ready", "loading"]
    model_version: str | None


class ReloadOut(BaseModel):
    """What a reload did."""

    outcome: Literal["swapped", "unchanged", "refused"]
    detail: str
    version: str | None


class RegistryOut(BaseModel):
    """The registry version served (a service started with ``models:/NAME@ALIAS``)."""

    name: str
    version: str = Field(description="The registry version; also in X-Model-Version.")
    alias: str | None = Field(description="The alias followed; null for models:/NAME/VERSION.")


class MetadataOut(BaseModel):
    """The served model: versions, runtime, classes, threshold, schema, held-out metrics."""

    name: str
    version: str = Field(description="The artifact's own version (unique per training run).")
    registry_version: str | None = Field(
        description="models:/NAME/VERSION served; null when serving a directory."
    )
    registry: RegistryOut | None = Field(
        description="Registry name, version and alias served; null when serving a directory "
        "(X-Model-Version then carries the artifact's version)."
    )
    created_at: str | None
    synthetic_training_data: bool
    runtime: str
    fast_path: bool
    fallback_reason: str | None
    classes: list[str]
    positive_label: str
    threshold: float
    schema_: dict[str, Any] = Field(alias="schema", description="The feature contract.")
    metrics: dict[str, Any]
    estimator: str | None
    data: dict[str, Any]


ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, in one line."},
        "problems": {
            "type": "array",
            "description": "Per record and field: what is wrong (validation errors only).",
            "items": {
                "type": "object",
                "properties": {
                    "record": {"type": ["integer", "null"]},
                    "field": {"type": ["string", "null"]},
                    "problem": {"type": "string"},
                },
            },
        },
    },
}


def result_schema(schema: Schema) -> dict[str, Any]:
    """The JSON Schema of a ``/predict`` answer for a model with ``schema``."""
    classes = list(schema.classes)
    positive = schema.positive_label
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "type": "object",
        "description": "One entry per record, keyed by its position in the request "
        "('0', '1', …).",
        "additionalProperties": {
            "type": "object",
            "required": ["prediction", "probability", "churn_probability", "probabilities",
                         "warnings"],
            "properties": {
                "prediction": {
                    "type": "string", "enum": classes,
                    "description": f"The predicted class: {positive!r} when churn_probability "
                    "reaches the model's threshold (see /metadata).",
                },
                "probability": {
                    **probability,
                    "description": "Probability of the predicted class (of `prediction`), as "
                    "the chapter's API answers: for a record predicted "
                    f"{schema.negative_label!r} it is 1 - churn_probability.",
                },
                "churn_probability": {
                    **probability,
                    "description": f"Probability of the positive class {positive!r}, whatever "
                    "the prediction: the `churn_probability` column `churnops predict` writes.",
                },
                "probabilities": {
                    "type": "object",
                    "required": classes,
                    "properties": {label: probability for label in classes},
                    "additionalProperties": False,
                    "description": "Probability of each class.",
                },
                "warnings": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": WARNINGS_DESCRIPTION,
                },
                "explanation": {
                "type": "object",
                "required": ["base_value", "contributions"],
                "description": "Only with explain=true: base_value plus every field's "
                "contribution is the log-odds log(p / (1 - p)) of the positive class.",
                "properties": {
                    "base_value": {
                        "type": "number",
                        "description": "Log-odds the contributions start from (the model's "
                        "expected output, or a reference customer's: docs/explanations.md).",
                    },
                    "contributions": {
                        "type": "array",
                        "description": "The top fields, largest |contribution| first.",
                        "items": {
                            "type": "object",
                            "required": ["feature", "value", "contribution"],
                            "properties": {
                                "feature": {"type": "string", "description": "Field name."},
                                "value": {"description": "The record's value, as sent."},
                                "contribution": {
                                    "type": "number",
                                    "description": "In log-odds; > 0 towards the positive class.",
                                },
                            },
                        },
                    },
                },
                },
            },
        },
    }  # fmt: skip


WARNINGS_DESCRIPTION = (
    "Values scored with a caveat, one line each naming the field and the value: a category not "
    "seen in training (with the known categories; scored as none of them) or a number outside "
    "the range seen in training (with that range; scored as given). Empty when there is none. "
    "Counted in /metrics as churnops_input_warnings_total{field, kind}."
)


def feature_schema(feature: Feature) -> dict[str, Any]:
    """The JSON Schema of one field as the server accepts it."""
    if feature.kind == "numeric":
        text: dict[str, Any] = {"type": "string", "maxLength": MAX_NUMBER_CHARS}
        text["pattern"] = (
            f"({_NUMBER_TEXT})|({_BLANK_TEXT})" if feature.allows_missing else _NUMBER_TEXT
        )
        choices: list[dict[str, Any]] = [{"type": "number"}, text]
        if feature.allows_missing:
            choices.append({"type": "null"})
        span = (
            f"seen in training: {feature.minimum:g} to {feature.maximum:g} (a value outside "
            "is scored as given, with a warning); "
            if (feature.minimum is not None and feature.maximum is not None)
            else ""
        )
        return {
            "anyOf": choices,
            "description": f"Number (or numeric text); {span}"
            + ("blank or null when unknown." if feature.allows_missing else "required."),
        }
    known = {"type": "string", "enum": list(feature.categories), "title": "seen in training"}
    text = {"type": "string", "maxLength": MAX_TEXT_CHARS, "title": "other text (a warning)"}
    if not feature.allows_missing:
        text["pattern"] = _NOT_BLANK
    choices = [known, text, {"type": "number"}, {"type": "boolean"}]
    if feature.allows_missing:
        choices.append({"type": "null"})
    shown = ", ".join(feature.categories[:30]) + (" …" if len(feature.categories) > 30 else "")
    return {
        "anyOf": choices,
        "description": f"Category; seen in training: {shown}. Another value is scored as none "
        "of them, with a warning"
        + ("; null or blank when unknown." if feature.allows_missing else "."),
        "examples": list(feature.categories[:5]),
    }


def example_record(schema: Schema) -> dict[str, Any]:
    """A valid record: the first category and the smallest value seen of every feature."""
    record: dict[str, Any] = {}
    for feature in schema.features:
        if feature.kind == "categorical":
            record[feature.name] = feature.categories[0] if feature.categories else None
        else:
            record[feature.name] = feature.minimum
    return record


def predict_body(schema: Schema, max_records: int) -> dict[str, Any]:
    """The ``requestBody`` of ``/predict`` for a model with ``schema``."""
    record = {
        "type": "object",
        "required": [f.name for f in schema.features],
        "properties": {f.name: feature_schema(f) for f in schema.features},
        "additionalProperties": True,
        "description": "One customer. Other keys (such as "
        + (", ".join(schema.id_columns) or "an ID")
        + ") are accepted and ignored.",
    }
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_records,
                    "items": record,
                },
                "example": [example_record(schema)],
            }
        },
    }


def feedback_body(schema: Schema, max_records: int) -> dict[str, Any]:
    """The ``requestBody`` of ``/feedback`` for a model with ``schema``."""
    label = {
        "type": "object",
        "required": ["key", "label"],
        "additionalProperties": False,
        "properties": {
            "key": {
                "anyOf": [
                    {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_KEY_CHARS,
                        "pattern": "^[^\\x00]*$",
                    },
                    {"type": "integer", "minimum": -(2**63) + 1, "maximum": 2**63 - 1},
                ],
                "description": "The record's ID ("
                + (", ".join(schema.id_columns) or "its ID")
                + ") as it was sent to /predict.",
            },
            "label": {"type": "string", "enum": list(schema.classes)},
        },
    }
    example = {"key": "7590-VHVEG", "label": schema.positive_label}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "minItems": 1, "maxItems": max_records,
                           "items": label},
                "example": [example],
            }
        },
    }  # fmt: skip


def describe_model(document: dict[str, Any], schema: Schema, max_records: int) -> dict[str, Any]:
    """``document`` with the request bodies and every response schema filled in."""
    operation = document["paths"]["/predict"]["post"]
    operation["requestBody"] = predict_body(schema, max_records)
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "top":  # at most the model's number of fields
            fields = len(schema.numeric) + len(schema.categorical)
            parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": fields}
    if "/feedback" in document["paths"]:
        document["paths"]["/feedback"]["post"]["requestBody"] = feedback_body(schema, max_records)
    for path_item in document["paths"].values():
        for op in path_item.values():
            for status, response in op.get("responses", {}).items():
                if status.startswith(("4", "5")) and "content" not in response:
                    response["content"] = {"application/json": {"schema": ERROR}}
    answer = operation["responses"]["200"]
    answer["content"] = {"application/json": {"schema": result_schema(schema)}}
    answer["headers"] = {
        "X-Model-Version": {
            "description": "The version of the model that answered.",
            "schema": {"type": "string"},
        }
    }
    return document
