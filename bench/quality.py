"""Model quality: churnops' default training against two reference models, same folds.

Usage::

    .venv/bin/python bench/quality.py [--data PATH] [--time-budget 60] [--repeats 5] [--folds 2]
                                      [--metrics log_loss,roc_auc] [--out docs/quality.md]

Repeated stratified cross-validation (``repeats`` × ``folds``). On each fold's training rows:

- churnops: exactly what ``churnops train`` fits by default (schema learned from the fold's rows,
  ``build_pipeline`` + ``automl_fit_params(AutoMLSettings(...))``), once per FLAML metric given;
- logistic regression: one-hot + standard scaling (+ median imputation), ``max_iter=1000``;
- LightGBM with default parameters on the same one-hot features.

Each is scored on the fold's held-out rows (ROC AUC, log loss, F1 and accuracy at 0.5, fit
time). The table (mean ± std) and every fold's figures go to the console and ``docs/quality.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churnops.data.dataset import DataSpec, load_dataset
from churnops.data.io import file_sha256
from churnops.pipeline.build import AutoMLSettings, automl_fit_params, build_pipeline
from churnops.pipeline.transformers import NumericCoercer, as_text
from churnops.schema import Schema

REPO = Path(__file__).resolve().parents[1]
TELCO = REPO.parent / "shared" / "data" / "telco-churn-train.csv"
METRICS = ("roc_auc", "log_loss", "f1", "accuracy", "fit_seconds")


def reference(schema: Schema, model: Any, scale: bool) -> Pipeline:
    """One-hot + (scaled) numbers, then ``model``: the references' shared preparation."""
    from sklearn.preprocessing import FunctionTransformer

    numeric_steps: list[Any] = [NumericCoercer(), SimpleImputer(strategy="median")]
    if scale:
        numeric_steps.append(StandardScaler())
    prepare = ColumnTransformer(
        [
            ("numeric", make_pipeline(*numeric_steps), [f.name for f in schema.numeric]),
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(as_text),
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                [f.name for f in schema.categorical],
            ),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("prepare", prepare), ("model", model)])


def fit_and_score(
    fit: Callable[[], Any], X_test: pd.DataFrame, y_test: np.ndarray, positive: str
) -> dict[str, float]:
    started = time.perf_counter()
    model = fit()
    seconds = time.perf_counter() - started
    classes = [str(c) for c in model.classes_]
    p = model.predict_proba(X_test)[:, classes.index(positive)]
    truth = y_test == positive
    return {
        "roc_auc": roc_auc_score(truth, p),
        "log_loss": log_loss(truth, p, labels=[False, True]),
        "f1": f1_score(truth, p >= 0.5),
        "accuracy": accuracy_score(truth, p >= 0.5),
        "fit_seconds": seconds,
    }


def _fit_churnops(schema: Schema, X: Any, y: Any, settings: AutoMLSettings) -> Any:
    return build_pipeline(schema).fit(X, y, **automl_fit_params(settings))


def _fit(model: Pipeline, train: Any) -> Any:
    return model.fit(train.X, train.y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=TELCO)
    parser.add_argument("--time-budget", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--metrics",
        default=AutoMLSettings().metric,
        help="comma-separated FLAML metrics to train churnops with (default: the default)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "quality.md")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"data file not found: {args.data}")

    dataset = load_dataset(args.data, DataSpec())
    positive = dataset.spec.positive_label
    y = dataset.y.to_numpy()
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    default_metric = AutoMLSettings().metric
    names = [f"churnops ({m}{', default' if m == default_metric else ''})" for m in metrics] + [
        "logistic regression",
        "LightGBM defaults",
    ]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    folds = RepeatedStratifiedKFold(
        n_splits=args.folds, n_repeats=args.repeats, random_state=args.seed
    )
    started = time.perf_counter()
    for k, (train_index, test_index) in enumerate(folds.split(dataset.X, y)):
        train = dataset.subset(dataset.X.index[train_index])
        X_test, y_test = dataset.X.iloc[test_index], y[test_index]
        schema = train.schema()
        for name, metric in zip(names, metrics, strict=False):
            settings = AutoMLSettings(
                time_budget=args.time_budget, metric=metric, seed=args.seed + k
            )

            results[name].append(
                fit_and_score(
                    partial(_fit_churnops, schema, train.X, train.y, settings),
                    X_test,
                    y_test,
                    positive,
                )
            )
        results["logistic regression"].append(
            fit_and_score(
                partial(_fit, reference(schema, LogisticRegression(max_iter=1000), True), train),
                X_test,
                y_test,
                positive,
            )
        )
        results["LightGBM defaults"].append(
            fit_and_score(
                partial(_fit, reference(schema, LGBMClassifier(verbose=-1), False), train),
                X_test,
                y_test,
                positive,
            )
        )
        print(
            f"fold {k + 1}/{args.folds * args.repeats}: "
            + "; ".join(
                f"{n} AUC {r[-1]['roc_auc']:.4f} LL {r[-1]['log_loss']:.4f}"
                for n, r in results.items()
            ),
            flush=True,
        )
    wall = time.perf_counter() - started
    report = render(results, names, args, dataset.rows, wall)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"written to {args.out}")


def summary(rows: list[dict[str, float]], metric: str) -> tuple[float, float]:
    values = np.array([r[metric] for r in rows])
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def render(
    results: dict[str, list[dict[str, float]]],
    names: list[str],
    args: argparse.Namespace,
    rows: int,
    wall: float,
) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        "# Model quality",
        "",
        f"Measured {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `bench/quality.py` "
        f"({wall / 60:.0f} min wall time) on {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}, scikit-learn {version('scikit-learn')}, LightGBM "
        f"{version('lightgbm')}, FLAML {version('flaml')}.",
        "",
        f"Data: `{args.data.name}` ({rows} rows, sha256 `{file_sha256(args.data)[:16]}…`). "
        f"Repeated stratified {args.folds}-fold cross-validation, {args.repeats} repeats "
        f"({args.folds * args.repeats} folds, the same for every model); every figure is measured "
        f"on the fold's held-out rows. churnops: default settings with a {args.time_budget:.0f} s "
        "search budget per fold. F1 and accuracy at threshold 0.5.",
        "",
        "| model | ROC AUC | log loss | F1 | accuracy | fit time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        cells = []
        for metric in METRICS:
            mean, std = summary(results[name], metric)
            cells.append(
                f"{mean:.1f} ± {std:.1f}" if metric == "fit_seconds" else f"{mean:.4f} ± {std:.4f}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Verdict", ""]
    for name in names[:-2]:
        auc, ll = summary(results[name], "roc_auc")[0], summary(results[name], "log_loss")[0]
        for ref in names[-2:]:
            ref_auc, ref_ll = (
                summary(results[ref], "roc_auc")[0],
                summary(results[ref], "log_loss")[0],
            )
            lines.append(
                f"- {name} vs {ref}: ROC AUC {auc:.4f} vs {ref_auc:.4f} "
                f"({'matches or beats' if auc >= ref_auc else 'BELOW'}); log loss {ll:.4f} vs "
                f"{ref_ll:.4f} ({'matches or beats' if ll <= ref_ll else 'WORSE'})"
            )
    lines += [
        "",
        "## Per fold",
        "",
        "| fold | model | ROC AUC | log loss | F1 | accuracy | fit s |",
    ]
    lines.append("|---|---|---|---|---|---|---|")
    for name in names:
        for k, r in enumerate(results[name]):
            lines.append(
                f"| {k + 1} | {name} | {r['roc_auc']:.4f} | {r['log_loss']:.4f} | {r['f1']:.4f} "
                f"| {r['accuracy']:.4f} | {r['fit_seconds']:.1f} |"
            )
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


if __name__ == "__main__":
    main()
