"""The feature contract a model learns from its training data.

A :class:`Schema` says which columns a model reads, of what kind, which categories and ranges it
saw and how often values were missing. It travels inside the model artifact as JSON and drives
request validation, the data-only scoring path and drift reference profiles. This module is pure
Python so the serving process can use it without pandas or scikit-learn.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from churnops.errors import ArtifactError

Kind = Literal["numeric", "categorical"]

# What counts as a number written as text. One definition for training, validation and scoring,
# so a value accepted in one place is accepted everywhere. Deliberately stricter than float():
# no "nan", "inf" or digit separators. Written so that no two branches can match the same digits:
# matching takes time linear in the text's length, never quadratic (a backtracking regex engine
# would otherwise spend minutes on "1" * 60_000 + "x").
# ASCII digits only (Python's \d also takes other scripts' digits), an exponent of at most two
# digits (so every number the pattern admits is a finite float64), and blanks are ASCII white
# space: the same rules can then be stated exactly in the API's JSON Schema and in Arrow's RE2.
NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?"
BLANK_CHARS = " \t\n\r\f\v"
_NUMBER = re.compile(NUMBER_PATTERN)
# Longest text read as a number (a float64 has 17 significant digits; this leaves room for
# zeros, a sign and an exponent) and longest text value any field accepts.
MAX_NUMBER_CHARS = 100
MAX_TEXT_CHARS = 1_000


class NotANumberError(ValueError):
    """A value offered for a numeric column is not a number."""


class TextTooLongError(TypeError):
    """A value offered for a categorical column is longer than :data:`MAX_TEXT_CHARS`."""


def parse_number(value: object) -> float:
    """Read one value of a numeric column.

    Returns NaN for a missing value (``None`` or a blank string). Raises :class:`NotANumberError`
    for anything else that is not a finite number or a string spelling one.
    """
    if value is None:
        return math.nan
    if isinstance(value, bool):  # bool is an int subclass; True is not a tenure
        raise NotANumberError("expected a number, got a boolean")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float64 (JSON allows any number of digits)
            raise NotANumberError(
                "expected a finite number, got an integer beyond float64"
            ) from None
        if math.isnan(number):
            return math.nan
        if math.isinf(number):
            raise NotANumberError("expected a finite number")
        return number
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS:
            raise NotANumberError(
                f"expected a number, got text of {len(value)} characters "
                f"(at most {MAX_NUMBER_CHARS})"
            )
        text = value.strip(BLANK_CHARS)
        if not text:
            return math.nan
        if _NUMBER.fullmatch(text):
            return float(text)  # finite: the pattern bounds the exponent
        raise NotANumberError(_why_not_a_number(text, value))
    raise NotANumberError(f"expected a number, got {type(value).__name__}")


def _why_not_a_number(text: str, value: str) -> str:
    try:
        number = float(text)  # at most MAX_NUMBER_CHARS: cheap
    except ValueError:
        return f"expected a number, got {quote_value(value)}"
    if math.isnan(number) or text.lstrip("+-").isalpha():  # "nan", "inf", "Infinity"
        return f"expected a number, got {quote_value(value)}"
    if math.isinf(number):  # "1e309"
        return f"expected a finite number, got {quote_value(value)}"
    return (
        f"expected a plain decimal number (digits, '.', an exponent of at most two digits), "
        f"got {quote_value(value)}"
    )


def as_category(value: object) -> str | None:
    """Read one value of a categorical column: text, or ``None`` when missing.

    Numbers and booleans are accepted and read as their text (``1`` → ``"1"``), so a category
    that happens to look numeric matches what the model saw in a CSV file.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise TextTooLongError(
                f"text of {len(value)} characters is too long (at most {MAX_TEXT_CHARS})"
            )
        return value if value.strip(BLANK_CHARS) else None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bool | int):
        return str(value)
    raise TypeError(f"expected text, got {type(value).__name__}")


def quote_value(value: str, limit: int = 40) -> str:
    """``repr`` of a value for a message, cut to ``limit`` characters."""
    shown = value if len(value) <= limit else value[:limit] + "…"
    return repr(shown)


@dataclass(frozen=True)
class Feature:
    """One input column as the model learned it.

    Attributes
    ----------
    name
        Column name.
    kind
        ``"numeric"`` or ``"categorical"``.
    categories
        Categorical only: the categories seen in training, sorted as the encoder sorts them.
    minimum, maximum
        Numeric only: the observed range in training.
    integer
        Numeric only: every observed value was a whole number.
    missing_rate
        Share of training rows where the value was missing. A missing value is accepted at
        scoring time only for a column that had missing values in training.
    """

    name: str
    kind: Kind
    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    missing_rate: float = 0.0

    @property
    def allows_missing(self) -> bool:
        """Whether a missing value is acceptable for this column."""
        return self.missing_rate > 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; keys irrelevant to the kind are left out."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            out["categories"] = list(self.categories)
        else:
            out.update(minimum=self.minimum, maximum=self.maximum, integer=self.integer)
        out["missing_rate"] = self.missing_rate
        return out


@dataclass(frozen=True)
class Schema:
    """The columns a churn model reads and the target it predicts.

    Attributes
    ----------
    target
        Name of the target column.
    positive_label
        The label meaning "churned"; probabilities are reported for it.
    classes
        Both labels as the model orders them (sorted); one of them is ``positive_label``.
    features
        The input columns, in the order the model's encoder reads them.
    id_columns
        Identifier columns: accepted in input and ignored.
    ignored_columns
        Other columns the user chose to leave out; accepted in input and ignored.
    """

    target: str
    positive_label: str
    classes: tuple[str, str]
    features: tuple[Feature, ...]
    id_columns: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.positive_label not in self.classes:
            raise ArtifactError(
                f"positive label {self.positive_label!r} is not one of the classes {self.classes}"
            )
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ArtifactError("schema lists a feature twice")

    @property
    def negative_label(self) -> str:
        """The label that is not the positive one."""
        return self.classes[0] if self.classes[1] == self.positive_label else self.classes[1]

    @property
    def numeric(self) -> tuple[Feature, ...]:
        """Numeric features, in order."""
        return tuple(f for f in self.features if f.kind == "numeric")

    @property
    def categorical(self) -> tuple[Feature, ...]:
        """Categorical features, in order."""
        return tuple(f for f in self.features if f.kind == "categorical")

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of all features, in order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        """Return the feature called ``name``."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form stored in the artifact manifest."""
        return {
            "target": self.target,
            "positive_label": self.positive_label,
            "classes": list(self.classes),
            "id_columns": list(self.id_columns),
            "ignored_columns": list(self.ignored_columns),
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output; raise ArtifactError if malformed."""
        try:
            classes = tuple(str(c) for c in data["classes"])
            if len(classes) != 2:
                raise ValueError("a churn schema has exactly two classes")
            features = tuple(_feature_from_dict(f) for f in data["features"])
            return cls(
                target=str(data["target"]),
                positive_label=str(data["positive_label"]),
                classes=(classes[0], classes[1]),
                features=features,
                id_columns=tuple(data.get("id_columns", ())),
                ignored_columns=tuple(data.get("ignored_columns", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed schema in manifest: {exc}") from exc

    def describe(self) -> Iterable[str]:
        """Yield one human line per feature."""
        for f in self.features:
            if f.kind == "numeric":
                span = f"{_fmt(f.minimum)} … {_fmt(f.maximum)}"
                yield f"{f.name}: numeric {span}, missing {f.missing_rate:.1%}"
            else:
                yield f"{f.name}: categorical, {len(f.categories)} categories"


def _feature_from_dict(data: dict[str, Any]) -> Feature:
    kind = data["kind"]
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"unknown feature kind {kind!r}")
    return Feature(
        name=str(data["name"]),
        kind=kind,
        categories=tuple(str(c) for c in data.get("categories", ())),
        minimum=data.get("minimum"),
        maximum=data.get("maximum"),
        integer=bool(data.get("integer", False)),
        missing_rate=float(data.get("missing_rate", 0.0)),
    )


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"
