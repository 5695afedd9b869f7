"""Deciding column kinds and cleaning values, with the same rules training and scoring use."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from churnops.errors import DataError
from churnops.schema import (
    BLANK_CHARS,
    MAX_NUMBER_CHARS,
    NUMBER_PATTERN,
    Feature,
    Kind,
    TextTooLongError,
    as_category,
    parse_number,
)

# A text column whose values are all distinct is an identifier, not a feature, once the table
# has enough rows for that to mean something.
MIN_ROWS_FOR_ID_DETECTION = 20


def _is_blank(series: pd.Series) -> pd.Series:
    return series.isna() | series.astype(str).str.strip(BLANK_CHARS).eq("")


def infer_kind(series: pd.Series) -> Kind:
    """Return ``"numeric"`` when every non-blank value is a number, else ``"categorical"``.

    Numbers stored as text count as numbers, so a column such as ``TotalCharges`` with blank
    cells is numeric with missing values, never a category per amount.
    """
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    present = series[~_is_blank(series)]
    if present.empty:
        return "numeric"
    text = present.astype(str).str.strip(BLANK_CHARS)
    numbers = text.str.fullmatch(NUMBER_PATTERN) & (text.str.len() <= MAX_NUMBER_CHARS)
    return "numeric" if bool(numbers.all()) else "categorical"


def looks_like_id(series: pd.Series) -> bool:
    """Whether a column is an identifier: text, no blanks, a distinct value on every row."""
    return (
        len(series) >= MIN_ROWS_FOR_ID_DETECTION
        and infer_kind(series) == "categorical"
        and not bool(_is_blank(series).any())
        and series.nunique() == len(series)
    )


def to_numeric(values: Iterable[object]) -> np.ndarray:
    """Parse a column's values as float64 by :func:`parse_number`; blanks become NaN.

    Raises :class:`NotANumberError` (a ValueError) for a value that is not a finite number.
    """
    array = _values(values)
    if array.dtype.kind in "iuf":
        numbers = array.astype(np.float64, copy=False)
        if np.isinf(numbers).any():
            parse_number(math.inf)  # raises, with the rule's own message
        return numbers
    # parse_number is the one definition of a number, shared with the serving path.
    return np.fromiter(
        (parse_number(v.item() if isinstance(v, np.generic) else v) for v in array),
        dtype=np.float64,
        count=len(array),
    )


def to_categories(values: Iterable[object]) -> np.ndarray:
    """Read a column's values as text categories by :func:`as_category`; blanks become NaN."""
    array = _values(values)
    out = np.empty(len(array), dtype=object)
    for i, value in enumerate(array):
        category = as_category(value.item() if isinstance(value, np.generic) else value)
        out[i] = np.nan if category is None else category
    return out


def _values(values: Iterable[object]) -> np.ndarray:
    """The values as an array, each value as given (numpy would turn ``[1.0, "a"]`` into text)."""
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return values
    return np.fromiter(values, dtype=object)


def clean_frame(frame: pd.DataFrame, kinds: dict[str, Kind]) -> pd.DataFrame:
    """Return the ``kinds`` columns cleaned: numbers as float64, categories as text/NaN.

    Categorical columns are pandas categoricals of plain ``str`` (a code per row, each text
    once): a column of Python strings costs about 60 bytes a row, a categorical one. Read as
    an array they are the same plain ``str`` values and NaN, which the pipeline's encoder sorts
    as before.
    """
    columns: dict[str, pd.Series] = {}
    for name, kind in kinds.items():
        if kind == "numeric":
            columns[name] = pd.Series(to_numeric(frame[name]), index=frame.index, dtype=np.float64)
        else:
            try:
                categories = _categorical(frame[name])
            except TextTooLongError as exc:
                raise DataError(
                    f"column {name!r}: {exc}; free text is not a feature: leave the column out"
                ) from None
            columns[name] = pd.Series(categories, index=frame.index)
    return pd.DataFrame(columns, index=frame.index)


def _categorical(values: pd.Series) -> pd.Categorical[Any]:
    """A column's values as categories by :func:`as_category`, as a pandas categorical.

    A text column (as files are read) is decided once per distinct value, without a Python
    string per row; any other column value by value (:func:`to_categories`), where numbers and
    booleans that compare equal (``1`` and ``True``) must stay apart.
    """
    if not isinstance(values.dtype, pd.StringDtype):
        return pd.Categorical(to_categories(values))
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    read = [as_category(value) for value in uniques]  # in order of first appearance
    categories = sorted({category for category in read if category is not None})
    position = {category: i for i, category in enumerate(categories)}
    table = np.array([position.get(c, -1) if c is not None else -1 for c in read] + [-1])
    return pd.Categorical.from_codes(table[codes], categories=pd.Index(categories))


def describe_feature(name: str, kind: Kind, values: pd.Series) -> Feature:
    """Learn one feature's contract (categories or range, missing rate) from cleaned values."""
    missing = values.isna()
    missing_rate = float(missing.mean()) if len(values) else 0.0
    present = values[~missing]
    if kind == "categorical":
        return Feature(
            name=name,
            kind=kind,
            categories=tuple(sorted(str(v) for v in present.unique())),
            missing_rate=missing_rate,
        )
    numbers = present.to_numpy(dtype=np.float64)
    return Feature(
        name=name,
        kind=kind,
        minimum=float(numbers.min()) if numbers.size else None,
        maximum=float(numbers.max()) if numbers.size else None,
        integer=bool(numbers.size and np.all(np.mod(numbers, 1) == 0)),
        missing_rate=missing_rate,
    )
