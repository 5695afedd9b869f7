"""CSV bodies of ``POST /predict/csv``: read into records, written back with the scores.

The standard library's ``csv`` module only (the serving path imports no pandas). Values stay
text: the scorer reads them by the schema's rules, exactly as it reads JSON strings, so a blank
cell is a missing value and ``"29.85"`` is a number for a numeric column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from churnops.api.body import BadRequestError
from churnops.errors import LimitError, RecordError
from churnops.schema import Schema, quote_value

# Columns the scored file gets, after the file's own (as `churnops predict` writes them, plus the
# probability of the predicted label as /predict answers it and any warnings per row).
SCORE_COLUMNS = ("prediction", "probability", "churn_probability", "warnings")


@dataclass(frozen=True)
class CsvTable:
    """A parsed CSV body: its header, its rows as records and the line each row starts on."""

    header: list[str]
    rows: list[list[str]]
    records: list[dict[str, str]]
    lines: list[int]


def parse_csv(body: bytes | bytearray, max_records: int, schema: Schema) -> CsvTable:
    """Read a CSV body (UTF-8, comma-separated, a header row first) into records.

    Raises
    ------
    BadRequestError
        Not UTF-8 text, no header, a column named twice, a row with more or fewer cells than
        the header, or malformed quoting; the message names the line.
    RecordError
        The header lacks columns the model needs (named, with the file's columns the model does
        not know, which are often the same columns spelled differently).
    LimitError
        More than ``max_records`` rows.
    """
    try:
        text = bytes(body).decode("utf-8-sig")  # a byte-order mark, as Excel writes, is fine
    except UnicodeDecodeError as exc:
        raise BadRequestError(
            f"the file is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise BadRequestError("the file is empty: send a header row, then one row per customer")
        header = [name.strip() for name in header]
        _check_header(header, schema)
        rows: list[list[str]] = []
        lines: list[int] = []
        start = reader.line_num + 1
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):  # a blank line
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise BadRequestError(
                    f"line {start}: {len(row)} cells where the header has {len(header)}"
                )
            if len(rows) == max_records:
                raise LimitError(f"more than {max_records} rows: the limit per request")
            rows.append(row)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise BadRequestError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise BadRequestError("the file has a header but no rows to score")
    records = [dict(zip(header, row, strict=True)) for row in rows]
    return CsvTable(header, rows, records, lines)


def _check_header(header: list[str], schema: Schema) -> None:
    seen: set[str] = set()
    for name in header:
        if not name:
            raise BadRequestError("the header has a column without a name")
        if name in seen:
            raise BadRequestError(f"the header names column {quote_value(name)} twice")
        seen.add(name)
    missing = [name for name in schema.feature_names if name not in seen]
    if missing:
        known = {*schema.feature_names, *schema.id_columns, *schema.ignored_columns, schema.target}
        unknown = [name for name in header if name not in known and name not in SCORE_COLUMNS]
        problems: list[dict[str, object]] = [
            {"record": None, "field": name, "problem": "column missing"} for name in missing
        ]
        problems += [
            {"record": None, "field": name, "problem": "column unknown to the model"}
            for name in unknown
        ]
        message = "the file lacks columns the model needs: " + ", ".join(missing)
        if unknown:
            message += "; columns the model does not know: " + ", ".join(unknown)
        raise FileRecordError(problems, message)


class FileRecordError(RecordError):
    """A :class:`RecordError` (422, with its problems) whose message speaks of the file."""

    def __init__(self, problems: list[dict[str, object]], message: str) -> None:
        super().__init__(problems)
        self.args = (message,)


def with_lines(exc: RecordError, lines: Sequence[int]) -> RecordError:
    """``exc`` with the file's line number beside each record's position, and in its message."""
    problems: list[dict[str, object]] = []
    for problem in exc.problems:
        record = problem.get("record")
        problems.append({**problem, "line": lines[record]} if isinstance(record, int) else problem)
    first = problems[0]
    where = f"line {first['line']}" if "line" in first else "the file"
    if first.get("field") is not None:
        where += f", column '{first['field']}'"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return FileRecordError(problems, f"{where}: {first.get('problem')}{more}")


def scored_csv(
    table: CsvTable,
    labels: Sequence[str],
    probabilities: Sequence[float],
    positive_label: str,
    warnings: Mapping[int, Sequence[str]],
) -> bytes:
    """The file's rows with the score columns appended (replacing columns of the same names).

    ``probabilities`` are of the positive class; numbers are written in full (``repr``), so
    they equal what ``/predict`` answers for the same record.
    """
    kept = [i for i, name in enumerate(table.header) if name not in SCORE_COLUMNS]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([table.header[i] for i in kept] + list(SCORE_COLUMNS))
    for n, (row, label, p) in enumerate(zip(table.rows, labels, probabilities, strict=True)):
        of_label = p if label == positive_label else 1.0 - p
        writer.writerow(
            [row[i] for i in kept]
            + [label, repr(of_label), repr(p), "; ".join(warnings.get(n, []))]
        )
    return out.getvalue().encode()
