"""Ground truth from a file or rows: the actual label of each record key, attached in the store."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from churnops.errors import DataError
from churnops.monitoring.store import MAX_KEY_CHARS, LabelOutcome, open_store

KEY_COLUMN = "customerID"
LABEL_COLUMN = "Churn"


def attach_labels(
    store_url: str,
    data: Any,
    key_column: str = KEY_COLUMN,
    label_column: str = LABEL_COLUMN,
    source: str = "file",
) -> LabelOutcome:
    """Store the labels in ``data`` for the keys the store has predictions of.

    Parameters
    ----------
    store_url
        The prediction store (opened, created or migrated as by ``churnops serve``).
    data
        A data frame, or rows as mappings, with ``key_column`` and ``label_column``.
    source
        Recorded with each label (where the truth came from).

    Returns
    -------
    LabelOutcome
        How many labels were stored, and the keys no logged prediction has (not stored).

    Raises
    ------
    DataError
        A column is missing, or a row has no usable key or label (named by its position).
    ConfigError
        The store cannot be opened.
    StoreError
        The store failed while the labels were written.
    """
    pairs = label_pairs(data, key_column, label_column)
    store = open_store(store_url)
    try:
        return store.store_labels(pairs, source)
    finally:
        store.close()


def label_pairs(data: Any, key_column: str, label_column: str) -> list[tuple[str, str]]:
    """``(key, label)`` of each row, keys as the API logs them (text; integers without '.0')."""
    if hasattr(data, "columns"):  # a data frame: read two columns, not every row as a dict
        missing = [c for c in (key_column, label_column) if c not in data.columns]
        if missing:
            raise DataError(
                f"no column {missing[0]!r} in the data (columns: "
                f"{', '.join(map(str, list(data.columns)[:20]))}); choose it with "
                f"--{'key' if missing[0] == key_column else 'label'}-column"
            )
        keys: Iterable[Any] = data[key_column].tolist()
        values: Iterable[Any] = data[label_column].tolist()
        rows: Iterable[tuple[Any, Any]] = zip(keys, values, strict=True)
    else:
        rows = (_row(row, key_column, label_column) for row in data)
    pairs = []
    for i, (key, label) in enumerate(rows):
        key_text, label_text = _text(key), _text(label)
        if key_text is None or len(key_text) > MAX_KEY_CHARS or "\x00" in key_text:
            raise DataError(f"row {i}: {key_column} {key!r} is not a usable key")
        if label_text is None:
            raise DataError(f"row {i}: no label in {label_column}")
        pairs.append((key_text, label_text))
    if not pairs:
        raise DataError("no labels: the data has no rows")
    return pairs


def _row(row: Mapping[str, Any], key_column: str, label_column: str) -> tuple[Any, Any]:
    return row.get(key_column), row.get(label_column)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str):  # a numpy scalar
        return _text(value.item())
    text = str(value)
    return text if text else None
