"""Model quality: what ``churnops train`` fits against three reference models, on the same folds.

Usage::

    .venv/bin/python bench/quality.py [--tables telco,iranian,ecommerce] [--folds 5]
        [--time-budget 60] [--variant KEY=VALUE[;KEY=VALUE]]... [--no-flaml] [--seed 0]
        [--out docs/quality.md]

For each table, ``StratifiedKFold(n_splits=5, shuffle=True)`` cuts the whole file into 5 outer
80/20 splits (``--folds k`` runs the first k of them); every model sees the same splits. On each
split's 80 % (a full-size training table, as a user would have):

- **churnops**: :func:`churnops.pipeline.train.train_model` — the function ``churnops train``
  calls — with the default :class:`AutoMLSettings` at ``--time-budget`` (its own held-out
  evaluation inside the 80 %, then the refit on all of it); the pipeline it returns is scored;
- **churnops variants** (optional, for choosing the defaults): the same with other settings,
  ``--variant 'eval_method=auto;refit=false'`` (keys: any :class:`AutoMLSettings` field;
  ``estimators`` as ``lgbm+rf``);
- **logistic regression**: one-hot (unknown categories ignored), numbers read by churnops'
  ``NumericCoercer``, median-imputed, standard-scaled; ``LogisticRegression(max_iter=1000)``;
- **LightGBM defaults**: the same preparation, ``LGBMClassifier(verbose=-1)``;
- **FLAML defaults**: ``flaml.AutoML().fit(X, y, task="classification", time_budget=…)`` with
  nothing else set, on the table with numbers parsed and text columns as pandas categories.

Each is scored on the split's 20 %: ROC AUC, log loss, F1 at 0.5, fit time (wall seconds of the
whole fit). Mean ± sd over the splits go to the console and to ``--out`` (Markdown).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from churnops.data.cleaning import to_numeric
from churnops.data.dataset import Dataset, DataSpec, load_dataset
from churnops.errors import ChurnopsError
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.evaluate import ThresholdPolicy
from churnops.pipeline.train import train_model
from churnops.pipeline.transformers import NumericCoercer, as_text
from churnops.provenance import git_state
from churnops.schema import Schema

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Table:
    """A benchmark table: where it is and how ``churnops train`` is told about it."""

    name: str
    path: Path
    spec: DataSpec

    def options(self) -> str:
        s = self.spec
        return (
            f"--target {s.target} --positive-label {s.positive_label} "
            f"--id-columns '{','.join(s.id_columns)}'"
        )


TABLES = {
    "telco": Table("telco", DATA / "telco-churn-train.csv", DataSpec()),
    "iranian": Table(
        "iranian",
        DATA / "dev" / "iranian_telecom_churn.csv",
        DataSpec(target="Churn", positive_label="1", id_columns=()),
    ),
    "ecommerce": Table(
        "ecommerce",
        DATA / "dev" / "ecommerce_churn.csv",
        DataSpec(target="Churn", positive_label="1", id_columns=("CustomerID",)),
    ),
}
CHURNOPS = "churnops default"
LOGISTIC = "logistic regression"
LIGHTGBM = "LightGBM defaults"
FLAML_DEFAULT = "FLAML defaults"
# metric → (column title, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "roc_auc": ("ROC AUC", True),
    "log_loss": ("log loss", False),
    "f1": ("F1 at 0.5", True),
}
LIBRARIES = ("churnops", "scikit-learn", "lightgbm", "flaml", "xgboost", "numpy", "pandas")
# FLAML's cross-validation calls sklearn's delayed() without sklearn's Parallel: one warning
# per trial, about configuration propagation the benchmark does not use.
warnings.filterwarnings("ignore", message=r"`sklearn\.utils\.parallel\.delayed`")


@dataclass(frozen=True)
class Variant:
    """A churnops training configuration."""

    label: str
    settings: AutoMLSettings

    def describe(self) -> str:
        s = self.settings
        low, high = s.n_estimators
        return (
            f"metric={s.metric}, estimators={'+'.join(s.estimators)}, "
            f"n_estimators={low}–{high}, eval_method={s.eval_method}, n_splits={s.n_splits}, "
            f"refit={s.refit}, seed={s.seed}, n_jobs={s.n_jobs}; search budget "
            f"{s.search_budget:g} s of {s.time_budget:g} s"
        )


def parse_variant(spec: str, base: AutoMLSettings) -> Variant:
    """Read ``eval_method=auto;refit=false`` into a :class:`Variant`."""
    fields = {f.name: f for f in dataclasses.fields(AutoMLSettings)}
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        key, sep, value = (x.strip() for x in item.partition("="))
        if not sep or not value or key not in fields:
            raise SystemExit(f"variant {spec!r}: expected KEY=VALUE with KEY in {list(fields)}")
        current = getattr(base, key)
        if key in ("estimators",):
            changes[key] = tuple(e for e in value.split("+") if e)
        elif key == "n_estimators":
            low, high = value.split("-")
            changes[key] = (int(low), int(high))
        elif isinstance(current, bool):
            changes[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(current, int):
            changes[key] = int(value)
        elif isinstance(current, float):
            changes[key] = float(value)
        else:
            changes[key] = value
    try:
        settings = replace(base, **changes)
    except ChurnopsError as exc:
        raise SystemExit(f"variant {spec!r}: {exc}") from exc
    return Variant(f"churnops ({spec})", settings)


def reference_pipeline(schema: Schema, model: Any) -> Pipeline:
    """The references' preparation (one-hot, numbers imputed and scaled), then ``model``."""
    prepare = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(NumericCoercer(), SimpleImputer(strategy="median"), StandardScaler()),
                [f.name for f in schema.numeric],
            ),
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(as_text, feature_names_out="one-to-one"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                [f.name for f in schema.categorical],
            ),
        ],
        remainder="drop",  # ID columns
        sparse_threshold=0.0,
    )
    return Pipeline([("prepare", prepare), ("model", model)])


def typed_frame(X: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The table as a pandas user hands it to FLAML: numbers parsed, text as categories."""
    out = pd.DataFrame(index=X.index)
    for f in schema.numeric:
        out[f.name] = to_numeric(X[f.name].to_numpy(dtype=object))
    for f in schema.categorical:
        out[f.name] = X[f.name].astype("string").astype("category")
    return out


def score(p: np.ndarray, test: Dataset, positive: str, seconds: float) -> dict[str, Any]:
    """Held-out figures of probabilities ``p`` of the positive label."""
    truth = (test.y == positive).to_numpy()
    return {
        "roc_auc": float(roc_auc_score(truth, p)),
        "log_loss": float(log_loss(truth, p, labels=[False, True])),
        "f1": float(f1_score(truth, p >= 0.5)),
        "fit_seconds": seconds,
    }


def positive_column(model: Any, X: Any, positive: str) -> np.ndarray:
    classes = [str(c) for c in model.classes_]
    return np.asarray(model.predict_proba(X)[:, classes.index(positive)], dtype=np.float64)


def fit_churnops(variant: Variant, train: Dataset, test: Dataset) -> dict[str, Any]:
    """Train as ``churnops train`` does (:func:`train_model`) and score the returned pipeline."""
    started = time.perf_counter()
    result = train_model(train, variant.settings, ThresholdPolicy(), test_size=0.2)
    seconds = time.perf_counter() - started
    positive = result.schema.positive_label
    out = score(positive_column(result.pipeline, test.X, positive), test, positive, seconds)
    fitting = result.search.fitting
    out["search"] = (
        f"{result.search.summary['best_estimator']}, {result.search.summary['trials']} trials, "
        f"{fitting.get('selection', {}).get('flaml_eval_method')}, "
        f"inner held-out AUC {result.metrics['roc_auc']:.4f}, "
        f"final fit on {fitting.get('final', {}).get('rows')} rows"
    )
    return out


def fit_reference(name: str, train: Dataset, test: Dataset, budget: float) -> dict[str, Any]:
    schema = train.schema()
    positive = schema.positive_label
    if name == FLAML_DEFAULT:
        from flaml import AutoML

        automl = AutoML()
        started = time.perf_counter()
        automl.fit(
            typed_frame(train.X, schema),
            train.y,
            task="classification",
            time_budget=budget,
            verbose=0,
        )
        seconds = time.perf_counter() - started
        result = score(
            positive_column(automl, typed_frame(test.X, schema), positive), test, positive, seconds
        )
        result["search"] = f"{automl.best_estimator}, eval {automl._state.eval_method}"
        return result
    model = LogisticRegression(max_iter=1000) if name == LOGISTIC else LGBMClassifier(verbose=-1)
    pipeline = reference_pipeline(schema, model)
    started = time.perf_counter()
    pipeline.fit(train.X, train.y)
    seconds = time.perf_counter() - started
    return score(positive_column(pipeline, test.X, positive), test, positive, seconds)


def mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def at_least(metric: str, ours: float, theirs: float) -> bool:
    """Whether ``ours`` at least matches ``theirs`` (≥, or ≤ for a loss)."""
    return ours >= theirs if METRICS[metric][1] else ours <= theirs


def fmt(metric: str, values: list[float]) -> str:
    mean, std = mean_std(values)
    if metric == "fit_seconds":
        return f"{mean:.1f} ± {std:.1f}"
    return f"{mean:.4f} ± {std:.4f}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> str:
    found = [f"Python {platform.python_version()}"]
    for name in LIBRARIES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def run_table(
    table: Table, variants: list[Variant], args: argparse.Namespace
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    dataset = load_dataset(table.path, table.spec)
    positive = table.spec.positive_label
    y = dataset.y.to_numpy()
    outer = StratifiedKFold(n_splits=5, shuffle=True, random_state=args.seed)
    splits = list(outer.split(dataset.X, y))[: args.folds]
    references = [LOGISTIC, LIGHTGBM] + ([] if args.no_flaml else [FLAML_DEFAULT])
    names = [v.label for v in variants] + references
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    started = time.perf_counter()
    for k, (train_index, test_index) in enumerate(splits, start=1):
        train = dataset.subset(dataset.X.index[train_index])
        test = dataset.subset(dataset.X.index[test_index])
        for variant in variants:
            results[variant.label].append(fit_churnops(variant, train, test))
        for name in references:
            results[name].append(fit_reference(name, train, test, args.time_budget))
        print(
            f"{table.name} fold {k}/{len(splits)} ({(time.perf_counter() - started) / 60:.1f} "
            "min): "
            + "; ".join(
                f"{name}: AUC {r[-1]['roc_auc']:.4f} LL {r[-1]['log_loss']:.4f} "
                f"{r[-1]['fit_seconds']:.0f}s"
                for name, r in results.items()
            ),
            flush=True,
        )
    context = {
        "rows": dataset.rows,
        "train_rows": len(splits[0][0]),
        "positive_rate": float((dataset.y == positive).mean()),
        "sha256": dataset.sha256,
        "features": len(dataset.feature_names),
    }
    return results, context


def verdict(results: dict[str, list[dict[str, Any]]], main: str) -> tuple[bool, list[str]]:
    """Whether ``main`` matches or beats every reference on mean ROC AUC and log loss."""
    lines, ok_all = [], True
    for metric in ("roc_auc", "log_loss"):
        ours = mean_std([r[metric] for r in results[main]])[0]
        parts = []
        for ref in results:
            if ref.startswith("churnops"):
                continue
            theirs = mean_std([r[metric] for r in results[ref]])[0]
            ok = at_least(metric, ours, theirs)
            ok_all &= ok
            parts.append(f"{ref} {theirs:.4f} ({'ok' if ok else 'NOT matched'})")
        lines.append(f"{METRICS[metric][0]}: {main} {ours:.4f} vs " + ", ".join(parts))
    return ok_all, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"of {', '.join(TABLES)}")
    parser.add_argument("--folds", type=int, default=5, help="outer 80/20 splits (1–5)")
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds per AutoML fit")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="one more churnops model, e.g. 'eval_method=auto;refit=false' (repeatable)",
    )
    parser.add_argument("--no-default", action="store_true", help="only the variants")
    parser.add_argument("--no-flaml", action="store_true", help="skip the FLAML reference")
    parser.add_argument("--seed", type=int, default=0, help="seed of the outer splits")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "quality.md")
    args = parser.parse_args()
    chosen = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in TABLES]
    if unknown or not chosen:
        raise SystemExit(f"unknown tables {unknown}; choose from {', '.join(TABLES)}")
    if not 1 <= args.folds <= 5:
        raise SystemExit("--folds must be between 1 and 5")
    missing = [str(TABLES[t].path) for t in chosen if not TABLES[t].path.is_file()]
    if missing:
        raise SystemExit(f"data files not found: {', '.join(missing)}")
    logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)

    base = AutoMLSettings(time_budget=args.time_budget)
    variants = [] if args.no_default else [Variant(CHURNOPS, base)]
    variants += [parse_variant(spec, base) for spec in args.variant]
    if not variants:
        raise SystemExit("nothing to compare: drop --no-default or add a --variant")

    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    per_table = {}
    for name in chosen:
        per_table[name] = run_table(TABLES[name], variants, args)
    wall = time.perf_counter() - started
    load_end = os.getloadavg()[0]
    report = render(per_table, variants, args, wall, (load_start, load_end))
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(f"wall time {wall / 60:.1f} min; written to {args.out}")


def render(
    per_table: dict[str, tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]],
    variants: list[Variant],
    args: argparse.Namespace,
    wall: float,
    load: tuple[float, float],
) -> str:
    git = git_state(REPO)
    commit = git["commit"] or "unknown"
    tree = " (working tree with uncommitted changes)" if git["dirty"] else ""
    command = "bench/quality.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    main = variants[0].label
    lines = [
        "# Model quality",
        "",
        "What `churnops train` fits, against logistic regression, LightGBM defaults and FLAML "
        "defaults, on customers none of them saw. Written by `bench/quality.py` (rerun: "
        "`make bench-quality`); every figure below is measured by that run.",
        "",
        "## Setup",
        "",
        f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; wall time "
        f"{wall / 60:.1f} min; command: `.venv/bin/python {command}`",
        f"- Machine: {os.cpu_count()} cores, {cpu_model()}; 1-min load average {load[0]:.1f} "
        f"at start, {load[1]:.1f} at end (shared machine: a time-budgeted search runs fewer "
        "trials when it is busy)",
        f"- Software: {versions()}; churnops commit `{commit[:12]}`{tree}",
        f"- Splits: for each table `StratifiedKFold(n_splits=5, shuffle=True, "
        f"random_state={args.seed})` over the whole file, first {args.folds} used: each model "
        "is fitted on the 80 % and scored on the 20 %; F1 at threshold 0.5; fit time is the "
        "wall time of the whole fit",
    ]
    for variant in variants:
        lines.append(
            f"- {variant.label}: `churnops.pipeline.train.train_model(train, "
            f"AutoMLSettings(time_budget={args.time_budget:g}"
            + ("" if variant.label == CHURNOPS else ", …")
            + "))`, the function `churnops train` calls (it holds out 20 % of the training "
            f"rows for its own evaluation, then refits on all of them): {variant.describe()}"
        )
    lines += [
        f"- {LOGISTIC}: one-hot (unknown categories ignored), numbers read by `NumericCoercer`, "
        "median-imputed and standard-scaled; `LogisticRegression(max_iter=1000)`",
        f"- {LIGHTGBM}: the same preparation; `LGBMClassifier(verbose=-1)`",
        f"- {FLAML_DEFAULT}: `flaml.AutoML().fit(X, y, task='classification', "
        f"time_budget={args.time_budget:g}, verbose=0)`, all else FLAML's defaults (its metric, "
        "estimators and evaluation method), on the table with numbers parsed and text as "
        "categories",
        "",
    ]
    summary = ["## Verdict", ""]
    body: list[str] = []
    for name, (results, context) in per_table.items():
        table = TABLES[name]
        shown = os.path.relpath(table.path, REPO)
        folds = len(results[next(iter(results))])
        body += [
            f"## {name}",
            "",
            f"`{shown}` (sha256 `{context['sha256'][:16]}…`), {context['rows']} rows, "
            f"{context['features']} features, {context['positive_rate']:.1%} positive; "
            f"`churnops train --data {shown} {table.options()}`; {context['train_rows']} "
            f"training rows per split, {folds} splits.",
            "",
            "| model | " + " | ".join(t for t, _ in METRICS.values()) + " | fit time (s) |",
            "|---" * (len(METRICS) + 2) + "|",
        ]
        for model, rows in results.items():
            cells = [fmt(m, [r[m] for r in rows]) for m in [*METRICS, "fit_seconds"]]
            body.append(f"| {model} | " + " | ".join(cells) + " |")
        ok, vlines = verdict(results, main)
        summary.append(
            f"- **{name}**: {main} {'matches or beats' if ok else 'does NOT match'} every "
            "reference on mean ROC AUC and log loss. " + "; ".join(vlines)
        )
        body += [
            "",
            "Per split:",
            "",
            "| split | model | ROC AUC | log loss | F1 | fit (s) | search |",
        ]
        body += ["|---|---|---|---|---|---|---|"]
        for model, rows in results.items():
            for k, r in enumerate(rows, start=1):
                body.append(
                    f"| {k} | {model} | {r['roc_auc']:.4f} | {r['log_loss']:.4f} | "
                    f"{r['f1']:.4f} | {r['fit_seconds']:.1f} | {r.get('search', '')} |"
                )
        body.append("")
    return "\n".join(lines + summary + [""] + body)


if __name__ == "__main__":
    main()
