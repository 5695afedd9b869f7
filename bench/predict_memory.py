"""Batch scoring of large files: rows per second and peak memory of ``churnops predict``.

Usage::

    flock /tmp/bench.lock .venv/bin/python bench/predict_memory.py [--rows 1000000] [--src src]

Writes ``--rows`` synthetic customers (seeded; Telco's columns) as CSV and as Parquet into a
temporary directory, trains a small model on 5,000 of them, then runs ``churnops predict`` in a
fresh process for each input (CSV → CSV, Parquet → Parquet), one after the other, and reads the
process's peak resident memory (``ru_maxrss`` from ``wait4``) and its wall time, start-up
included. ``--compare SRC`` runs the command from another source tree too (e.g. an older
checkout, ``git archive COMMIT src | tar -x -C DIR``), on the same files. Prints one table and
writes it, with the date and machine, to ``docs/batch-scoring.md`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREPARE = """
import sys
from pathlib import Path
from churnops.data.sample import generate_customers
rows, work = int(sys.argv[1]), Path(sys.argv[2])
frame = generate_customers(rows, seed=11)
frame.to_csv(work / "customers.csv", index=False)
frame.to_parquet(work / "customers.parquet", index=False)
frame.head(5000).to_csv(work / "train.csv", index=False)
"""


def run(src: Path, *args: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and stderr+stdout tail of ``churnops ARGS`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", "from churnops.cli import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"churnops {' '.join(args)} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--compare", type=Path, action="append", default=[], help="another source tree to run"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write the docs page")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        work = Path(tmp)
        csv, parquet = work / "customers.csv", work / "customers.parquet"
        # Written by a process of its own: a child's peak memory (ru_maxrss) starts from what
        # its parent holds when it forks, so this process must stay small.
        subprocess.run(
            [sys.executable, "-c", PREPARE, str(options.rows), str(work)],
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            check=True,
        )
        model = work / "model"
        run(REPO / "src", "train", "--data", str(work / "train.csv"), "--max-iter", "4",
            "--out", str(model), "--no-tracking")  # fmt: skip
        rows = []
        for src in (*options.compare, REPO / "src"):
            label = "this tree" if src == REPO / "src" else str(src)
            for source, suffix in ((csv, ".csv"), (parquet, ".parquet")):
                out = work / f"scored{suffix}"
                seconds, rss, last = run(
                    src, "predict", "--model", str(model), "--data", str(source),
                    "--out", str(out),
                )  # fmt: skip
                size = source.stat().st_size / 2**20
                rate = options.rows / seconds
                rows.append((label, suffix[1:], size, seconds, rate, rss, last))
                out.unlink()
    lines = [
        f"`churnops predict`, {options.rows:,} synthetic customers",
        "",
        "| source | input → output | file MiB | wall s (start-up included) | rows/s "
        "| peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {kind} → {kind} | {size:.0f} | {seconds:.1f} | {rate:,.0f} | {rss:,.0f} |"
            for label, kind, size, seconds, rate, rss, _ in rows
        ),
    ]
    print("\n".join(lines))
    for label, kind, *_, last in rows:
        print(f"{label}, {kind}: {last}")
    if not options.no_write:
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        python = platform.python_version()
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {python}"
        page = REPO / "docs" / "batch-scoring.md"
        header = (
            "# Batch scoring: speed and memory\n\n"
            "Measured by `bench/predict_memory.py` (peak resident memory of the whole "
            "`churnops predict` process, wall time including start-up).\n"
        )
        text = page.read_text() if page.exists() else header
        page.write_text(text + f"\n## {when} ({machine})\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
