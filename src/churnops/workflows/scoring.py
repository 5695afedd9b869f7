"""Batch scoring: a customer file in, the same rows with their scores out, in bounded memory.

The file is read, scored and written a batch of rows at a time (``rows`` per batch), so a file
of millions of customers needs the memory of one batch, not of the whole table. Each row keeps
its columns and gains ``churn_probability`` (of the positive class) and ``prediction`` (the
label at the model's threshold), the same values, row for row, as scoring the whole file at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnops.data.batches import TableWriter, output_format, read_batches
from churnops.errors import RecordError
from churnops.inference import Scorer

PROBABILITY_COLUMN = "churn_probability"
PREDICTION_COLUMN = "prediction"
BASE_VALUE_COLUMN = "base_value"  # with explain: where each row's contributions start
CONTRIBUTION_PREFIX = "contrib_"  # with explain: one column per input field
DEFAULT_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class ScoredFile:
    """What a batch scoring run did."""

    rows: int
    warned_rows: int  # rows with an unseen category or a number outside the training range
    seconds: float  # reading, scoring and writing
    written: str  # the path written, or "standard output"
    runtime: str


def score_file(
    scorer: Scorer,
    data: str | Path,
    out: str,
    *,
    output: str | None = None,
    rows: int = DEFAULT_BATCH_ROWS,
    on_batch: Callable[[int], None] | None = None,
    explain: bool = False,
) -> ScoredFile:
    """Score every row of ``data`` with ``scorer``; write them to ``out`` (``-``: stdout).

    Parameters
    ----------
    output
        ``csv``, ``parquet`` or ``jsonl``; default: by the suffix of ``out`` (CSV for stdout).
    rows
        Rows read, scored and written at a time: the memory bound.
    on_batch
        Called with the number of rows scored so far, after each batch.
    explain
        Also write each row's feature contributions: ``base_value`` and one
        ``contrib_<field>`` column per input field (log-odds of the positive class; their sum
        is the log-odds of ``churn_probability``).

    Raises
    ------
    DataError
        The input cannot be read or the output type is unknown or cannot be written.
    RecordError
        A row does not match the model's schema (its row number in the file is named); no
        output file is left behind.
    """
    kind = output_format(out, output)
    started = time.perf_counter()
    writer: TableWriter | None = None
    done = warned = 0
    keep = False
    # A batch is written on a thread of its own while the next one is read and scored (Arrow
    # writes without the GIL); at most one write is in flight, so memory stays a batch or two.
    writing = ThreadPoolExecutor(1, "churnops-write")
    pending: Future[None] | None = None
    try:
        for table in read_batches(data, rows):
            scored, batch_warned = _score(scorer, table, done, explain)
            if writer is None:  # opened once the input has proved readable
                writer = TableWriter(out, kind)
            if pending is not None:
                pending.result()  # in order; a failed write stops the run here
            pending = writing.submit(writer.write, scored)
            done += table.num_rows
            warned += batch_warned
            if on_batch is not None:
                on_batch(done)
        if pending is not None:
            pending.result()
        keep = True
    finally:
        writing.shutdown(wait=True)
        if writer is not None:
            writer.close(keep)
    assert writer is not None  # read_batches refuses a file without rows
    seconds = time.perf_counter() - started
    return ScoredFile(done, warned, seconds, writer.shown, scorer.runtime)


def _score(
    scorer: Scorer, table: pa.Table, first_row: int, explain: bool = False
) -> tuple[pa.Table, int]:
    """``table`` with its scores as the last columns (replacing same-named input columns)."""
    columns = {name: table.column(name) for name in table.column_names}
    try:
        scores = scorer.score_columns(columns, table.num_rows, explain=explain)
    except RecordError as exc:  # rows named by their place in the file, not in the batch
        raise RecordError(
            [
                {**p, "record": p["record"] + first_row if isinstance(p["record"], int) else None}
                for p in exc.problems
            ]
        ) from None
    added = {
        PROBABILITY_COLUMN: pa.array(scores.positive_probability, pa.float64()),
        # Each label taken from the two by index, in Arrow: no Python string per row.
        PREDICTION_COLUMN: pc.take(
            pa.array([scores.negative_label, scores.positive_label], pa.string()),
            pa.array(scores.is_positive.view(np.int8)),
        ),
    }
    if scores.explanation is not None:
        explained = scores.explanation
        added[BASE_VALUE_COLUMN] = pa.array(explained.base_value, pa.float64())
        for j, field in enumerate(explained.fields):
            added[f"{CONTRIBUTION_PREFIX}{field}"] = pa.array(
                explained.contributions[:, j], pa.float64()
            )
    for name, values in added.items():
        if name in table.column_names:  # as a DataFrame assignment does: replaced in place
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table, len(scores.warnings)
