"""Drift checks on real Telco rows: the two scenarios, and the time to check a million rows.

Usage::

    .venv/bin/python bench/drift.py [--rows 1000000] [--repeats 3] [--out docs/drift.md]

A small model (``max_iter=4``, one thread) is trained on the real Telco table and exported, so
the check reads the artifact's own ``reference_profile.json``; the service's scorer gives the
probabilities. Every window holds values as the API logs them: text, blanks as sent.

- **shift**: 1,000 rows drawn from the table, ``Contract`` redrawn as 85 % month-to-month,
  10 % one year, 5 % two year, ``MonthlyCharges`` × 1.2;
- **null**: 20 windows of 1,000 rows drawn from the table (seeds 100–119), nothing changed;
- **time**: ``--rows`` rows drawn with replacement, as text in an object frame, with their
  probabilities; the wall time of :func:`churnops.monitoring.drift.check_drift` (best and
  median of ``--repeats``) and of :func:`churnops.monitoring.report.render_html`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from churnops.artifact import PROFILE_FILE
from churnops.data.dataset import DataSpec, load_dataset
from churnops.inference import Scorer, load_scorer
from churnops.monitoring.drift import DriftReport, check_drift
from churnops.monitoring.report import render_html
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, train_model
from churnops.schema import Schema
from quality import DATA, REPO, cpu_model

TELCO = DATA / "telco-churn-train.csv"
CONTRACTS = ("Month-to-month", "One year", "Two year")
WINDOW = 1_000


def score(scorer: Scorer, schema: Schema, window: pd.DataFrame) -> np.ndarray:
    columns = {name: window[name].to_numpy(dtype=object) for name in schema.feature_names}
    return np.asarray(scorer.score_columns(columns, len(window)).positive_probability)


def draw(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return rows.iloc[rng.choice(len(rows), size, replace=False)].reset_index(drop=True)


def shifted(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    window = draw(rows, size, seed)
    window["Contract"] = rng.choice(CONTRACTS, size, p=[0.85, 0.10, 0.05])
    window["MonthlyCharges"] = [f"{v:.2f}" for v in window["MonthlyCharges"].astype(float) * 1.2]
    return window


def alarms(report: DriftReport) -> str:
    found = list(report.flagged)
    if report.prediction is not None and report.prediction.drifted:
        found.append("predictions")
    found += sorted(
        {
            f"{f.kind} {f.feature}"
            for f in report.findings
            if f.severity == "alarm" and f.kind not in ("drift", "prediction")
        }
    )
    return ", ".join(found) or "nothing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "drift.md")
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = load_dataset(TELCO, DataSpec())
    result = train_model(dataset, AutoMLSettings(time_budget=None, max_iter=4, n_jobs=1))
    workdir = tempfile.TemporaryDirectory(prefix="churnops-drift-")
    artifact = export_model(result, Path(workdir.name) / "telco")
    profile: dict[str, Any] = artifact.read_json(PROFILE_FILE)
    schema = artifact.schema
    scorer = load_scorer(artifact)
    print(f"trained and exported in {time.perf_counter() - started:.1f} s", flush=True)
    rows = pd.read_csv(TELCO, dtype=str, keep_default_na=False)

    window = shifted(rows, WINDOW, seed=7)
    shift = check_drift(profile, window, score(scorer, schema, window), schema)
    shift_row = {
        "flagged": ", ".join(shift.flagged) or "none",
        "prediction": shift.prediction.drifted if shift.prediction else None,
        "psi": {n: shift.feature(n).psi for n in shift.flagged},
        "p": {n: shift.feature(n).p_value for n in shift.flagged},
        "prediction_psi": shift.prediction.psi if shift.prediction else None,
        "prediction_p": shift.prediction.p_value if shift.prediction else None,
        "alarms": alarms(shift),
    }
    null = []
    for seed in range(100, 120):
        window = draw(rows, WINDOW, seed)
        report = check_drift(profile, window, score(scorer, schema, window), schema)
        worst = max(report.features, key=lambda f: f.psi or 0.0)
        null.append(
            {
                "seed": seed,
                "alarms": alarms(report),
                "worst": worst.name,
                "worst_psi": worst.psi or 0.0,
                "min_p": min(f.p_value for f in report.features if f.p_value is not None),
                "prediction_psi": report.prediction.psi if report.prediction else None,
                "prediction_p": report.prediction.p_value if report.prediction else None,
                "alpha": report.alpha_per_test,
            }
        )
    noisy = sum(r["alarms"] != "nothing" for r in null)
    print(
        f"shift window: flagged {shift_row['flagged']}; prediction drift {shift_row['prediction']}"
    )
    print(f"null windows with any alarm: {noisy} of {len(null)}", flush=True)

    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(rows), args.rows)
    big = rows.iloc[picks].reset_index(drop=True).astype(object)
    probabilities = score(scorer, schema, rows)[picks]
    times = []
    report = None
    for _ in range(args.repeats):
        tic = time.perf_counter()
        report = check_drift(profile, big, probabilities, schema)
        times.append(time.perf_counter() - tic)
        print(f"check_drift on {args.rows:,} rows: {times[-1]:.2f} s", flush=True)
    assert report is not None
    tic = time.perf_counter()
    page = render_html(report, profile)
    render_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    render_html(shift, profile)
    render_shift_seconds = time.perf_counter() - tic

    store_times = time_store_path(big, probabilities, artifact, Path(workdir.name))
    workdir.cleanup()

    lines = [
        "# Drift checks",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `bench/drift.py` on "
        f"{os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}. "
        "Model: a small search (`max_iter=4`, one thread) on the real Telco table "
        f"({dataset.rows:,} rows), exported; the check reads the artifact's reference profile. "
        "Window values are text, as the API logs them.",
        "",
        "How a feature is judged (`churnops.monitoring.drift`): drift needs PSI ≥ 0.2 *and* "
        "p < 0.01 / (number of tests) — two-sample KS for numbers (reference rebuilt from "
        "101 stored quantiles and the count), χ² homogeneity for categories (with an unseen "
        "bucket); data quality (missing, unseen, out of range, refused) is reported apart.",
        "",
        "Calling it (the artifact's profile and schema, a frame of logged requests, the "
        "probabilities returned):",
        "",
        "```python",
        "profile = artifact.read_json(PROFILE_FILE)",
        "report = check_drift(profile, window, probabilities, artifact.schema)",
        "report.flagged, report.any_alarm, report.to_json()",
        "page = render_html(report, profile)",
        "```",
        "",
        "## Scenarios (1,000-row windows)",
        "",
        "| window | alarms | detail |",
        "|---|---|---|",
        f"| Contract 85 % month-to-month, MonthlyCharges × 1.2 | {shift_row['alarms']} | "
        + "; ".join(
            f"{n}: PSI {shift_row['psi'][n]:.3f}, p {shift_row['p'][n]:.1e}" for n in shift.flagged
        )
        + f"; predictions: PSI {shift_row['prediction_psi']:.3f}, "
        f"p {shift_row['prediction_p']:.1e} |",
        f"| 20 draws of the training rows | {noisy} of 20 with any alarm | "
        f"largest feature PSI {max(r['worst_psi'] for r in null):.3f}, smallest feature p "
        f"{min(r['min_p'] for r in null):.1e}, largest prediction PSI "
        f"{max(r['prediction_psi'] or 0 for r in null):.3f} |",
        "",
        f"In {sum(r['prediction_p'] < r['alpha'] for r in null)} of the 20 draws the "
        "predictions' KS test alone is significant. The reference scores are the exported "
        "model's (the one the service runs) on the held-out rows.",
        "",
        "| seed | alarms | largest PSI (feature) | smallest p | prediction PSI | prediction p |",
        "|---:|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['seed']} | {r['alarms']} | {r['worst_psi']:.3f} ({r['worst']}) | "
        f"{r['min_p']:.2g} | {r['prediction_psi']:.3f} | {r['prediction_p']:.2g} |"
        for r in null
    ]
    lines += [
        "",
        f"## Time: {args.rows:,} logged rows",
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| `check_drift` ({len(schema.features)} features + probabilities), best of "
        f"{args.repeats} | {min(times):.2f} |",
        f"| `check_drift`, median | {statistics.median(times):.2f} |",
        f"| `render_html` of that report ({len(report.flagged)} drifted) | {render_seconds:.2f} |",
        f"| `render_html` of the shift report ({len(shift.flagged)} drifted + predictions, "
        f"{len(render_html(shift, profile)) // 1024} KiB) | {render_shift_seconds:.2f} |",
        "",
        f"| the whole command path (`churnops monitor drift`: read {args.rows:,} logged rows "
        f"from a SQLite prediction store, parse their JSON, check, render) | "
        f"{store_times['command']:.2f} |",
        f"| of which reading and parsing the window (`read_window`) | {store_times['read']:.2f} |",
        f"| (writing those rows to the store first, as the service's writer does: "
        f"{store_times['insert']:.1f} s) | |",
        "",
        f"Each value is read by the project's encoding rules once per distinct logged value "
        f"(`pandas.factorize`, then `to_numeric` / `to_categories`), then binned with numpy. "
        f"The report page of the million-row check is {len(page) // 1024} KiB.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)


def time_store_path(
    big: pd.DataFrame, probabilities: np.ndarray, artifact: Any, folder: Path
) -> dict[str, float]:
    """Log ``big`` to a SQLite store as the service does, then time the drift command's path."""
    import orjson

    from churnops.monitoring.store import open_store
    from churnops.monitoring.window import read_window
    from churnops.workflows.monitoring import Span, drift

    url = f"sqlite:///{folder / 'monitoring.db'}"
    store = open_store(url)
    now = dt.datetime.now(dt.UTC)
    tic = time.perf_counter()
    records = big.to_dict("records")
    for start in range(0, len(records), 10_000):
        store.insert_predictions([
            (now, artifact.name, artifact.version, f"r{i}", None,
             orjson.dumps(records[i]).decode(), float(probabilities[i]), "No")
            for i in range(start, min(start + 10_000, len(records)))
        ])  # fmt: skip
    inserted = time.perf_counter() - tic
    tic = time.perf_counter()
    read_window(store, artifact.name, artifact.version)
    read = time.perf_counter() - tic
    store.close()
    tic = time.perf_counter()
    report, _, window = drift(Span(url, str(artifact.path)))
    command = time.perf_counter() - tic
    drifted = ", ".join(report.flagged) or "none"
    print(
        f"store path: insert {inserted:.1f} s, read {read:.2f} s, command {command:.2f} s "
        f"({window.rows:,} rows, drifted: {drifted})",
        flush=True,
    )
    return {"insert": inserted, "read": read, "command": command}


if __name__ == "__main__":
    main()
