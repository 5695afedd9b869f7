"""Model quality: churnops' default training against two reference models, on the same folds.

Usage::

    .venv/bin/python bench/quality.py [--data PATH] [--time-budget 60] [--repeats 5] [--folds 2]
        [--metric M] [--compare-metrics log_loss,roc_auc] [--variant KEY=VALUE[;KEY=VALUE]]...
        [--seed 0] [--out docs/quality.md]

Repeated stratified cross-validation (``--repeats`` × ``--folds``, scikit-learn's
``RepeatedStratifiedKFold``); every model sees the same folds. On each fold's training rows:

- **churnops**: exactly what ``churnops train`` fits by default: the schema learned from the
  fold's rows (:meth:`Dataset.schema`), ``build_pipeline(schema)`` fitted with
  ``automl_fit_params(AutoMLSettings(time_budget=...))``. ``--metric`` changes only its metric;
- **churnops variants** (optional, for choosing the defaults): the same with other settings, one
  per metric of ``--compare-metrics`` and one per ``--variant`` (keys ``metric``, ``estimators``
  as ``lgbm+rf``, ``ensemble`` as ``true``/``false``: FLAML's stacking ensemble, which the
  serving path does not support);
- **logistic regression**: one-hot (unknown categories ignored) + numbers read by churnops'
  ``NumericCoercer``, missing values imputed with the median, standard scaling;
  ``LogisticRegression(max_iter=1000)``;
- **LightGBM defaults**: the same preparation, ``LGBMClassifier(verbose=-1)``.

Each is scored on the fold's held-out rows: ROC AUC, log loss, F1 and accuracy at 0.5, fit time.
The table (mean ± std over folds), the verdict, paired differences and every fold's figures go
to the console and to ``--out`` (Markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from lightgbm import LGBMClassifier
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from churnops.data.dataset import Dataset, DataSpec, load_dataset
from churnops.errors import ChurnopsError
from churnops.pipeline.build import AutoMLSettings, automl_fit_params, build_pipeline
from churnops.pipeline.transformers import NumericCoercer, as_text
from churnops.provenance import git_state
from churnops.schema import Schema

REPO = Path(__file__).resolve().parents[1]
TELCO = REPO.parent / "shared" / "data" / "telco-churn-train.csv"
LOGISTIC = "logistic regression"
LIGHTGBM = "LightGBM defaults"
REFERENCES = (LOGISTIC, LIGHTGBM)
# metric → (column title, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "roc_auc": ("ROC AUC", True),
    "log_loss": ("log loss", False),
    "f1": ("F1 at 0.5", True),
    "accuracy": ("accuracy at 0.5", True),
}
LIBRARIES = ("churnops", "scikit-learn", "lightgbm", "flaml", "numpy", "pandas")
# FLAML's cross-validation calls sklearn's delayed() without sklearn's Parallel: one warning
# per trial, about configuration propagation the benchmark does not use.
warnings.filterwarnings("ignore", message=r"`sklearn\.utils\.parallel\.delayed`")


@dataclass(frozen=True)
class Variant:
    """A churnops training configuration: AutoML settings plus extra FLAML fit parameters."""

    label: str
    settings: AutoMLSettings
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        s = self.settings
        low, high = s.n_estimators
        text = (
            f"metric={s.metric}, estimators={'+'.join(s.estimators)}, "
            f"n_estimators={low}–{high}, seed={s.seed}, n_jobs={s.n_jobs}"
        )
        return text + "".join(f", {key}={value}" for key, value in self.extra.items())


def parse_variant(spec: str, base: AutoMLSettings) -> Variant:
    """Read ``metric=roc_auc;estimators=lgbm+rf;ensemble=true`` into a :class:`Variant`."""
    changes: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise SystemExit(f"variant {spec!r}: expected KEY=VALUE, got {item!r}")
        if key == "metric":
            changes["metric"] = value
        elif key == "estimators":
            changes["estimators"] = tuple(e.strip() for e in value.split("+") if e.strip())
        elif key == "ensemble":
            if value.lower() not in ("true", "false"):
                raise SystemExit(f"variant {spec!r}: ensemble must be true or false")
            extra["ensemble"] = value.lower() == "true"
        else:
            raise SystemExit(
                f"variant {spec!r}: unknown key {key!r} (metric, estimators, ensemble)"
            )
    try:
        settings = replace(base, **changes)
    except ChurnopsError as exc:
        raise SystemExit(f"variant {spec!r}: {exc}") from exc
    shown = ", ".join(item.strip() for item in spec.split(";") if item.strip())
    return Variant(f"churnops ({shown})", settings, extra)


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


def score(model: Any, test: Dataset, positive: str, seconds: float) -> dict[str, Any]:
    """Held-out figures of a fitted classifier."""
    classes = [str(c) for c in model.classes_]
    p = model.predict_proba(test.X)[:, classes.index(positive)]
    truth = (test.y == positive).to_numpy()
    return {
        "roc_auc": float(roc_auc_score(truth, p)),
        "log_loss": float(log_loss(truth, p, labels=[False, True])),
        "f1": float(f1_score(truth, p >= 0.5)),
        "accuracy": float(accuracy_score(truth, p >= 0.5)),
        "fit_seconds": seconds,
    }


def fit_churnops(variant: Variant, train: Dataset, test: Dataset) -> dict[str, Any]:
    """Fit as ``churnops train`` does (schema from the training rows only) and score."""
    schema = train.schema()
    params = automl_fit_params(variant.settings)
    params.update({f"automl__{key}": value for key, value in variant.extra.items()})
    started = time.perf_counter()
    pipeline = build_pipeline(schema).fit(train.X, train.y, **params)
    seconds = time.perf_counter() - started
    automl = pipeline.named_steps["automl"]
    result = score(pipeline, test, schema.positive_label, seconds)
    iterations = getattr(automl, "_iter_per_learner", {}) or {}
    state = getattr(automl, "_state", None)
    result["search"] = {
        "best": automl.best_estimator,
        "model": type(getattr(automl.model, "estimator", automl.model)).__name__,
        "trials": int(sum(iterations.values())),
        "eval_method": getattr(state, "eval_method", "?"),
    }
    return result


def fit_reference(name: str, train: Dataset, test: Dataset) -> dict[str, Any]:
    schema = train.schema()
    model = LogisticRegression(max_iter=1000) if name == LOGISTIC else LGBMClassifier(verbose=-1)
    pipeline = reference_pipeline(schema, model)
    started = time.perf_counter()
    pipeline.fit(train.X, train.y)
    return score(pipeline, test, schema.positive_label, time.perf_counter() - started)


def mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def at_least(metric: str, ours: float, theirs: float) -> bool:
    """Whether ``ours`` at least matches ``theirs`` (≥, or ≤ for a loss)."""
    return ours >= theirs if METRICS[metric][1] else ours <= theirs


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


def fmt(metric: str, mean: float, std: float) -> str:
    if metric == "fit_seconds":
        return f"{mean:.1f} ± {std:.1f}"
    return f"{mean:.4f} ± {std:.4f}"


def main() -> None:
    default = AutoMLSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=TELCO, help="churn table (CSV or Parquet)")
    parser.add_argument("--time-budget", type=float, default=60.0, help="FLAML seconds per fit")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument(
        "--metric", default=default.metric, help=f"churnops' metric (default: {default.metric})"
    )
    parser.add_argument(
        "--compare-metrics",
        default="",
        help="comma-separated FLAML metrics: one more churnops model per metric",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="one more churnops model, e.g. 'estimators=lgbm+rf+extra_tree;metric=roc_auc' "
        "or 'ensemble=true' (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "quality.md")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"data file not found: {args.data} (pass --data PATH)")
    if args.folds < 2 or args.repeats < 1:
        raise SystemExit("need --folds ≥ 2 and --repeats ≥ 1")

    base = AutoMLSettings(time_budget=args.time_budget)
    main_variant = parse_variant(f"metric={args.metric}", base)
    is_default = args.metric == default.metric
    main_variant = replace(
        main_variant,
        label="churnops default" if is_default else f"churnops (metric={args.metric})",
    )
    variants = [main_variant]
    specs = [f"metric={m.strip()}" for m in args.compare_metrics.split(",") if m.strip()]
    for spec in [*specs, *args.variant]:
        variant = parse_variant(spec, base)
        if all(v.settings != variant.settings or v.extra != variant.extra for v in variants):
            variants.append(variant)

    # A log file gets full-width tables; a terminal its own width.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    try:
        dataset = load_dataset(args.data, DataSpec())
    except ChurnopsError as exc:
        raise SystemExit(str(exc)) from exc
    positive = dataset.spec.positive_label
    y = dataset.y.to_numpy()
    cv = RepeatedStratifiedKFold(
        n_splits=args.folds, n_repeats=args.repeats, random_state=args.seed
    )
    splits = list(cv.split(dataset.X, y))
    names = [v.label for v in variants] + list(REFERENCES)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    estimate = len(splits) * len(variants) * (args.time_budget + 5) / 60
    console.print(
        f"{len(splits)} folds × ({len(variants)} churnops model(s) at {args.time_budget:g} s "
        f"+ 2 references) on {dataset.rows} rows; about {estimate:.0f} min"
    )
    load_start = os.getloadavg()
    started = time.perf_counter()
    for k, (train_index, test_index) in enumerate(splits, start=1):
        train = dataset.subset(dataset.X.index[train_index])
        test = dataset.subset(dataset.X.index[test_index])
        for variant in variants:
            results[variant.label].append(fit_churnops(variant, train, test))
        for name in REFERENCES:
            results[name].append(fit_reference(name, train, test))
        console.print(
            f"fold {k}/{len(splits)} ({(time.perf_counter() - started) / 60:.1f} min): "
            + "; ".join(
                f"{name}: AUC {r[-1]['roc_auc']:.4f} LL {r[-1]['log_loss']:.4f} "
                f"{r[-1]['fit_seconds']:.0f}s"
                for name, r in results.items()
            ),
            highlight=False,
        )
    wall = time.perf_counter() - started
    load_end = os.getloadavg()

    table = Table(title=f"held-out figures, mean ± std over {len(splits)} folds")
    table.add_column("model")
    for metric in [*METRICS, "fit_seconds"]:
        table.add_column(
            METRICS[metric][0] if metric in METRICS else "fit time (s)", justify="right"
        )
    for name in names:
        table.add_row(
            name,
            *(fmt(m, *mean_std([r[m] for r in results[name]])) for m in [*METRICS, "fit_seconds"]),
        )
    console.print(table)
    context = {
        "args": args,
        "rows": dataset.rows,
        "positive_rate": float((dataset.y == positive).mean()),
        "sha256": dataset.sha256,
        "train_rows": len(splits[0][0]),
        "wall": wall,
        "load": (load_start[0], load_end[0]),
        "variants": variants,
        "is_default": is_default,
    }
    report = render(results, names, context)
    for line in verdict_lines(results, names[0]):
        console.print(line, highlight=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    console.print(f"wall time {wall / 60:.1f} min; written to {args.out}")


def verdict_lines(results: dict[str, list[dict[str, Any]]], name: str) -> list[str]:
    """One line per metric: does ``name`` at least match each reference?"""
    lines = []
    for metric, (title, higher) in METRICS.items():
        ours = mean_std([r[metric] for r in results[name]])[0]
        parts = []
        matched = []
        for ref in REFERENCES:
            theirs = mean_std([r[metric] for r in results[ref]])[0]
            ok = at_least(metric, ours, theirs)
            matched.append(ok)
            sign = ("≥" if ok else "<") if higher else ("≤" if ok else ">")
            parts.append(f"{sign} {ref} {theirs:.4f}")
        word = "matches both" if all(matched) else "does NOT match both"
        lines.append(f"{title}: {name} {ours:.4f} {', '.join(parts)}: {word}")
    return lines


def render(
    results: dict[str, list[dict[str, Any]]], names: list[str], context: dict[str, Any]
) -> str:
    args = context["args"]
    variants: list[Variant] = context["variants"]
    main = names[0]
    folds = len(results[main])
    data = args.data.resolve()
    shown_data = os.path.relpath(data, REPO) if data.is_relative_to(REPO.parent) else str(data)
    git = git_state(REPO)
    commit = git["commit"] or "unknown"
    tree = " (working tree with uncommitted changes)" if git["dirty"] else ""
    command = "bench/quality.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    lines = [
        "# Model quality",
        "",
        "How churnops' default training compares with two reference models on held-out rows. "
        "Written by `bench/quality.py` (rerun: `make bench-quality`); every figure below is "
        "measured by that run.",
        "",
        "## Setup",
        "",
        f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; wall time "
        f"{context['wall'] / 60:.1f} min; command: `.venv/bin/python {command}`",
        f"- Machine: {os.cpu_count()} cores, {cpu_model()}; 1-min load average "
        f"{context['load'][0]:.1f} at start, {context['load'][1]:.1f} at end (the machine is "
        "shared: FLAML's search is bounded in seconds, so a busy machine runs fewer trials)",
        f"- Software: {versions()}; churnops commit `{commit[:12]}`{tree}",
        f"- Data: `{shown_data}`, sha256 `{context['sha256']}`, {context['rows']} rows, "
        f"{context['positive_rate']:.1%} positive",
        f"- Cross-validation: `RepeatedStratifiedKFold(n_splits={args.folds}, "
        f"n_repeats={args.repeats}, random_state={args.seed})`: {folds} folds, the same for "
        f"every model, {context['train_rows']} training rows each; figures on the fold's "
        "held-out rows; F1 and accuracy at threshold 0.5",
        f"- {main}: `build_pipeline(schema)` with `automl_fit_params(AutoMLSettings("
        f"time_budget={args.time_budget:g}"
        + ("" if context["is_default"] else f", metric={args.metric!r}")
        + "))`, schema learned from the fold's training rows: "
        f"{variants[0].describe()}; {args.time_budget:g} s search budget per fold",
    ]
    for variant in variants[1:]:
        lines.append(f"- {variant.label}: as above with {variant.describe()}")
    lines += [
        f"- {LOGISTIC}: one-hot (unknown categories ignored), numbers read by `NumericCoercer`, "
        "median-imputed and standard-scaled; `LogisticRegression(max_iter=1000)`",
        f"- {LIGHTGBM}: the same preparation; `LGBMClassifier(verbose=-1)`",
        "",
        f"## Results (mean ± std over {folds} folds)",
        "",
        "| model | " + " | ".join(t for t, _ in METRICS.values()) + " | fit time (s) |",
        "|---" * (len(METRICS) + 2) + "|",
    ]
    for name in names:
        cells = [fmt(m, *mean_std([r[m] for r in results[name]])) for m in METRICS]
        cells.append(fmt("fit_seconds", *mean_std([r["fit_seconds"] for r in results[name]])))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    lines += ["", "## Verdict", ""]
    lines += [f"- {line}" for line in verdict_lines(results, main)]
    accepted = all(
        at_least(
            m, mean_std([r[m] for r in results[main]])[0], mean_std([r[m] for r in results[ref]])[0]
        )
        for m in ("roc_auc", "log_loss")
        for ref in REFERENCES
    )
    lines += [
        "",
        f"{main} {'at least matches' if accepted else 'does NOT match'} both references on "
        "ROC AUC and log loss (mean over folds).",
    ]
    if len(variants) > 1:
        lines += ["", "Settings compared (same folds, same run):", ""]
        for variant in variants:
            rows = results[variant.label]
            auc, ll = (mean_std([r[m] for r in rows])[0] for m in ("roc_auc", "log_loss"))
            short = [
                f"{METRICS[m][0]} vs {ref}"
                for m, v in (("roc_auc", auc), ("log_loss", ll))
                for ref in REFERENCES
                if not at_least(m, v, mean_std([r[m] for r in results[ref]])[0])
            ]
            lines.append(
                f"- {variant.label}: ROC AUC {auc:.4f}, log loss {ll:.4f}: "
                + (f"falls short on {', '.join(short)}" if short else "matches both references")
            )

    lines += [
        "",
        "## Paired differences (churnops − reference, fold by fold)",
        "",
        "Folds of repeated cross-validation overlap, so the std over folds overstates the "
        "uncertainty of a difference between models; the paired figures compare them on the "
        "same held-out rows.",
        "",
        "| model | reference | Δ ROC AUC | folds ≥ | Δ log loss | folds ≤ |",
        "|---|---|---|---|---|---|",
    ]
    for variant in variants:
        ours = results[variant.label]
        for ref in REFERENCES:
            theirs = results[ref]
            cells = []
            for metric in ("roc_auc", "log_loss"):
                diffs = [a[metric] - b[metric] for a, b in zip(ours, theirs, strict=True)]
                wins = sum(
                    at_least(metric, a[metric], b[metric])
                    for a, b in zip(ours, theirs, strict=True)
                )
                mean, std = mean_std(diffs)
                cells += [f"{mean:+.4f} ± {std:.4f}", f"{wins}/{folds}"]
            lines.append(f"| {variant.label} | {ref} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "## Per fold",
        "",
        "Search: FLAML's best estimator, number of trials and its evaluation method "
        "(`cv`: FLAML cross-validates inside the fold's training rows; `holdout`: it holds out "
        "part of them, as it does when the rows × columns are large for the budget).",
        "",
        "| fold | model | ROC AUC | log loss | F1 | accuracy | fit (s) | search |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for k, r in enumerate(results[name], start=1):
            search = r.get("search")
            found = (
                f"{search['best']} ({search['model']}), {search['trials']} trials, "
                f"{search['eval_method']}"
                if search
                else ""
            )
            lines.append(
                f"| {k} | {name} | {r['roc_auc']:.4f} | {r['log_loss']:.4f} | {r['f1']:.4f} "
                f"| {r['accuracy']:.4f} | {r['fit_seconds']:.1f} | {found} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
