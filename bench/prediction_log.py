"""What the prediction log costs /predict: 1-record throughput with and without it.

Usage::

    .venv/bin/python bench/prediction_log.py --model DIR [--store URL] [--duration 10] [--rounds 3]

Starts ``churnops serve`` (one worker, 127.0.0.1, HTTP Basic auth) with the prediction log
(``--store``, default a SQLite file in a temporary directory) and with ``--no-store``, and
drives each with wrk (1-record bodies, ``-c8 -t2``) in rounds whose order alternates (store
first, then no-store first), so a drift of the machine's speed and the order itself hit both
alike. Prints requests/s of every round and the median of each; afterwards, the rows in the
store against the requests wrk completed.
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


def serve(model: Path, store: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [str(BIN / "churnops"), "serve", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), *store]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--store", help="store URL (default: SQLite in a temporary directory)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    user, password = "bench", secrets.token_urlsafe(16)
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    body = json.dumps(json.loads((TESTDATA / "chapter_request.json").read_text())[:1]).encode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(CHURN_USER=user, CHURN_PASSWORD=password)
    results: dict[str, list[float]] = {"store": [], "no-store": []}
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
                process = serve(args.model, store, env, port)
                base = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(base + "/health/ready", (user, password), process)
                    run_wrk(base + "/predict", body, header, 8, 2)  # warm-up
                    load = run_wrk(base + "/predict", body, header, 8, args.duration)
                    if name == "store":  # every 200 of this server, warm-up included
                        completed += _requests(base)
                finally:
                    process.terminate()
                    process.wait(60)
                results[name].append(load.requests_per_s)
                print(f"{name:9s} {load.requests_per_s:9.0f} req/s  p99 {load.p99_ms:.2f} ms "
                      f"errors {load.errors}", flush=True)  # fmt: skip
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one()
        engine.dispose()
    for name, values in results.items():
        print(f"{name:9s} median {statistics.median(values):9.0f} req/s over {len(values)} rounds")
    print(f"store: {rows} rows logged; {completed} /predict answers counted by the servers")


def _requests(base: str) -> int:
    text = httpx.get(f"{base}/metrics").text
    total = 0
    for line in text.splitlines():
        if line.startswith('churnops_requests_total{method="POST",route="/predict",status="200"}'):
            total += int(float(line.split()[-1]))
    return total


if __name__ == "__main__":
    main()
