"""Tables read and written in batches of rows, so memory stays bounded whatever the file's size.

Reading gives what :func:`churnops.data.io.read_table` gives, a batch at a time: CSV cells as
text exactly as written (no value turned into "missing" by a guess), Parquet with its stored
types. Writing appends batches to a CSV, Parquet or JSON-lines file, or to standard output;
a file appears, complete, only when the writer closes without error (it is written beside its
final name and renamed), so a failed run never leaves half a file nor replaces a good one.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from churnops.data.io import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    check_flat_columns,
    table_file,
)
from churnops.errors import DataError

OutputFormat = Literal["csv", "parquet", "jsonl"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("csv", "parquet", "jsonl")
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
STDOUT = "-"


def output_format(out: str, given: str | None) -> OutputFormat:
    """The format to write ``out`` in: ``given``, else the file's suffix (CSV for stdout).

    Raises
    ------
    DataError
        ``given`` is not a format, or the suffix is not one of a format.
    """
    if given is not None:
        if given not in OUTPUT_FORMATS:
            raise DataError(
                f"unknown output format {given!r}; use one of {', '.join(OUTPUT_FORMATS)}"
            )
        return given
    if out == STDOUT:
        return "csv"
    suffix = Path(out).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise DataError(
        f"{out}: unknown output file type {suffix or '(none)'!r}; use .csv, .parquet or .jsonl "
        "(or --format)"
    )


def read_batches(path: str | Path, rows: int) -> Iterator[pa.Table]:
    """The rows of a CSV or Parquet file, about ``rows`` at a time (the last batch fewer).

    Raises
    ------
    DataError
        The file is missing, of an unknown type, unreadable, holds no rows, or has a column
        of lists, structs or maps (Parquet); the message names the column or the problem.
    """
    path, kind = table_file(path)
    batches = _csv_batches(path) if kind == "csv" else _parquet_batches(path, rows)
    seen = 0
    try:
        for table in _regroup(batches, rows):
            seen += table.num_rows
            yield table
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read {kind.upper()}: {_first_line(exc)}") from None
    if seen == 0:
        raise DataError(f"{path}: the table has a header but no rows")


def _csv_batches(path: Path) -> Iterator[pa.RecordBatch]:
    # Every column as text, every cell as written: the header is read first to name them.
    parse = pcsv.ParseOptions(newlines_in_values=True)
    try:
        with pcsv.open_csv(path, parse_options=parse) as first:
            names = first.schema.names
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise DataError(f"{path}: the file is empty") from None
        raise DataError(f"{path}: cannot read CSV: {_first_line(exc)}") from None
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{path}: duplicate column names: {', '.join(twice)}")
    convert = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    with pcsv.open_csv(path, parse_options=parse, convert_options=convert) as reader:
        yield from reader


def _parquet_batches(path: Path, rows: int) -> Iterator[pa.RecordBatch]:
    check_flat_columns(path)
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read PARQUET: {_first_line(exc)}") from None
    with file:
        # A pandas index stored as a column is the index, not data: read_table leaves it out too.
        metadata = file.schema_arrow.pandas_metadata or {}
        index = {c for c in metadata.get("index_columns", ()) if isinstance(c, str)}
        columns = [name for name in file.schema_arrow.names if name not in index]
        yield from file.iter_batches(batch_size=rows, columns=columns)


def _regroup(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Batches gathered (or cut) into tables of ``rows`` rows."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = batch.slice(0, rows - count)
            held.append(take)
            count += take.num_rows
            batch = batch.slice(take.num_rows)
            if count == rows:
                yield pa.Table.from_batches(held)
                held, count = [], 0
    if count:
        yield pa.Table.from_batches(held)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class TableWriter:
    """Appends tables of one schema to a CSV, Parquet or JSON-lines file, or to stdout.

    CSV is written as :meth:`pandas.DataFrame.to_csv` writes it (``churnops predict`` has
    always written CSV so), Parquet by Arrow with pandas' metadata dropped, JSON lines one
    object per row with the column names as keys (a missing value as ``null``).
    """

    def __init__(self, out: str | Path, kind: OutputFormat) -> None:
        self.kind = kind
        self.shown = "standard output" if str(out) == STDOUT else str(out)
        self._path = None if str(out) == STDOUT else Path(out)
        self._partial: Path | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._header = True
        if self._path is None:
            self._sink: IO[bytes] = sys.stdout.buffer
        else:
            partial = self._path.with_name(f".{self._path.name}.partial-{os.getpid()}")
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._sink = open(partial, "wb")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise DataError(f"{self._path}: cannot write ({exc.strerror or exc})") from None
            self._partial = partial

    def write(self, table: pa.Table) -> None:
        """Append ``table``'s rows."""
        try:
            if self.kind == "csv":
                self._sink.write(_csv(table, self._header))
            elif self.kind == "parquet":
                table = table.replace_schema_metadata(None)
                if self._parquet is None:
                    self._parquet = pq.ParquetWriter(self._sink, table.schema)
                self._parquet.write_table(table)
            else:
                self._sink.write(_json_lines(table))
        except OSError as exc:
            raise DataError(f"{self.shown}: cannot write ({exc.strerror or exc})") from None
        self._header = False

    def close(self, keep: bool) -> Path | None:
        """Finish the file: rename it into place when ``keep``, else remove it."""
        try:
            if self._parquet is not None:
                self._parquet.close()
            self._sink.flush()
        except OSError as exc:
            keep = False
            raise DataError(f"{self.shown}: cannot write ({exc.strerror or exc})") from None
        finally:
            if self._partial is not None:
                self._sink.close()
                if keep:
                    os.replace(self._partial, self._path)  # type: ignore[arg-type]
                else:
                    with contextlib.suppress(OSError):
                        self._partial.unlink()
        return self._path


def _csv(table: pa.Table, header: bool) -> bytes:
    """``table`` as :meth:`pandas.DataFrame.to_csv` writes it, with or without the header.

    Text and float columns without missing values, where no name or cell needs quotes (the
    common case: a CSV file read as text, plus the scores), are written by Arrow, several
    times faster, after floats are spelled as Python (and so pandas) spells them; any other
    table by pandas itself.
    """
    columns: list[Any] = []
    for column in table.columns:
        if column.null_count:
            columns = []
            break
        if pa.types.is_floating(column.type):
            column = pa.array([repr(x) for x in column.to_pylist()], pa.string())
        elif not pa.types.is_string(column.type):
            columns = []
            break
        columns.append(column)
    names = table.column_names
    if columns and not any(_QUOTED.search(name) for name in names):
        text = pa.table(columns, names=names)
        if not any(pc.any(pc.match_substring_regex(c, _QUOTED.pattern)).as_py() for c in columns):
            sink = pa.BufferOutputStream()
            if header:  # Arrow would quote the names
                sink.write(",".join(names).encode() + b"\n")
            options = pcsv.WriteOptions(include_header=False, quoting_style="none")
            pcsv.write_csv(text, sink, options)
            return bytes(sink.getvalue().to_pybytes())
    return _pandas_csv(table, header)


def _pandas_csv(table: pa.Table, header: bool) -> bytes:
    return str(table.to_pandas().to_csv(index=False, header=header)).encode()


_QUOTED = re.compile('[,"\r\n]')  # a CSV field with one of these is written in quotes


def _json_lines(table: pa.Table) -> bytes:
    names = table.column_names
    columns: list[list[Any]] = [column.to_pylist() for column in table.columns]
    dump = orjson.dumps
    return b"".join(
        dump(dict(zip(names, row, strict=True)), default=str) + b"\n"
        for row in zip(*columns, strict=True)
    )
