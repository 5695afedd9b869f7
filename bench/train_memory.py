"""Training memory: peak resident memory and time of ``churnops train`` by table size.

Usage::

    flock /tmp/bench.lock .venv/bin/python bench/train_memory.py [--rows 5000,50000,500000]
        [--max-iter 10] [--format csv] [--keep DIR]

For each size, ``churnops data sample`` writes synthetic customers (seed 0) and ``churnops train
--max-iter 10 --no-tracking`` fits and exports a model from them, each in a fresh process. The
training process's peak resident memory is its ``ru_maxrss`` (read with ``os.wait4``, so only that
child counts); time is wall-clock from start to exit. To show the model is the same before and
after a change, it prints the selected configuration and a digest of the exported model's
probabilities on the first 2,000 rows of the table (rounded to 1e-12).

Prints one Markdown table (rows, peak RSS, bytes per row, time, selected learner, digest) and
writes it to its section of ``docs/performance.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import write_section

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
CHURNOPS = str(BIN / "churnops")


def run(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return (peak RSS in MiB, seconds). Raises on a non-zero exit."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def fingerprint(model: Path, data: Path) -> str:
    """Digest of the exported pipeline's probabilities on the first 2,000 rows of ``data``."""
    code = f"""
import hashlib, numpy as np
from churnops.artifact import load_artifact
from churnops.data.io import read_table
from churnops.pipeline.train import positive_probability
artifact = load_artifact({str(model)!r})
frame = read_table({str(data)!r}).head(2000)
p = positive_probability(artifact.load_pipeline(), frame, artifact.schema.positive_label)
print(hashlib.sha256(np.round(p, 12).tobytes()).hexdigest()[:16])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="5000,50000,500000")
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--keep", type=Path, help="keep the tables and models here")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument("--note", default="", help="a line to print under the table")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="churnops-train-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "| rows | peak RSS MiB | KiB per row | seconds | selected | probabilities digest |",
        "|---:|---:|---:|---:|---|---|",
    ]
    for rows in (int(r) for r in args.rows.split(",")):
        data = folder / f"customers-{rows}.{args.format}"
        if not data.exists():
            run([CHURNOPS, "data", "sample", "--rows", str(rows), "--out", str(data)])
        model = folder / f"model-{rows}"
        command = [CHURNOPS, "train", "--data", str(data), "--out", str(model)]
        command += ["--max-iter", str(args.max_iter), "--no-tracking"]
        peak, seconds = run(command)
        manifest = json.loads((model / "manifest.json").read_text())
        search = manifest["automl"]
        config = json.dumps(search["best_config"], sort_keys=True)
        selected = f"{search['best_estimator']} {hashlib.sha256(config.encode()).hexdigest()[:8]}"
        digest = fingerprint(model, data)
        line = (
            f"| {rows:,} | {peak:,.0f} | {peak * 1024 / rows:,.1f} | {seconds:,.1f} | "
            f"{selected} | {digest} |"
        )
        print(line, flush=True)
        lines.append(line)
    report = "\n".join(
        [
            "## Training memory",
            "",
            f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `bench/train_memory.py` "
            f"(`churnops train --max-iter {args.max_iter} --no-tracking`, {args.format} input, "
            f"synthetic customers) on {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, Linux {platform.release()}.",
            "",
            *lines,
            *(["", args.note] if args.note else []),
        ]
    )
    print()
    print(report)
    write_section(args.out, "train-memory", report)
    print(f"written to {args.out} (section 'train-memory')")


if __name__ == "__main__":
    main()
