"""Records to the model's feature matrix, without pandas or scikit-learn.

A :class:`FeatureLayout` is read from the fitted ``prepare`` step at export time: the numeric
columns in order, then one indicator column per category the one-hot encoder learned. Encoding a
record follows the same rules as the pipeline (:func:`churnops.schema.parse_number` for numbers,
:func:`churnops.schema.as_category` for categories, unseen categories give all-zero indicators)
so the matrix is identical, value for value, to what ``prepare.transform`` returns.

The rules are applied value by value, except where a vectorised reading is proven to give the
same result: a known category written verbatim, a number spelled by ``NUMBER_PATTERN`` within
``MAX_NUMBER_CHARS``, a blank, an int or float. Every other value goes through the rule itself,
so the records path and the columns path agree on numbers, problems and warnings
(``tests/inference/test_encoding_rules.py`` checks it with generated values).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from churnops.errors import RecordError
from churnops.schema import (
    BLANK_CHARS,
    MAX_NUMBER_CHARS,
    NUMBER_PATTERN,
    NotANumberError,
    as_category,
    parse_number,
    quote_value,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

MAX_PROBLEMS = 20
# Known categories named in an unseen-category warning (the schema in /metadata has them all).
SHOWN_CATEGORIES = 10
WarningKind = Literal["unseen_category", "out_of_range"]
_ABSENT = object()
_REQUIRED = "a value is required"


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

    @cached_property  # read for every record scored: worked out once
    def width(self) -> int:
        """Number of indicator columns of this block."""
        return len(self.categories) + (1 if self.missing_is_category else 0)


class InputWarning(str):
    """A value scored with a caveat: the message, with the field and the kind attached.

    It is its message (a ``str``: the API's ``warnings`` lists these texts), and says which
    field and what kind of caveat it is, so the service can count warnings by field and kind.
    """

    __slots__ = ("field", "kind")
    field: str
    kind: WarningKind

    def __new__(cls, message: str, field: str, kind: WarningKind) -> InputWarning:
        warning = super().__new__(cls, message)
        warning.field = field
        warning.kind = kind
        return warning


@dataclass(frozen=True)
class Encoded:
    """A feature matrix and the warnings raised while building it."""

    matrix: np.ndarray
    warnings: dict[int, list[InputWarning]]


@dataclass(frozen=True)
class FeatureLayout:
    """The columns ``prepare`` produces, in order."""

    numeric: tuple[NumericColumn, ...]
    categorical: tuple[CategoricalColumn, ...]
    optional: tuple[str, ...] = ()  # ID and ignored columns: accepted, never required

    @cached_property
    def width(self) -> int:
        """Number of columns of the feature matrix."""
        return len(self.numeric) + sum(c.width for c in self.categorical)

    @cached_property
    def _field_getter(self) -> Callable[[Mapping[str, Any]], Any]:
        """A record's values of :attr:`fields`, in one call (KeyError when one is missing)."""
        return itemgetter(*self.fields)

    @cached_property
    def _block_offsets(self) -> np.ndarray:
        """The first matrix column of each categorical block."""
        widths = [c.width for c in self.categorical]
        return np.cumsum([len(self.numeric), *widths])[:-1].astype(np.int64)

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The input fields, in the order of their columns in the feature matrix."""
        return tuple(c.name for c in self.numeric) + tuple(c.name for c in self.categorical)

    @property
    def field_of_column(self) -> np.ndarray:
        """For each column of the feature matrix, the position of its field in :attr:`fields`."""
        widths = [1] * len(self.numeric) + [c.width for c in self.categorical]
        return np.repeat(np.arange(len(widths)), widths)

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

        From ``FIELDWISE_RECORDS`` records on, the batch is read field by field
        (:meth:`_encode_fields`, numpy); a batch that has a problem anywhere, and a small one,
        record by record, which names every problem in order.

        Raises
        ------
        RecordError
            Listing, per record and field, what is wrong (at most ``MAX_PROBLEMS``).
        """
        if len(records) >= FIELDWISE_RECORDS:
            encoded = self._encode_fields(records)
            if encoded is not None:
                return encoded
        if len(records) == 0:
            raise RecordError([{"record": None, "field": None, "problem": "no records to score"}])
        matrix = np.zeros((len(records), self.width), dtype=np.float64)
        problems: list[dict[str, object]] = []
        warnings: dict[int, list[InputWarning]] = {}
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
                    problems.append(_problem(i, numeric.name, _REQUIRED))
                    continue
                row[j] = number
            offset = n_numeric
            for column in self.categorical:
                value = record.get(column.name, _ABSENT)
                if isinstance(value, str) and value in column.index:
                    row[offset + column.index[value]] = 1.0  # the common case, first
                elif value is _ABSENT:
                    problems.append(_problem(i, column.name, "missing field"))
                else:
                    try:
                        code = _code(column, value)
                    except _RefusedError as exc:
                        problems.append(_problem(i, column.name, exc.problem))
                    else:
                        if isinstance(code, str):
                            warnings.setdefault(i, []).append(unseen_category(column, code))
                        elif code >= 0:
                            row[offset + code] = 1.0
                offset += column.width
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise RecordError(problems[:MAX_PROBLEMS])
        return Encoded(matrix, warnings)

    def _encode_fields(self, records: Sequence[Any]) -> Encoded | None:
        """Encode a batch of objects one field at a time, as :meth:`encode_records` would.

        Each field's values are gathered in C (``map``) and read at once: numbers by numpy,
        known categories by one dictionary look-up each; only the rare rest (text in a numeric
        field, an unseen or non-text category, a blank) goes through the rules. Returns None
        when the batch has a problem (not an object, a missing field, a refused value): the
        record-by-record path then lists the problems in order. No pyarrow: this is the API's
        path.
        """
        if set(map(type, records)) != {dict}:
            return None
        rows = len(records)
        n_numeric = len(self.numeric)
        try:  # every record's fields in one pass (C), then one sequence per field
            gathered = map(self._field_getter, records)
            if len(self.fields) == 1:  # itemgetter of one name gives the value, not a tuple
                values_of: list[Sequence[Any]] = [list(gathered)]
            else:
                values_of = list(zip(*gathered, strict=True))
        except KeyError:  # a missing field: the record loop names it
            return None
        matrix = np.zeros((rows, self.width), dtype=np.float64)
        for j, numeric in enumerate(self.numeric):
            numbers = _read_numbers(list(values_of[j]))
            if numbers is None or (not numeric.allows_missing and np.isnan(numbers).any()):
                return None
            matrix[:, j] = numbers
        if not self.categorical:
            return Encoded(matrix, {})
        codes = np.empty((len(self.categorical), rows), dtype=np.int64)
        for c, column in enumerate(self.categorical):
            try:
                codes[c] = np.fromiter(
                    map(column.index.get, values_of[n_numeric + c], repeat(_NOT_VERBATIM)),
                    np.int64,
                    rows,
                )
            except TypeError:  # an unhashable value (a list or an object): refused
                return None
        found: list[tuple[int, int, InputWarning]] = []  # (record, position of the field, warning)
        for c, k in np.argwhere(codes == _NOT_VERBATIM).tolist():  # the rare rest, by the rules
            column = self.categorical[c]
            try:
                code = _code(column, values_of[n_numeric + c][k])
            except _RefusedError:
                return None
            if isinstance(code, str):
                found.append((k, n_numeric + c, unseen_category(column, code)))
                code = -1
            codes[c, k] = code
        # One scatter for every block: row r, block c's column offset + code.
        columns = codes + self._block_offsets[:, None]
        hit = codes >= 0
        flat = (np.arange(rows) * self.width)[None, :] + columns
        matrix.reshape(-1)[flat[hit]] = 1.0
        warnings: dict[int, list[InputWarning]] = {}
        for k, _, text in sorted(found, key=lambda w: (w[0], w[1])):
            warnings.setdefault(k, []).append(text)
        return Encoded(matrix, warnings)

    # -- columns (batch scoring) -------------------------------------------------------------

    def encode_columns(self, columns: Mapping[str, Any], rows: int) -> Encoded:
        """Encode a columnar batch (e.g. a table read from a file), vectorised.

        Gives what :meth:`encode_records` gives for the same values, problems listed in the
        same order. Uses pyarrow for text at batch speed; pyarrow is imported here, never on
        the API's path.
        """
        names = [c.name for c in self.numeric] + [c.name for c in self.categorical]
        missing = [name for name in names if name not in columns]
        if missing:
            raise RecordError(
                [{"record": None, "field": name, "problem": "column missing"} for name in missing]
            )
        if rows == 0:
            raise RecordError([{"record": None, "field": None, "problem": "no rows to score"}])

        # Each column is read on its own, with its own problems and warnings, gathered in
        # column order after.
        def read(
            j: int,
        ) -> tuple[np.ndarray, list[tuple[int, int, str]], dict[int, list[InputWarning]]]:
            found: list[tuple[int, int, str]] = []
            warned: dict[int, list[InputWarning]] = {}
            if j < len(self.numeric):
                numeric = self.numeric[j]
                return _numbers(numeric, _cells(columns[numeric.name]), j, found), found, warned
            column = self.categorical[j - len(self.numeric)]
            cells = _cells(columns[column.name])
            return _category_codes(column, cells, j, found, warned), found, warned

        # Large batches use every core: Arrow and numpy release the GIL.
        pool = _thread_pool() if rows >= _PARALLEL_ROWS else None
        run = pool.map if pool is not None else map
        try:
            outcomes = list(run(read, range(len(names))))
            problems: list[tuple[int, int, str]] = []  # (record, position of field, problem)
            warnings: dict[int, list[InputWarning]] = {}
            for _, found, warned in outcomes:
                problems += found
                for k, texts in warned.items():
                    warnings.setdefault(k, []).extend(texts)
            if problems:
                problems.sort(key=lambda p: (p[0], p[1]))  # record by record, as encode_records
                raise RecordError(
                    [_problem(i, names[j], text) for i, j, text in problems[:MAX_PROBLEMS]]
                )
            numbers = [values for values, _, _ in outcomes[: len(self.numeric)]]
            codes = [values for values, _, _ in outcomes[len(self.numeric) :]]
            # Row-major, as the runtimes read rows, written a block of rows at a time (the
            # block stays in cache): the numbers, then each row's indicators in one scatter.
            width = self.width
            matrix = np.zeros((rows, width), dtype=np.float64)
            starts = self._block_offsets

            def fill(a: int) -> None:
                b = min(a + _BLOCK_ROWS, rows)
                block = matrix[a:b]
                for j, column in enumerate(numbers):
                    block[:, j] = column[a:b]
                if codes:
                    block_codes = np.stack([c[a:b] for c in codes], axis=1)
                    hit = block_codes >= 0
                    flat = (np.arange(b - a)[:, None] * width + (block_codes + starts))[hit]
                    block.reshape(-1)[flat] = 1.0

            list(run(fill, range(0, rows, _BLOCK_ROWS)))
        finally:
            if pool is not None:
                pool.shutdown()
        return Encoded(matrix, warnings)


# -- one value, by the rules of churnops.schema ---------------------------------------------


class _RefusedError(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _code(column: CategoricalColumn, value: object) -> int | str:
    """Where ``value`` goes in ``column``'s one-hot block, by :func:`as_category`.

    Returns the position of its indicator, -1 for none (an allowed missing value) or the
    category's text when it was not seen in training (scored as none, with a warning).
    Raises ``_RefusedError`` naming the problem.
    """
    if isinstance(value, list | dict):
        raise _RefusedError(f"expected text, got {_json_type(value)}")
    try:
        category = as_category(value)
    except TypeError as exc:
        raise _RefusedError(str(exc)) from None
    if category is None:
        if not column.allows_missing:
            raise _RefusedError(_REQUIRED)
        return len(column.categories) if column.missing_is_category else -1
    return column.index.get(category, category)


# -- records field by field -----------------------------------------------------------------

FIELDWISE_RECORDS = 16
"""Batches of at least this many records are encoded field by field (measured on the Telco
layout, 2026-11-30: 8.5 µs a record one by one, the same from about 8 records on field by field;
below that the record loop is as fast)."""
_NOT_VERBATIM = -2
_BLOCK_ROWS = 16_384  # rows of the matrix written at a time by encode_columns (about 6 MB)
_PARALLEL_ROWS = 65_536  # from this many rows on, encode_columns works in threads


def _thread_pool() -> ThreadPoolExecutor | None:
    """Threads for a large batch, one a usable CPU; None with a single CPU."""
    if usable_cpus() < 2:
        return None
    from concurrent.futures import ThreadPoolExecutor  # not on the API's import path

    return ThreadPoolExecutor(usable_cpus())


def usable_cpus() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_PLAIN_NUMBERS = {int, float}
_TEXT_OR_NULL = {str, type(None)}
_READ_BY_RULE = {int, float, str, type(None)}


def _read_numbers(values: list[Any]) -> np.ndarray | None:
    """A numeric field's values as float64 by :func:`parse_number`, or None when one is refused.

    Plain numbers are converted by numpy (what ``float()`` gives); text and nulls by the rule,
    once per distinct text when the field holds text alone (a field such as tenure repeats a
    few dozen values).
    """
    kinds = set(map(type, values))
    try:
        if kinds <= _PLAIN_NUMBERS:
            numbers = np.array(values, dtype=np.float64)
            return None if np.isinf(numbers).any() else numbers
        if kinds == {str}:
            spelled = _read_number_texts(values)
            if spelled is not None:
                return spelled
        if kinds <= _TEXT_OR_NULL:
            read = {text: parse_number(text) for text in set(values)}
            return np.fromiter(map(read.__getitem__, values), np.float64, len(values))
        if kinds <= _READ_BY_RULE:
            return np.fromiter(map(parse_number, values), np.float64, len(values))
    except (OverflowError, NotANumberError):  # an int beyond float64, a value the rule refuses
        return None
    return None  # booleans, lists, objects, the absent marker: refused


def _read_number_texts(values: list[str]) -> np.ndarray | None:
    """Texts that all spell numbers (or are blank), read at once; None when one does not.

    The texts are trimmed as the rule trims them and checked together, one line each, against
    ``NUMBER_PATTERN`` (blank lines allowed) in a single match; ``float`` then reads each, as
    the rule does.
    """
    if max(map(len, values)) > MAX_NUMBER_CHARS:
        return None
    trimmed = list(map(str.strip, values, repeat(BLANK_CHARS)))
    joined = "\n".join(trimmed)
    if joined.count("\n") != len(trimmed) - 1 or not _NUMBER_LINES.fullmatch(joined):
        return None  # a line break inside a value, or a text that is not a number
    spelled = np.array(trimmed, dtype=object)
    spelled[spelled == ""] = "nan"  # blank: missing
    return np.fromiter(map(float, spelled), np.float64, len(values))


_NUMBER_LINES = re.compile(f"(?:{NUMBER_PATTERN})?(?:\n(?:{NUMBER_PATTERN})?)*")

# -- columns: vectorised where proven equal to the rules, the rules elsewhere ------------------


@dataclass(frozen=True)
class _Cells:
    """A batch column in the form read fastest: Arrow text (nulls for NaN or None), a numpy
    number or boolean array, or else Python objects."""

    text: pa.Array | None = None
    numbers: np.ndarray | None = None
    objects: np.ndarray | None = None

    def __len__(self) -> int:
        for part in (self.text, self.numbers, self.objects):
            if part is not None:
                return len(part)
        return 0

    def values(self, rows: np.ndarray) -> list[object]:
        """The Python values at ``rows``, as the rules read them."""
        if self.text is not None:
            return list(self.text.take(rows).to_pylist())
        if self.numbers is not None:
            return list(self.numbers[rows].tolist())
        assert self.objects is not None
        return [v.item() if isinstance(v, np.generic) else v for v in self.objects[rows]]


def _cells(values: Any) -> _Cells:
    import pyarrow as pa

    if hasattr(values, "array") and "Arrow" in type(values.array).__name__:
        values = pa.array(values)  # pandas' Arrow-backed text: no copy
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            return _Cells(text=values)
        values = values.to_numpy(zero_copy_only=False)
    array = np.asarray(values)
    if array.dtype.kind in "iufb":
        return _Cells(numbers=array)
    array = array.astype(object)
    try:
        text = pa.array(array, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _Cells(objects=array)  # not all text: numbers, booleans, other objects
    # from_pandas reads NaN as null; anything else null (pandas' NA) is left to the rules.
    nulls = np.flatnonzero(text.is_null().to_numpy(zero_copy_only=False))
    if all(v is None or (isinstance(v, float) and v != v) for v in array[nulls]):
        return _Cells(text=text)
    return _Cells(objects=array)


def _numbers(
    column: NumericColumn, cells: _Cells, position: int, problems: list[tuple[int, int, str]]
) -> np.ndarray:
    """A numeric column as float64 by :func:`parse_number`; its problems go to ``problems``."""
    if cells.text is not None:
        numbers, exact = _parse_text(cells.text)
    elif cells.numbers is not None and cells.numbers.dtype.kind != "b":
        numbers = cells.numbers.astype(np.float64)
        exact = np.flatnonzero(np.isinf(numbers))  # refused: the rule says why
    elif cells.numbers is not None:  # booleans: refused, each by the rule
        numbers, exact = np.full(len(cells), np.nan), np.arange(len(cells))
    else:
        assert cells.objects is not None
        numbers, exact = _parse_objects(cells.objects)
    refused = np.zeros(len(numbers), dtype=bool)
    shown = 0  # a column's first problems are all that can be among the first overall
    for k, value in zip(exact.tolist(), cells.values(exact), strict=True):
        try:
            numbers[k] = parse_number(value)
        except NotANumberError as exc:
            numbers[k], refused[k] = np.nan, True
            if shown < MAX_PROBLEMS:
                problems.append((k, position, str(exc)))
                shown += 1
    if not column.allows_missing:
        for k in np.flatnonzero(np.isnan(numbers) & ~refused)[:MAX_PROBLEMS]:
            problems.append((int(k), position, _REQUIRED))
    return numbers


def _parse_text(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Numbers of an Arrow text column, and the rows left to :func:`parse_number`.

    Arrow reads blanks and every text ``NUMBER_PATTERN`` spells (RE2, linear time) within
    ``MAX_NUMBER_CHARS`` as the rule does, correctly rounded; anything else is left to the rule.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim(text, characters=BLANK_CHARS)
    blank = pc.equal(trimmed, "")
    short = pc.less_equal(pc.utf8_length(text), MAX_NUMBER_CHARS)  # measured before trimming
    plain = _parse_plain(trimmed, blank, short)
    if plain is not None:
        return plain, np.empty(0, dtype=np.intp)
    spelled = pc.match_substring_regex(trimmed, f"^(?:{NUMBER_PATTERN})$")
    readable = pc.fill_null(pc.and_(short, pc.or_(blank, spelled)), True)  # null: missing
    exact = np.flatnonzero(~readable.to_numpy(zero_copy_only=False))
    try:
        parsed = pc.cast(pc.if_else(spelled, trimmed, pa.scalar(None, trimmed.type)), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # pragma: no cover - defensive
        return np.full(len(text), np.nan), np.flatnonzero(~text.is_null().to_numpy(False))
    return parsed.to_numpy(zero_copy_only=False, writable=True), exact


def _parse_plain(trimmed: pa.Array, blank: pa.Array, short: pa.Array) -> np.ndarray | None:
    """Numbers of a text column none of whose cells needs more than Arrow's cast, else None.

    ``trimmed``: the cells without their blanks; ``blank``: which are empty then; ``short``:
    which are at most ``MAX_NUMBER_CHARS`` long (null for a null cell).

    Without the regular expression (measured: 32 of the 58 ms a text column of 1M numbers took).
    Arrow's cast reads every text ``NUMBER_PATTERN`` spells, and beyond it only what spells a
    non-finite number (``inf``, ``nan`` …, refused by the rule: checked on the result) or an
    exponent of three digits (refused by the rule: no cell may hold an ``e``); a cell it cannot
    read fails the whole cast. Either way the caller's path decides, cell by cell.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    too_long = not pc.all(short, min_count=0).as_py()  # nulls: missing cells
    if too_long or any(pc.any(pc.match_substring(trimmed, e)).as_py() for e in "eE"):
        return None
    try:
        parsed = pc.cast(pc.if_else(blank, pa.scalar(None, trimmed.type), trimmed), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pc.any(pc.invert(pc.is_finite(parsed))).as_py():  # nulls (missing) stay null
        return None
    numbers: np.ndarray = parsed.to_numpy(zero_copy_only=False, writable=True)
    return numbers


_TEXT, _NUMBER, _OTHER = 0, 1, 2
_KINDS: dict[type, int] = {str: _TEXT, float: _NUMBER, int: _NUMBER, np.float64: _NUMBER}


def _parse_objects(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numbers of a mixed object column (text and numbers), and the rows left to the rule."""
    import pyarrow as pa

    kinds = np.fromiter((_KINDS.get(type(v), _OTHER) for v in array), np.int8, len(array))
    numbers = np.full(len(array), np.nan)
    exact = [np.flatnonzero(kinds == _OTHER)]
    text = np.flatnonzero(kinds == _TEXT)
    if len(text):
        parsed, rest = _parse_text(pa.array(array[text], type=pa.large_string()))
        numbers[text] = parsed
        exact.append(text[rest])
    plain = np.flatnonzero(kinds == _NUMBER)
    if len(plain):
        try:
            numbers[plain] = array[plain].astype(np.float64)
        except OverflowError:  # an int beyond float64: the rule decides
            exact.append(plain)
        else:
            exact.append(plain[np.isinf(numbers[plain])])
    return numbers, np.sort(np.concatenate(exact))


def _category_codes(
    column: CategoricalColumn,
    cells: _Cells,
    position: int,
    problems: list[tuple[int, int, str]],
    warnings: dict[int, list[InputWarning]],
) -> np.ndarray:
    """Position of each value in the column's one-hot block (-1: none), by :func:`_code`."""
    if cells.text is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        known = pa.array(list(column.categories), type=cells.text.type)
        found = pc.fill_null(pc.index_in(cells.text, value_set=known), -1)
        codes = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
        rest = np.flatnonzero(codes < 0)  # the rare values that are not a known category verbatim
        if not len(rest):
            return codes
        encoded = cells.text.take(rest).dictionary_encode(null_encoding="encode")
        uniques = list(encoded.dictionary.to_pylist())
        inverse = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    elif cells.numbers is not None:
        codes, rest = np.full(len(cells), -1, dtype=np.int64), np.arange(len(cells))
        distinct, inverse = np.unique(cells.numbers, return_inverse=True)
        uniques = list(distinct.tolist())
    else:
        assert cells.objects is not None
        codes, rest = np.full(len(cells), -1, dtype=np.int64), np.arange(len(cells))
        uniques, inverse = _distinct(cells.objects)
    # Decide once per distinct value, then apply to its rows.
    decided: list[int | str | _RefusedError] = []
    for value in uniques:
        try:
            decided.append(_code(column, value))
        except _RefusedError as exc:
            decided.append(exc)
    table = np.array([c if isinstance(c, int) else -1 for c in decided], dtype=np.int64)
    codes[rest] = table[inverse]
    special = np.array([not isinstance(c, int) for c in decided], dtype=bool)
    refused = 0
    rows = special[inverse]
    for k, u in zip(rest[rows].tolist(), inverse[rows].tolist(), strict=True):
        outcome = decided[u]
        if isinstance(outcome, str):
            warnings.setdefault(k, []).append(unseen_category(column, outcome))
        elif isinstance(outcome, _RefusedError) and refused < MAX_PROBLEMS:
            problems.append((k, position, outcome.problem))
            refused += 1
    return codes


def _distinct(array: np.ndarray) -> tuple[list[object], np.ndarray]:
    """Distinct values of an object array and each row's index among them.

    Values are told apart by type too (True is not 1 here, as ``as_category`` reads them).
    """
    seen: dict[tuple[type, object], int] = {}
    uniques: list[object] = []
    inverse = np.empty(len(array), dtype=np.int64)
    for k, raw in enumerate(array):
        value = raw.item() if isinstance(raw, np.generic) else raw
        try:
            u = seen.setdefault((type(value), value), len(uniques))
        except TypeError:  # unhashable (a list): a value of its own
            u = len(uniques)
        if u == len(uniques):
            uniques.append(value)
        inverse[k] = u
    return uniques, inverse


def unseen_category(column: CategoricalColumn, category: str) -> InputWarning:
    known = ", ".join(quote_value(c) for c in column.categories[:SHOWN_CATEGORIES])
    if len(column.categories) > SHOWN_CATEGORIES:
        known += f", … ({len(column.categories)} in all)"
    return InputWarning(
        f"field '{column.name}': category {quote_value(category)} was not seen in training "
        f"(known: {known}); scored as none of the known categories",
        column.name,
        "unseen_category",
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
