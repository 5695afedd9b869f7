"""What the prediction log costs /predict: 1-record throughput with and without it.

Usage::

    .venv/bin/python bench/prediction_log.py [--model DIR] [--data CSV] [--store URL]
        [--duration 10] [--rounds 8] [--pin] [--out docs/performance.md]

Starts ``churnops serve`` (one worker, 127.0.0.1, HTTP Basic auth) with the prediction log
(``--store``, default a SQLite file in a temporary directory) and with ``--no-store``, and
drives each with wrk (1-record bodies, ``-c8 -t2``) in rounds whose order alternates (store
first, then no-store first), so a drift of the machine's speed and the order itself hit both
alike. Without ``--model`` it trains one as ``bench/serving.py`` does, on ``--data`` (default:
the shared Telco file, else synthetic customers), whose customers it sends. Prints requests/s of
every round; then each round's change (store against no-store), how many rounds each was the
faster in with the sign test of that count, and the Wilcoxon signed-rank test of the paired
rounds (scipy). Afterwards, the rows in the store against the
requests the servers answered. ``--out`` writes the results into a section of that file.

It also reads the CPU time each process used during the load (Linux ``/proc``): the serving
process's per answered request, which is what the log adds to the request path itself, and
the processes the server started (the writer, and multiprocessing's resource tracker when
there is one) per logged row. On a machine whose cores are all busy (wrk, the server and the
writer share two here) the writer's CPU is taken from the others, and requests/s shows it;
``--pin`` runs the server on CPU 0 and wrk and the writer on CPU 1, as the writer would run
beside a server that has a core of its own.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import write_section
from serving import TELCO, free_port, machine, run_wrk, sample_records, train_model, wait_ready

BIN = Path(sys.executable).parent


def serve(
    model: Path, store: list[str], env: dict[str, str], port: int, cpus: str | None
) -> subprocess.Popen[bytes]:
    pinned = ["taskset", "-c", cpus] if cpus else []
    command = [*pinned, str(BIN / "churnops"), "serve", "--model", str(model), "--host",
               "127.0.0.1", "--port", str(port), *store]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="artifact directory (default: train one)")
    parser.add_argument(
        "--data", type=Path, default=TELCO if TELCO.is_file() else None,
        help="customers to train on and to send (default: the shared Telco file, else synthetic)",
    )  # fmt: skip
    parser.add_argument("--store", help="store URL (default: SQLite in a temporary directory)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--pin", action="store_true", help="server on CPU 0; wrk and the log's writer on CPU 1"
    )
    parser.add_argument("--out", type=Path, help="write the results into a section of this file")
    args = parser.parse_args()
    server_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    user, password = "bench", secrets.token_urlsafe(16)
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    body = json.dumps(sample_records(args.data, 1, seed=3)).encode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(CHURN_USER=user, CHURN_PASSWORD=password)
    rounds: list[dict[str, float]] = []  # per round: req/s and server CPU of each, writer CPU
    with tempfile.TemporaryDirectory(prefix="churnops-log-bench-") as tmp:
        model = args.model or train_model(args.data, Path(tmp) / "model")
        url = args.store or f"sqlite:///{Path(tmp) / 'monitoring.db'}"
        env["CHURN_HOME"] = tmp
        completed = 0
        both = (("store", ["--store", url]), ("no-store", ["--no-store"]))
        for round_ in range(args.rounds):
            # Store first in one round, second in the next (A B B A …): what the order costs
            # (the previous server's exit, the machine warming) hits both alike.
            found: dict[str, float] = {}
            for name, store in both if round_ % 2 == 0 else both[::-1]:
                port = free_port()
                process = serve(model, store, env, port, server_cpus)
                base = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(base + "/health/ready", (user, password), process)
                    writers = _children(process.pid)
                    if other_cpus:
                        for pid in writers:
                            _pin(pid, {int(other_cpus)})
                    run_wrk(base + "/predict", body, header, 8, 2, other_cpus)  # warm-up
                    before = _requests(base)
                    pids = [process.pid, *writers]
                    cpu = [_cpu_seconds(pid) for pid in pids]
                    load = run_wrk(base + "/predict", body, header, 8, args.duration, other_cpus)
                    used = [_cpu_seconds(pid) - c for pid, c in zip(pids, cpu, strict=True)]
                    answered = _requests(base) - before
                    found[name] = load.requests_per_s
                    found[f"{name} cpu"] = used[0] / answered * 1e6
                    if name == "store":  # every 200 of this server, warm-up included
                        completed += before + answered
                        found["writer cpu"] = sum(used[1:]) / answered * 1e6
                finally:
                    process.terminate()
                    process.wait(60)
                writer = f"  writer CPU {found['writer cpu']:.1f} µs/row" if name == "store" else ""
                print(f"{name:9s} {load.requests_per_s:9.0f} req/s  p99 {load.p99_ms:.2f} ms "
                      f"errors {load.errors}  server CPU {found[f'{name} cpu']:.1f} µs/request"
                      f"{writer}", flush=True)  # fmt: skip
            rounds.append(found)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one()
        engine.dispose()
    report = render(rounds, rows, completed, args)
    print(report)
    if args.out:
        write_section(args.out, "prediction-log" + ("-pinned" if args.pin else ""), report)


def render(
    rounds: list[dict[str, float]], rows: int, completed: int, args: argparse.Namespace
) -> str:
    changes = [r["store"] / r["no-store"] - 1 for r in rounds]
    faster = sum(change > 0 for change in changes)
    test = stats.wilcoxon([r["store"] for r in rounds], [r["no-store"] for r in rounds])
    where = (
        "server on CPU 0, wrk and the log's writer on CPU 1 (`--pin`)"
        if args.pin
        else "server, wrk and the log's writer sharing both cores"
    )
    lines = [
        "## What the prediction log costs 1-record requests" + (" (pinned)" if args.pin else ""),
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/prediction_log.py"
        f" --rounds {args.rounds}{' --pin' if args.pin else ''}` on {machine()}: `churnops serve` "
        "(1 uvicorn worker) with the prediction log (SQLite) and with `--no-store`, wrk `-c8`, "
        f"{args.duration} s a server, rounds in A B B A order; {where}.",
        "",
        "| round | first | with the log, req/s | `--no-store`, req/s | change "
        "| server CPU µs/request with / without | writer CPU µs/row |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for i, (r, change) in enumerate(zip(rounds, changes, strict=True)):
        lines.append(
            f"| {i + 1} | {'log' if i % 2 == 0 else 'no-store'} | {r['store']:,.0f} | "
            f"{r['no-store']:,.0f} | {change:+.1%} | {r['store cpu']:.1f} / {r['no-store cpu']:.1f}"
            f" | {r['writer cpu']:.1f} |"
        )
    median = statistics.median
    lines += [
        f"| median | | {median(r['store'] for r in rounds):,.0f} | "
        f"{median(r['no-store'] for r in rounds):,.0f} | {median(changes):+.1%} | "
        f"{median(r['store cpu'] for r in rounds):.1f} / "
        f"{median(r['no-store cpu'] for r in rounds):.1f} | "
        f"{median(r['writer cpu'] for r in rounds):.1f} |",
        "",
        f"With the log the faster in {faster} of {len(rounds)} rounds (sign test p = "
        f"{stats.binomtest(faster, len(rounds)).pvalue:.2f}); Wilcoxon signed-rank test of the "
        f"paired rounds: p = {test.pvalue:.2f}. Rows in the store: {rows:,}; /predict answers "
        f"counted by the servers with the log: {completed:,}.",
    ]
    return "\n".join(lines) + "\n"


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (the prediction log's writer, multiprocessing's tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _pin(pid: int, cpus: set[int]) -> None:
    """Move every thread of ``pid`` to ``cpus``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _requests(base: str) -> int:
    text = httpx.get(f"{base}/metrics").text
    total = 0
    for line in text.splitlines():
        if line.startswith('churnops_requests_total{method="POST",route="/predict",status="200"}'):
            total += int(float(line.split()[-1]))
    return total


if __name__ == "__main__":
    main()
