"""Repeatability and time budget of ``churnops train``: the same command, run several times.

Usage::

    .venv/bin/python bench/repeat.py [--tables telco,iranian,ecommerce] [--runs 3]
        [--time-budget 60] [--out docs/repeatability.md]

For each table (the three of ``bench/quality.py``), the exact command a user types,
``churnops train --data FILE --target … --positive-label … --id-columns … --time-budget 60
--seed 42 --no-tracking --out DIR``, runs ``--runs`` times in a fresh process, one after the
other. Each run's wall time is measured around the whole process (start-up, reading the table,
search, held-out evaluation, refit on every row, export and verification); its held-out ROC AUC
and log loss, trials and winner come from the artifact's manifest. The spread of a table is
max − min of the runs' held-out ROC AUC (same seed, so the same held-out rows each time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from churnops.artifact import load_artifact
from quality import REPO, TABLES, cpu_model, versions

CHURNOPS = Path(sys.executable).with_name("churnops")
SEED = 42


def run_once(table_name: str, budget: float, out: Path) -> dict[str, Any]:
    table = TABLES[table_name]
    command = [
        str(CHURNOPS), "train", "--data", str(table.path),
        *shlex.split(table.options()),
        "--time-budget", f"{budget:g}", "--seed", str(SEED), "--no-tracking", "--out", str(out),
    ]  # fmt: skip
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{table_name}: churnops train failed:\n{finished.stderr[-2000:]}")
    manifest = load_artifact(out).manifest
    test = manifest.test_metrics
    return {
        "wall": wall,
        "train_model": manifest.fitting.seconds or float("nan"),
        "roc_auc": float(test["roc_auc"]),
        "log_loss": float(test["log_loss"]),
        "trials": manifest.automl.trials,
        "winner": manifest.automl.best_estimator,
        "command": shlex.join(["churnops", *command[1:-2], "--out", "DIR"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"of {', '.join(TABLES)}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time-budget", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "repeatability.md")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="churnops-repeat-") as tmp:
        for name in args.tables.split(","):
            for run in range(1, args.runs + 1):
                found = run_once(name, args.time_budget, Path(tmp) / f"{name}-{run}")
                results.setdefault(name, []).append(found)
                print(
                    f"{name} run {run}: wall {found['wall']:.1f} s, AUC {found['roc_auc']:.4f}, "
                    f"LL {found['log_loss']:.4f}, {found['trials']} trials, {found['winner']}",
                    flush=True,
                )
    text = render(results, args, time.perf_counter() - started)
    args.out.write_text(text)
    print(text)


def render(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace, wall: float) -> str:
    budget = args.time_budget
    lines = [
        "# Repeatability and time budget of `churnops train`",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `bench/repeat.py` "
        f"({wall / 60:.0f} min wall time) on {cpu_model()}, {versions()}.",
        "",
        f"Each table: the same `churnops train` command {args.runs} times, one after the other, "
        f"time budget {budget:g} s, seed {SEED}. Wall time is the whole process (start-up, "
        "reading, search, held-out evaluation, refit on every row, export, verification). "
        "Spread: max − min of the held-out ROC AUC over the runs.",
        "",
        "| table | runs | held-out ROC AUC (each run) | spread | log loss (each run) "
        "| trials | winner | wall s (max) | over budget |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        aucs = [r["roc_auc"] for r in runs]
        worst = max(r["wall"] for r in runs)
        losses = " / ".join(f"{r['log_loss']:.4f}" for r in runs)
        lines.append(
            f"| {name} | {len(runs)} | {' / '.join(f'{a:.4f}' for a in aucs)} "
            f"| {max(aucs) - min(aucs):.4f} "
            f"| {losses} "
            f"| {' / '.join(str(r['trials']) for r in runs)} "
            f"| {', '.join(sorted({str(r['winner']) for r in runs}))} "
            f"| {worst:.1f} | {100 * (worst / budget - 1):+.1f} % |"
        )
    lines += ["", "Commands:", ""]
    lines += [f"- `{runs[0]['command']}`" for runs in results.values()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
