"""What the prediction log costs /predict: 1-record throughput with and without it.

Usage::

    .venv/bin/python bench/prediction_log.py --model DIR [--store URL] [--duration 10] [--rounds 3]
        [--pin]

Starts ``churnops serve`` (one worker, 127.0.0.1, HTTP Basic auth) with the prediction log
(``--store``, default a SQLite file in a temporary directory) and with ``--no-store``, and
drives each with wrk (1-record bodies, ``-c8 -t2``) in rounds whose order alternates (store
first, then no-store first), so a drift of the machine's speed and the order itself hit both
alike. Prints requests/s of every round and the median of each; afterwards, the rows in the
store against the requests wrk completed.

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
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import free_port, run_wrk, wait_ready

BIN = Path(sys.executable).parent
TESTDATA = Path(__file__).resolve().parents[1] / "tests" / "testdata"


def serve(
    model: Path, store: list[str], env: dict[str, str], port: int, cpus: str | None
) -> subprocess.Popen[bytes]:
    pinned = ["taskset", "-c", cpus] if cpus else []
    command = [*pinned, str(BIN / "churnops"), "serve", "--model", str(model), "--host",
               "127.0.0.1", "--port", str(port), *store]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--store", help="store URL (default: SQLite in a temporary directory)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pin", action="store_true", help="server on CPU 0; wrk and the log's writer on CPU 1"
    )
    args = parser.parse_args()
    server_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    user, password = "bench", secrets.token_urlsafe(16)
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    body = json.dumps(json.loads((TESTDATA / "chapter_request.json").read_text())[:1]).encode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(CHURN_USER=user, CHURN_PASSWORD=password)
    results: dict[str, list[float]] = {"store": [], "no-store": []}
    server_cpu: dict[str, list[float]] = {"store": [], "no-store": []}
    writer_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="churnops-log-bench-") as tmp:
        url = args.store or f"sqlite:///{Path(tmp) / 'monitoring.db'}"
        env["CHURN_HOME"] = tmp
        completed = 0
        both = (("store", ["--store", url]), ("no-store", ["--no-store"]))
        for round_ in range(args.rounds):
            # Store first in one round, second in the next (A B B A …): what the order costs
            # (the previous server's exit, the machine warming) hits both alike.
            for name, store in both if round_ % 2 == 0 else both[::-1]:
                port = free_port()
                process = serve(args.model, store, env, port, server_cpus)
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
                    server_cpu[name].append(used[0] / answered * 1e6)
                    if name == "store":  # every 200 of this server, warm-up included
                        completed += before + answered
                        writer_cpu.append(sum(used[1:]) / answered * 1e6)
                finally:
                    process.terminate()
                    process.wait(60)
                results[name].append(load.requests_per_s)
                print(f"{name:9s} {load.requests_per_s:9.0f} req/s  p99 {load.p99_ms:.2f} ms "
                      f"errors {load.errors}  server CPU {server_cpu[name][-1]:.1f} µs/request"
                      + (f"  writer CPU {writer_cpu[-1]:.1f} µs/row" if name == "store" else ""),
                      flush=True)  # fmt: skip
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one()
        engine.dispose()
    for name, values in results.items():
        print(
            f"{name:9s} median {statistics.median(values):9.0f} req/s, server CPU "
            f"{statistics.median(server_cpu[name]):.1f} µs/request over {len(values)} rounds"
        )
    print(f"writer CPU median {statistics.median(writer_cpu):.1f} µs/row")
    print(f"store: {rows} rows logged; {completed} /predict answers counted by the servers")


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
