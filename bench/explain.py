"""Cost of feature contributions: /predict with and without ``explain=true``, in process.

Usage::

    flock /tmp/bench.lock .venv/bin/python bench/explain.py [--data CSV] [--trees 300]
        [--repeats 200] [--out docs/explanations.md]

Fits a LightGBM, a random-forest and a LightGBM-with-linear-leaves model of ``--trees`` trees
each (two FLAML trials with ``n_estimators`` fixed) on ``--data`` (default: the shared Telco
file, else synthetic customers), then times the /predict route's own work (``score_body``:
parse the JSON body, validate, score, build the JSON answer) for bodies of 1 and 100 records,
plain and with ``explain=true`` (top 5), and batch scoring with and without contributions
(``score_columns``, what ``churnops predict [--explain]`` runs) on 10,000 rows. Each figure is
the median of ``--repeats`` calls (or of as many as 20 s allow). Prints one table and writes
it, with the date and machine, as the "Cost" section of ``--out`` (the rest of the page is kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
TELCO = REPO.parent / "shared" / "data" / "telco-churn-train.csv"

from churnops.api.metrics import Metrics  # noqa: E402
from churnops.api.routes.scoring import score_body  # noqa: E402
from churnops.data.dataset import DataSpec, load_dataset, synthetic_dataset  # noqa: E402
from churnops.data.sample import generate_customers  # noqa: E402
from churnops.inference import load_scorer  # noqa: E402
from churnops.pipeline.build import AutoMLSettings  # noqa: E402
from churnops.pipeline.train import export_model, train_model  # noqa: E402

COST = """## Cost

Measured {when} by `bench/explain.py` on {machine}, a machine shared with other work and busy
while it ran (figures are medians of {repeats} calls, or of as many as 20 s allow, taken under
`flock /tmp/bench.lock`). Data: {data}. Models (two FLAML trials each, `n_estimators` fixed):

{models}

"route" is the /predict route's own work in process (`score_body`: parse, validate, score,
JSON answer), without HTTP; "batch" is `score_columns` on 10,000 rows, what `churnops predict`
runs. TreeSHAP's cost grows with trees × leaves × depth², baseline Shapley's with the leaves
and the fields on their paths: larger models than these cost more.

| model | what | plain | explain=true (top 5) | × |
|---|---|---:|---:|---:|
{rows}
"""


def _time(call, repeats: int, budget: float = 20.0) -> float:
    """Median seconds of ``repeats`` calls, or of as many as ``budget`` seconds allow (≥ 3)."""
    call()  # warm: explainers are built on their first call
    samples: list[float] = []
    spent = time.perf_counter()
    while len(samples) < repeats and (len(samples) < 3 or time.perf_counter() - spent < budget):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _fmt(seconds: float) -> str:
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=TELCO if TELCO.is_file() else None)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "explanations.md")
    args = parser.parse_args()

    dataset = load_dataset(args.data, DataSpec()) if args.data else synthetic_dataset(5000, seed=1)
    customers = generate_customers(10_000, seed=7).drop(columns=["Churn"])
    records = customers.to_dict("records")
    columns = {c: customers[c].astype("str") for c in customers.columns}
    bodies = {n: orjson.dumps(records[:n]) for n in (1, 100)}
    metrics = Metrics()
    rows, models = [], []
    with tempfile.TemporaryDirectory() as folder:
        for estimator in ("lgbm", "rf", "lgbm_linear"):
            settings = AutoMLSettings(
                time_budget=None, max_iter=2, estimators=(estimator,),
                n_estimators=(args.trees, args.trees), n_jobs=1,
            )  # fmt: skip
            artifact = export_model(train_model(dataset, settings), Path(folder) / estimator)
            scorer = load_scorer(artifact, allow_fallback=False)
            search = artifact.manifest.automl
            config = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in search.best_config.items())  # fmt: skip
            models.append(f"{estimator} ({search.estimator_class}: {config})")
            for n, body in bodies.items():
                route = functools.partial(score_body, scorer, body, 1000, metrics)
                plain = _time(route, args.repeats)
                explained = _time(functools.partial(route, 5), args.repeats)
                what = f"route, {n} record{'s' if n > 1 else ''}"
                per = f" ({_fmt(plain / n)} / {_fmt(explained / n)} per record)" if n > 1 else ""
                rows.append(
                    f"| {estimator} | {what}{per} | {_fmt(plain)} | {_fmt(explained)} "
                    f"| {explained / plain:.1f} |"
                )
            repeats = max(3, args.repeats // 40)
            batch = functools.partial(scorer.score_columns, columns, 10_000)
            plain = _time(batch, repeats)
            explained = _time(functools.partial(batch, explain=True), repeats)
            rows.append(
                f"| {estimator} | batch, 10,000 rows ({10_000 / plain:,.0f} / "
                f"{10_000 / explained:,.0f} rows/s) | {_fmt(plain)} | {_fmt(explained)} "
                f"| {explained / plain:.1f} |"
            )
            print(rows[-3], rows[-2], rows[-1], sep="\n", flush=True)
    machine = f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python "
    machine += platform.python_version()
    data = f"`{args.data.name}` ({dataset.rows} rows)" if args.data else "synthetic customers"
    section = COST.format(
        when=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine,
        repeats=args.repeats,
        data=data,
        models="\n".join(f"- {m}" for m in models),
        rows="\n".join(rows),
    )
    page = args.out.read_text() if args.out.is_file() else ""
    head = page[: page.index("## Cost")] if "## Cost" in page else page
    args.out.write_text(head + section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
