"""Batch scoring at scale: the local path against Dask with 1 and 2 workers.

Usage::

    flock /tmp/bench.lock .venv/bin/python bench/scale.py [--rows 10000000] [--model DIR]
        [--chunk-rows 100000] [--memory-limit 600MB] [--workdir DIR] [--out docs/scaling.md]

1. Writes ``--rows`` synthetic customers (``churnops.data.sample``, the generator of
   ``churnops data sample``) as a folder of Parquet files, ``--chunk-rows`` rows each (kept in
   ``--workdir`` and reused when it already holds that many rows).
2. Without ``--model``, trains a small LightGBM model on 5,000 synthetic customers.
3. Scores the folder with the local path (what ``churnops predict`` does: read the table into
   memory, score it with the fast scorer, write one Parquet file) in a subprocess, then with
   ``score_on_dask`` (``churnops predict --engine dask``) on a fresh ``LocalCluster`` of 1 and
   of 2 single-threaded worker processes, each limited to ``--memory-limit``.
4. Checks that every run gives the same probabilities (|Δp| ≤ 1e-9, row for row) and prints
   rows/s (reading, scoring and writing; cluster start-up excluded), the peak resident memory
   of the local process and of each worker, and the scaling ratio from 1 to 2 workers.

The table is written into ``--out`` between the ``bench:scale`` markers, with the date, the
machine and its load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from churnops.artifact import ModelArtifact, load_artifact
from churnops.data.sample import generate_customers

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:scale -->", "<!-- /bench:scale -->"

LOCAL_SCORING = """
import json, resource, sys, time
import pandas as pd
from churnops.artifact import load_artifact
from churnops.data.io import write_table
from churnops.inference import load_scorer

model, data, out = sys.argv[1:4]
started = time.perf_counter()
scorer = load_scorer(load_artifact(model), allow_fallback=False)
frame = pd.read_parquet(data)
columns = {name: frame[name] for name in frame.columns}
scores = scorer.score_columns(columns, len(frame))
frame["churn_probability"] = scores.positive_probability
frame["prediction"] = scores.labels
write_table(frame, out)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) * 1024
print(json.dumps({"rows": len(frame), "seconds": seconds, "peak": peak}))
"""


def ensure_data(folder: Path, rows: int, chunk_rows: int) -> tuple[int, float]:
    """The Parquet folder of ``rows`` customers; returns (files, in-memory bytes of the table)."""
    marker = folder / "_ROWS"  # pyarrow and dask skip names starting with "_"
    if not (marker.exists() and marker.read_text().strip() == str(rows)):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.perf_counter()
        for i, start in enumerate(range(0, rows, chunk_rows)):
            frame = generate_customers(min(chunk_rows, rows - start), seed=1000 + i)
            frame.to_parquet(folder / f"customers-{i:05d}.parquet", index=False)
        marker.write_text(str(rows))
        print(f"wrote {rows:,} rows in {time.perf_counter() - started:.0f} s to {folder}")
    files = sorted(folder.glob("*.parquet"))
    first = pd.read_parquet(files[0])
    in_memory = first.memory_usage(deep=True).sum() * rows / len(first)
    return len(files), float(in_memory)


def small_model(folder: Path) -> ModelArtifact:
    import logging

    from churnops.data.dataset import synthetic_dataset
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model

    logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)
    result = train_model(
        synthetic_dataset(5000, seed=7),
        AutoMLSettings(time_budget=None, max_iter=6, estimators=("lgbm",)),
    )
    return export_model(result, folder / "model")


def run_local(model: Path, data: Path, out: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", LOCAL_SCORING, str(model), str(data), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _peak_rss() -> int:
    """This process's peak resident memory (VmHWM).

    Not ``ru_maxrss``: across fork and exec Linux carries the parent's peak into it, so a
    worker started by a large process would report the parent's size.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_dask(
    artifact: ModelArtifact, data: Path, out: Path, workers: int, memory_limit: str
) -> dict[str, object]:
    from churnops.workflows.dask_engine import ClusterSpec, dask_client, score_on_dask

    started = time.perf_counter()
    spec = ClusterSpec(workers=workers, threads_per_worker=1, memory_limit=memory_limit)
    with dask_client(spec) as client:
        client.wait_for_workers(workers)
        startup = time.perf_counter() - started
        done = score_on_dask(artifact, data, out, client)
        peaks = sorted(client.run(_peak_rss).values())
    return {
        "rows": done.rows,
        "seconds": done.seconds,
        "parts": done.parts,
        "startup": startup,
        "peaks": peaks,
    }


def max_difference(expected: Path, got: Path) -> float:
    a = pq.read_table(expected, columns=["customerID", "churn_probability"]).to_pandas()
    b = pq.read_table(got, columns=["customerID", "churn_probability"]).to_pandas()
    if len(a) != len(b) or not a["customerID"].equals(b["customerID"]):
        return float("inf")
    return float(
        np.abs(a["churn_probability"].to_numpy() - b["churn_probability"].to_numpy()).max()
    )


def mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--memory-limit", default="600MB", help="per Dask worker")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "churnops-scale"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "scaling.md")
    args = parser.parse_args()

    data = args.workdir / f"customers-{args.rows}"
    files, in_memory = ensure_data(data, args.rows, args.chunk_rows)
    on_disk = sum(p.stat().st_size for p in data.glob("*.parquet"))
    artifact = load_artifact(args.model) if args.model else small_model(args.workdir)
    scored = args.workdir / "scored"
    shutil.rmtree(scored, ignore_errors=True)
    scored.mkdir(parents=True)
    load_before = os.getloadavg()

    local = run_local(artifact.path, data, scored / "local.parquet")
    print(f"local: {local['rows']:,} rows in {local['seconds']:.1f} s")
    runs = {}
    for workers in (1, 2):
        out = scored / f"dask-{workers}"
        runs[workers] = run_dask(artifact, data, out, workers, args.memory_limit)
        delta = max_difference(scored / "local.parquet", out)
        runs[workers]["delta"] = delta
        print(f"dask {workers}: {runs[workers]['seconds']:.1f} s, max |Δp| {delta:.1e}")
    load_after = os.getloadavg()

    def rate(run: dict[str, object]) -> float:
        return float(run["rows"]) / float(run["seconds"])  # type: ignore[arg-type]

    ratio = rate(runs[2]) / rate(runs[1])
    limit_bytes = _bytes(args.memory_limit)
    rows = [
        "| engine | workers | rows/s | seconds | peak memory per process | max \\|Δp\\| vs local |",
        "|---|---|---|---|---|---|",
        f"| local (`churnops predict`) | 1 process | {rate(local):,.0f} | {local['seconds']:.1f} "
        f"| {mb(local['peak'])} | — |",
    ]
    for workers, run in runs.items():
        peaks = ", ".join(mb(p) for p in run["peaks"])  # type: ignore[attr-defined]
        rows.append(
            f"| dask | {workers} × 1 thread, limit {args.memory_limit} | {rate(run):,.0f} "
            f"| {run['seconds']:.1f} | {peaks} | {run['delta']:.1e} |"
        )
    cpus = os.cpu_count()
    lines = [
        START,
        f"Measured {dt.date.today().isoformat()} with `bench/scale.py --rows {args.rows}` on "
        f"{platform.machine()} Linux, {cpus} cores, Python {platform.python_version()}; "
        f"load average {load_before[0]:.1f} before and {load_after[0]:.1f} after the runs "
        f"(1-minute; above {cpus} means other work shared the cores).",
        "",
        f"Data: {args.rows:,} synthetic customers in {files} Parquet files, {mb(on_disk)} on disk, "
        f"about {mb(in_memory)} as a pandas table (before the feature matrix) — "
        f"{in_memory / limit_bytes:.1f}× one worker's memory limit and "
        f"{in_memory / (2 * limit_bytes):.1f}× both workers' together.",
        "",
        *rows,
        "",
        f"Scaling from 1 to 2 workers: **{ratio:.2f}×**. Dask cluster start-up (not in the "
        f"times): {runs[1]['startup']:.1f} s for 1 worker, {runs[2]['startup']:.1f} s for 2. "
        "Times include reading, scoring and writing.",
        END,
    ]
    table = "\n".join(lines)
    print(table)
    if args.out.exists():
        text = args.out.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        if pattern.search(text):
            args.out.write_text(pattern.sub(lambda _: table, text))
            print(f"updated {args.out}")
            return
    print(f"{args.out} has no {START} … {END} section: table not written")


def _bytes(text: str) -> float:
    from dask.utils import parse_bytes

    return float(parse_bytes(text))


if __name__ == "__main__":
    main()
