"""Inference speed in-process, per runtime: one record, small batches, and 1M rows from Parquet.

Usage::

    flock /tmp/bench.lock .venv/bin/python bench/inference.py [--model DIR] [--data CSV]
        [--calls 10000] [--rows 1000000]

Without ``--model`` it trains one as ``bench/serving.py`` does (LightGBM, 8 trials, on ``--data``,
default the shared Telco file, else synthetic customers). For every runtime the artifact has
(compiled trees, LightGBM's text model through its C API) it measures, in this process:

- one record through ``Scorer.score_records`` (encode, score, labels): the median and 99th
  percentile of ``--calls`` timed calls;
- 100 and 1,000-record requests (µs per record), and the encoding of 1,000 records alone, field
  by field and record by record;
- ``--rows`` synthetic customers written to Parquet, read with pyarrow (timed apart), then
  scored column-wise (``Scorer.score_columns``: encode and score; best of two runs), with the
  encoding and the model's share shown apart.

Prints one Markdown table with the date and the machine, and writes it to its section of
``docs/performance.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import write_section
from serving import REPO, TELCO, best_seconds, machine, per_record_us, sample_records, train_model


def single_record_us(scorer: Any, record: dict[str, Any], calls: int) -> tuple[float, float]:
    """Median and 99th percentile of ``calls`` timed one-record calls, in µs."""
    for _ in range(200):  # warm-up
        scorer.score_records([record])
    times = np.empty(calls)
    clock = time.perf_counter_ns
    for i in range(calls):
        started = clock()
        scorer.score_records([record])
        times[i] = clock() - started
    return statistics.median(times.tolist()) / 1e3, float(np.percentile(times, 99)) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument("--note", default="", help="a line to print under the table")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from churnops.artifact import load_artifact
    from churnops.data.sample import generate_customers
    from churnops.inference import layout as layout_module
    from churnops.inference import load_scorer

    data = args.data or (TELCO if TELCO.is_file() else None)
    with tempfile.TemporaryDirectory(prefix="churnops-bench-inference-") as folder:
        tmp = Path(folder)
        model = args.model or train_model(data, tmp / "model")
        artifact = load_artifact(model)
        path = tmp / "customers.parquet"
        generate_customers(args.rows, seed=7).drop(columns=["Churn"]).to_parquet(path, index=False)
        started = time.perf_counter()
        table = pq.read_table(path)
        read_s = time.perf_counter() - started
        columns = {name: table.column(name) for name in table.column_names}

        one = sample_records(data, 1, seed=1)[0]
        hundred = sample_records(data, 100, seed=2)
        thousand = sample_records(data, 1000, seed=3)
        results: dict[str, dict[str, Any]] = {}
        notes: list[str] = []
        for compiled in (True, False):
            scorer = load_scorer(artifact, allow_fallback=False, compiled=compiled)
            if compiled and not scorer.runtime.startswith("compiled"):
                notes.append(f"no compiled trees: {scorer.fallback_reason}")
                continue
            layout, runtime = scorer.layout, scorer.model  # type: ignore[attr-defined]
            median, p99 = single_record_us(scorer, one, args.calls)
            # Best of 5: on this shared virtual machine a run is now and then twice as slow.
            batch_s = best_seconds(lambda s=scorer: s.score_columns(columns, table.num_rows), 5)
            encoded = layout.encode_columns(columns, table.num_rows)
            encode_s = best_seconds(lambda e=layout.encode_columns: e(columns, table.num_rows), 5)
            model_s = best_seconds(lambda m=runtime, x=encoded.matrix: m.score(x), 5)
            results[scorer.runtime] = {
                "one_median": median,
                "one_p99": p99,
                "hundred": per_record_us(lambda s=scorer: s.score_records(hundred), 100),
                "thousand": per_record_us(lambda s=scorer: s.score_records(thousand), 1000),
                "batch": table.num_rows / batch_s,
                "encode": table.num_rows / encode_s,
                "model": table.num_rows / model_s,
            }
        encode = scorer.layout.encode_records  # type: ignore[attr-defined]
        fieldwise = per_record_us(lambda: encode(thousand), 1000)
        saved = layout_module.FIELDWISE_RECORDS
        layout_module.FIELDWISE_RECORDS = len(thousand) + 1  # record by record
        try:
            one_by_one = per_record_us(lambda: encode(thousand), 1000)
        finally:
            layout_module.FIELDWISE_RECORDS = saved

    names = list(results)
    rows = [
        (f"1 record, median µs (of {args.calls:,} calls)", "one_median", "{:,.1f}"),
        ("1 record, p99 µs", "one_p99", "{:,.1f}"),
        ("100-record request, µs per record", "hundred", "{:,.2f}"),
        ("1,000-record request, µs per record", "thousand", "{:,.2f}"),
        (f"batch from Parquet, {args.rows:,} rows: rows/s (encode + score)", "batch", "{:,.0f}"),
        ("… encoding alone, rows/s", "encode", "{:,.0f}"),
        ("… model alone, rows/s", "model", "{:,.0f}"),
    ]
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `bench/inference.py` on "
        f"{machine()}. Model: {artifact.manifest.estimator} trained on "
        f"{'real' if data is not None else 'synthetic'} data ({model.name}).",
        "",
        "| measure | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, key, form in rows:
        lines.append(
            f"| {label} | " + " | ".join(form.format(results[n][key]) for n in names) + " |"
        )
    lines += [
        "",
        f"Encoding 1,000 records alone: {fieldwise:.2f} µs per record field by field, "
        f"{one_by_one:.2f} record by record. Reading the Parquet file ({args.rows:,} rows, "
        f"pyarrow): {read_s:.2f} s.",
        *notes,
    ]
    if args.note:
        lines += ["", args.note]
    report = "\n".join(["## Inference runtimes (in-process)", "", *lines])
    print(report)
    write_section(args.out, "inference", report)
    print(f"written to {args.out} (section 'inference')")


if __name__ == "__main__":
    main()
