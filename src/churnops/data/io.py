"""Reading and writing tables (CSV or Parquet, chosen by file extension)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

CSV_SUFFIXES = {".csv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def table_format(path: Path) -> str:
    """``csv`` or ``parquet``, by the file's suffix; DataError for another suffix."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet")


def table_file(path: str | Path) -> tuple[Path, str]:
    """``path`` and its format (``csv`` or ``parquet``), once it is known to be a file of one.

    Raises
    ------
    DataError
        An unknown suffix, a missing file, or not a file.
    """
    path = Path(path)
    kind = table_format(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"not a file: {path}")
    return path, kind


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file.

    CSV cells are read as text, exactly as written (no value is turned into "missing" by a
    guess: a category called ``NA`` stays ``NA``); column kinds are decided afterwards by
    :func:`churnops.data.cleaning.infer_kinds`. Parquet keeps its stored types.

    Raises
    ------
    DataError
        The file is missing, of an unknown type, unreadable, holds no rows, or has a column
        of lists, structs or maps (Parquet); the message names the column.
    """
    path, kind = table_file(path)
    import pandas as pd  # here: checking a file's name and presence needs no pandas

    try:
        if kind == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        else:
            check_flat_columns(path)
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read {kind.upper()}: {first_line}") from exc
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no columns")
    if frame.empty:
        raise DataError(f"{path}: the table has a header but no rows")
    return frame


def check_flat_columns(path: Path) -> None:
    """Refuse a Parquet file with a non-scalar column before its data is read.

    A churn table is flat: every cell one number, text, boolean or date. A list, struct, map
    or union column has no meaning as a feature and breaks every step after reading, so it is
    named here, from the file's schema, rather than failing later with a traceback.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    for field in pq.read_schema(path):
        kind = _nested_kind(pa, field.type)
        if kind is not None:
            shown = str(field.type).splitlines()[0]
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise DataError(
                f"{path}: column {field.name!r} holds {kind} (Parquet type {shown}); only "
                "columns of single values (numbers, text, booleans, dates) can be used: "
                "flatten or drop it"
            )


def _nested_kind(pa: Any, arrow_type: Any) -> str | None:
    """``lists``, ``structs``, ``maps`` or ``unions`` for a nested Arrow type, else None."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if not pa.types.is_nested(arrow_type):
        return None
    if pa.types.is_map(arrow_type):  # a map is a list of structs: test it first
        return "maps"
    if pa.types.is_struct(arrow_type):
        return "structs"
    if pa.types.is_union(arrow_type):
        return "unions"
    return "lists"


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV or Parquet according to the extension of ``path``."""
    path = Path(path)
    kind = table_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """Return the sha256 of a frame's CSV form: a stable fingerprint for generated data."""
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
