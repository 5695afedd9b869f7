"""Records to the model's feature matrix, without pandas or scikit-learn.

A :class:`FeatureLayout` is read from the fitted ``prepare`` step at export time: the numeric
columns in order, then one indicator column per category the one-hot encoder learned. Encoding a
record follows the same rules as the pipeline (:func:`churnops.schema.parse_number` for numbers,
:func:`churnops.schema.as_category` for categories, unseen categories give all-zero indicators)
so the matrix is identical, value for value, to what ``prepare.transform`` returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from churnops.errors import RecordError
from churnops.schema import (
    BLANK_CHARS,
    NUMBER_PATTERN,
    NotANumberError,
    as_category,
    parse_number,
    quote_value,
)

MAX_PROBLEMS = 20
_ABSENT = object()


@dataclass(frozen=True)
class NumericColumn:
    """A numeric input column and whether a missing value is acceptable."""

    name: str
    allows_missing: bool


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical input column and its one-hot block.

    ``categories`` are in the encoder's order; ``missing_is_category`` is true when the encoder
    learned "missing" as a category of its own (it then sits last in the block).
    """

    name: str
    categories: tuple[str, ...]
    allows_missing: bool
    missing_is_category: bool
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.categories)})

    @property
    def width(self) -> int:
        """Number of indicator columns of this block."""
        return len(self.categories) + (1 if self.missing_is_category else 0)


@dataclass(frozen=True)
class Encoded:
    """A feature matrix and the warnings raised while building it."""

    matrix: np.ndarray
    warnings: dict[int, list[str]]


@dataclass(frozen=True)
class FeatureLayout:
    """The columns ``prepare`` produces, in order."""

    numeric: tuple[NumericColumn, ...]
    categorical: tuple[CategoricalColumn, ...]
    optional: tuple[str, ...] = ()  # ID and ignored columns: accepted, never required

    @property
    def width(self) -> int:
        """Number of columns of the feature matrix."""
        return len(self.numeric) + sum(c.width for c in self.categorical)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form stored in the artifact."""
        return {
            "numeric": [{"name": c.name, "allows_missing": c.allows_missing} for c in self.numeric],
            "categorical": [
                {
                    "name": c.name,
                    "categories": list(c.categories),
                    "allows_missing": c.allows_missing,
                    "missing_is_category": c.missing_is_category,
                }
                for c in self.categorical
            ],
            "optional": list(self.optional),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureLayout:
        """Inverse of :meth:`to_dict`."""
        return cls(
            numeric=tuple(
                NumericColumn(c["name"], bool(c["allows_missing"])) for c in data["numeric"]
            ),
            categorical=tuple(
                CategoricalColumn(
                    c["name"],
                    tuple(str(v) for v in c["categories"]),
                    bool(c["allows_missing"]),
                    bool(c["missing_is_category"]),
                )
                for c in data["categorical"]
            ),
            optional=tuple(data.get("optional", ())),
        )

    # -- records (the API's path) -------------------------------------------------------------

    def encode_records(self, records: Sequence[Any]) -> Encoded:
        """Encode a parsed JSON array of customer objects.

        Raises
        ------
        RecordError
            Listing, per record and field, what is wrong (at most ``MAX_PROBLEMS``).
        """
        if len(records) == 0:
            raise RecordError([{"record": None, "field": None, "problem": "no records to score"}])
        matrix = np.zeros((len(records), self.width), dtype=np.float64)
        problems: list[dict[str, object]] = []
        warnings: dict[int, list[str]] = {}
        n_numeric = len(self.numeric)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append(_problem(i, None, f"expected an object, got {_json_type(record)}"))
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            row = matrix[i]
            for j, numeric in enumerate(self.numeric):
                value = record.get(numeric.name, _ABSENT)
                if value is _ABSENT:
                    problems.append(_problem(i, numeric.name, "missing field"))
                    continue
                try:
                    number = parse_number(value)
                except NotANumberError as exc:
                    problems.append(_problem(i, numeric.name, str(exc)))
                    continue
                if number != number and not numeric.allows_missing:  # NaN
                    problems.append(_problem(i, numeric.name, "a value is required"))
                    continue
                row[j] = number
            offset = n_numeric
            for column in self.categorical:
                value = record.get(column.name, _ABSENT)
                if value is _ABSENT:
                    problems.append(_problem(i, column.name, "missing field"))
                elif isinstance(value, str) and value in column.index:
                    row[offset + column.index[value]] = 1.0  # the common case, first
                else:
                    self._encode_other(i, column, value, row, offset, problems, warnings)
                offset += column.width
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise RecordError(problems[:MAX_PROBLEMS])
        return Encoded(matrix, warnings)

    @staticmethod
    def _encode_other(
        i: int,
        column: CategoricalColumn,
        value: object,
        row: np.ndarray,
        offset: int,
        problems: list[dict[str, object]],
        warnings: dict[int, list[str]],
    ) -> None:
        if isinstance(value, list | dict):
            problems.append(_problem(i, column.name, f"expected text, got {_json_type(value)}"))
            return
        try:
            category = as_category(value)
        except TypeError as exc:
            problems.append(_problem(i, column.name, str(exc)))
            return
        if category is None:
            if not column.allows_missing:
                problems.append(_problem(i, column.name, "a value is required"))
            elif column.missing_is_category:
                row[offset + len(column.categories)] = 1.0
            return
        position = column.index.get(category)
        if position is None:
            warnings.setdefault(i, []).append(_unseen(column, category))
            return
        row[offset + position] = 1.0

    # -- columns (batch scoring) -------------------------------------------------------------

    def encode_columns(self, columns: Mapping[str, Any], rows: int) -> Encoded:
        """Encode a columnar batch (e.g. a table read from a file), vectorised.

        Uses pandas for hashing and number parsing at batch speed; pandas is imported here,
        never on the API's path.
        """
        import pandas as pd

        names = [c.name for c in self.numeric] + [c.name for c in self.categorical]
        missing = [name for name in names if name not in columns]
        if missing:
            raise RecordError(
                [{"record": None, "field": name, "problem": "column missing"} for name in missing]
            )
        if rows == 0:
            raise RecordError([{"record": None, "field": None, "problem": "no rows to score"}])
        # Column-major: each feature is written as one contiguous column (LightGBM reads either);
        # every column is written below, so the memory need not be zeroed first.
        matrix = np.empty((rows, self.width), dtype=np.float64, order="F")
        problems: list[dict[str, object]] = []
        warnings: dict[int, list[str]] = {}
        for j, numeric in enumerate(self.numeric):
            values = columns[numeric.name]
            parsed = _arrow_numbers(values)
            if parsed is None:
                parsed = _numbers(pd, numeric, values, problems)
            elif not numeric.allows_missing:
                for k in np.flatnonzero(np.isnan(parsed))[:MAX_PROBLEMS]:
                    problems.append(_problem(int(k), numeric.name, "a value is required"))
            matrix[:, j] = parsed
        offset = len(self.numeric)
        for categorical in self.categorical:
            values = columns[categorical.name]
            codes = _arrow_codes(values, categorical)
            if codes is None:
                codes = _category_codes(pd, categorical, values, problems, warnings)
            else:
                rest = np.flatnonzero(codes < 0)
                if len(rest):  # the rare values that are not a known category verbatim
                    objects = _to_objects(values, rest)
                    codes[rest] = _category_codes(
                        pd, categorical, objects, problems, warnings, rows=rest
                    )
            for k in range(categorical.width):
                matrix[:, offset + k] = codes == k
            offset += categorical.width
        if problems:
            raise RecordError(problems[:MAX_PROBLEMS])
        return Encoded(matrix, warnings)


def _arrow_strings(values: Any) -> Any:
    """``values`` as an Arrow string array when it already is one (pandas' text columns)."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - batch scoring comes with pyarrow
        return None
    if hasattr(values, "array") and "Arrow" in type(values.array).__name__:
        values = pa.array(values)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return values
    return None


def _arrow_numbers(values: Any) -> np.ndarray | None:
    """Parse an Arrow text column at C++ speed; None when it needs the exact, slow path."""
    strings = _arrow_strings(values)
    if strings is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim(strings, characters=BLANK_CHARS)
    blank = pc.or_kleene(pc.is_null(trimmed), pc.equal(trimmed, ""))
    # Arrow's parser reads more than the rule does ("1e300", "inf"): every non-blank value must
    # spell a number by the rule (RE2, linear time) or the exact path decides.
    spelled = pc.match_substring_regex(trimmed, f"^(?:{NUMBER_PATTERN})$")
    if not pc.all(pc.or_kleene(blank, spelled)).as_py():
        return None
    try:
        parsed = pc.cast(pc.if_else(blank, pa.scalar(None, trimmed.type), trimmed), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # something is not a number: the exact path names it
    numbers = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)
    if (
        not np.isfinite(numbers[~np.isnan(numbers)]).all()
        or np.isnan(numbers[~np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)]).any()
    ):
        return None  # "inf", "nan" and friends: parse_number decides
    return numbers


def _arrow_codes(values: Any, column: CategoricalColumn) -> np.ndarray | None:
    """Positions of an Arrow text column's values among the known categories (-1: other)."""
    strings = _arrow_strings(values)
    if strings is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    known = pa.array(list(column.categories), type=strings.type)
    codes = pc.fill_null(pc.index_in(strings, value_set=known), -1)
    return np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)


def _to_objects(values: Any, rows: np.ndarray) -> np.ndarray:
    strings = _arrow_strings(values)
    taken = strings.take(rows).to_pylist() if strings is not None else np.asarray(values)[rows]
    return np.asarray(taken, dtype=object)


def _numbers(
    pd: Any, column: NumericColumn, values: Any, problems: list[dict[str, object]]
) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        numbers = array.astype(np.float64)
        bad = np.isinf(numbers)
    else:
        array = array.astype(object)
        # Blanks are missing; everything else must parse. numpy parses numeric text at C speed;
        # a column with anything else takes pandas' coercing parser, then the exact rule below.
        blank = (array == "") | (array == " ") | pd.isna(array)
        numbers = np.full(len(array), np.nan)
        try:
            numbers[~blank] = array[~blank].astype(np.float64)
            exotic = np.zeros(len(array), dtype=bool)
        except (ValueError, TypeError):
            parsed = pd.to_numeric(pd.Series(array[~blank], dtype=object), errors="coerce")
            numbers[~blank] = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
            exotic = ~blank
        suspicious = ~blank & (exotic | ~np.isfinite(numbers))
        # numpy's parser reads more than the rule does ("1_0", other scripts' digits, "1e300"):
        # any text that does not spell a number by the rule goes to parse_number.
        is_text = np.fromiter((isinstance(v, str) for v in array), dtype=bool, count=len(array))
        candidates = np.flatnonzero(~blank & ~exotic & is_text)
        if len(candidates):
            text = pd.Series(array[candidates], dtype=object).str.strip(BLANK_CHARS)
            spelled = text.str.fullmatch(NUMBER_PATTERN).to_numpy(dtype=bool)
            suspicious[candidates[~spelled]] = True
        kinds = pd.api.types.infer_dtype(array[~blank], skipna=True)
        if kinds not in ("string", "floating", "integer", "mixed-integer-float", "empty"):
            suspicious |= ~blank  # booleans or other objects: let parse_number judge each
        bad = np.zeros(len(array), dtype=bool)
        for k in np.flatnonzero(suspicious):
            value = array[k]
            try:
                number = parse_number(value.item() if isinstance(value, np.generic) else value)
            except NotANumberError:
                bad[k] = True
                continue
            numbers[k] = number
            blank[k] = number != number
    for k in np.flatnonzero(bad)[:MAX_PROBLEMS]:
        value = array[k]
        try:
            parse_number(value.item() if isinstance(value, np.generic) else value)
            reason = "expected a finite number"
        except NotANumberError as exc:
            reason = str(exc)
        problems.append(_problem(int(k), column.name, reason))
    if not column.allows_missing:
        for k in np.flatnonzero(np.isnan(numbers) & ~bad)[:MAX_PROBLEMS]:
            problems.append(_problem(int(k), column.name, "a value is required"))
    return numbers


def _category_codes(
    pd: Any,
    column: CategoricalColumn,
    values: Any,
    problems: list[dict[str, object]],
    warnings: dict[int, list[str]],
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Position of each value in the column's one-hot block (-1: none); ``rows`` renumbers."""
    array = np.asarray(values, dtype=object)
    known = pd.Index(list(column.categories), dtype=object)
    codes = np.asarray(known.get_indexer(pd.Index(array, dtype=object)), dtype=np.int64)
    rest = np.flatnonzero(codes < 0)
    if len(rest):
        # Values that are not a known category verbatim: decide once per distinct value with
        # as_category, the single rule for what a value means (blank, number as text, unseen).
        for value in pd.unique(pd.Series(array[rest], dtype=object)):
            where = rest[_same(array[rest], value)]
            first = int(where[0] if rows is None else rows[where[0]])
            try:
                category = as_category(value.item() if isinstance(value, np.generic) else value)
            except TypeError as exc:
                problems.append(_problem(first, column.name, str(exc)))
                continue
            if category is None:
                if not column.allows_missing:
                    problems.append(_problem(first, column.name, "a value is required"))
                elif column.missing_is_category:
                    codes[where] = len(column.categories)
                continue
            position = column.index.get(category)
            if position is not None:
                codes[where] = position
                continue
            for k in where:
                warnings.setdefault(int(k if rows is None else rows[k]), []).append(
                    _unseen(column, category)
                )
    return codes


def _same(array: np.ndarray, value: object) -> np.ndarray:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in array])
    return np.asarray(array == value, dtype=bool)


def _is_numeric(values: Any) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and dtype.kind in "iuf"


def _unseen(column: CategoricalColumn, category: str) -> str:
    return (
        f"field '{column.name}': category {quote_value(category)} was not seen in training; "
        "scored as none of the known categories"
    )


def _problem(record: int, field: str | None, problem: str) -> dict[str, object]:
    return {"record": record, "field": field, "problem": problem}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number" if not (isinstance(value, float) and math.isnan(value)) else "NaN"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
