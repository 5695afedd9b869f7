"""Serving speed: churnops against the usual DataFrame-and-Pipeline server, side by side.

Usage::

    .venv/bin/python bench/serving.py [--model DIR] [--data CSV] [--workers 1] [--duration 10]

Without ``--model`` it trains one (LightGBM, a few trials) on ``--data`` (default: the shared
Telco file, else synthetic customers). In one run, on this machine, it then

1. starts the baseline server (``bench/chapter_server.py``: a FastAPI route that builds a pandas
   DataFrame and calls ``Pipeline.predict_proba``) and ``churnops serve``, each with the same
   number of uvicorn workers, one after the other on 127.0.0.1;
2. drives each with wrk (same load, bounded in time): single-record requests at concurrency
   1, 8 and 32, and 100-record requests at concurrency 8;
3. times in-process scoring (µs per record for 1 and 1,000 records) and batch scoring of 1M
   records (rows/s), for the pipeline and for churnops' scoring path / ``churnops predict``;
4. reads each server worker's peak resident memory (VmHWM);
5. runs the peers (``bench/peers.py``, skip with ``--no-peers``): MLServer with
   ``mlserver-lightgbm`` serving the same booster over the V2 protocol, and the ceiling, a bare
   ASGI app under the same uvicorn returning a fixed body; 1 worker each, same wrk settings;

prints one table and writes it, with the date and machine, to ``docs/performance.md``.
wrk must be installed (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # bench/peers.py
from doc_sections import write_keeping_sections

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TELCO = REPO.parent / "shared" / "data" / "telco-churn-train.csv"
CONCURRENCY = (1, 8, 32)


@dataclass
class Load:
    """One wrk run."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class ServerResult:
    """Everything measured for one server."""

    name: str
    single: dict[int, Load] = field(default_factory=dict)
    batch100: Load | None = None
    peak_rss_mib: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_model(data: Path | None, out: Path) -> Path:
    command = [str(BIN / "churnops"), "train", "--max-iter", "8", "--estimators", "lgbm"]
    command += (
        ["--out", str(out), "--no-tracking"]
        if _has_option("--no-tracking")
        else ["--out", str(out)]
    )
    if data is not None:
        command += ["--data", str(data)]
    subprocess.run(command, check=True)
    return out


def _has_option(option: str) -> bool:
    help_text = subprocess.run(
        [str(BIN / "churnops"), "train", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return option in help_text


def sample_records(data: Path | None, rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """Customers as a client sends them: numbers as JSON numbers, the rest as strings."""
    if data is not None:
        frame = pd.read_csv(data, dtype=str, keep_default_na=False)
    else:
        from churnops.data.sample import generate_customers

        frame = generate_customers(max(rows, 1000), seed=seed)
    frame = frame.drop(columns=["Churn"], errors="ignore")
    frame = frame.sample(n=rows, replace=rows > len(frame), random_state=seed)
    records = []
    for record in frame.to_dict("records"):
        out: dict[str, Any] = {}
        for key, value in record.items():
            try:
                out[key] = int(value) if re.fullmatch(r"-?\d+", value) else float(value)
            except ValueError:
                out[key] = value
        records.append(out)
    return records


def wait_ready(url: str, auth: tuple[str, str], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} while starting: {url}")
        try:
            if httpx.get(url, auth=auth, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server did not become ready: {url}")


def run_wrk(
    url: str, body: bytes, auth_header: str, connections: int, seconds: int, cpus: str | None = None
) -> Load:
    """wrk's figures for ``seconds`` of POSTs of ``body``; ``cpus``: run it on those (taskset)."""
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(
            'local f = io.open("' + str(body_file) + '", "rb")\n'
            "wrk.body = f:read('*a')\nf:close()\n"
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "{auth_header}"\n'
        )
        threads = min(connections, 2)
        result = subprocess.run(
            [
                *(["taskset", "-c", cpus] if cpus else []),
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    text = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", text))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    return Load(rps, _latency(text, "50%"), _latency(text, "99%"), errors)


def _latency(text: str, quantile: str) -> float:
    match = re.search(rf"^\s+{re.escape(quantile)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def worker_pids(pid: int) -> list[int]:
    """The uvicorn master with one worker, else its worker children."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    # With --workers N uvicorn forks N workers (plus possibly a resource tracker).
    return kids if len(kids) >= 2 else [pid]


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return kib / 1024


def bench_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    ready_path: str,
    port: int,
    auth: tuple[str, str],
    single: bytes,
    hundred: bytes,
    seconds: int,
    cwd: Path,
    path: str = "/predict",
    levels: tuple[int, ...] = CONCURRENCY,
) -> ServerResult:
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    header = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    result = ServerResult(name)
    try:
        wait_ready(base + ready_path, auth, process)
        check = httpx.post(
            base + path,
            content=single,
            auth=auth,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        check.raise_for_status()
        run_wrk(base + path, single, header, 8, 2)  # warm-up
        for connections in levels:
            result.single[connections] = run_wrk(base + path, single, header, connections, seconds)
            print(f"  {name}: c={connections} {result.single[connections]}", flush=True)
        result.batch100 = run_wrk(base + path, hundred, header, 8, seconds)
        print(f"  {name}: 100-record c=8 {result.batch100}", flush=True)
        result.peak_rss_mib = [peak_rss_mib(pid) for pid in worker_pids(process.pid)]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    return result


def per_record_us(fn: Any, records: int, min_seconds: float = 1.0) -> float:
    fn()  # warm-up
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < min_seconds:
        fn()
        calls += 1
    return elapsed / calls / records * 1e6


def best_seconds(fn: Any, runs: int = 2) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def in_process(model: Path, data: Path | None, tmp: Path) -> dict[str, float]:
    from churnops.artifact import load_artifact
    from churnops.inference import load_scorer

    artifact = load_artifact(model)
    pipeline = artifact.load_pipeline()
    scorer = load_scorer(artifact)
    one = sample_records(data, 1, seed=1)
    thousand = sample_records(data, 1000, seed=2)
    out = {
        "pipeline_1_us": per_record_us(lambda: pipeline.predict_proba(pd.DataFrame(one)), 1),
        "pipeline_1000_us": per_record_us(
            lambda: pipeline.predict_proba(pd.DataFrame(thousand)), 1000
        ),
        "fast_1_us": per_record_us(lambda: scorer.score_records(one), 1),
        "fast_1000_us": per_record_us(lambda: scorer.score_records(thousand), 1000),
    }
    p_fast = scorer.score_records(thousand).positive_probability
    classes = [str(c) for c in pipeline.classes_]
    p_pipe = pipeline.predict_proba(pd.DataFrame(thousand))[:, classes.index(scorer.positive_label)]
    out["max_abs_diff"] = float(np.max(np.abs(p_fast - p_pipe)))
    out["runtime"] = scorer.runtime  # type: ignore[assignment]

    # 1M records: the pipeline on a DataFrame vs `churnops predict` on a Parquet file.
    from churnops.data.sample import generate_customers

    path = tmp / "million.parquet"
    generate_customers(1_000_000, seed=7).drop(columns=["Churn"]).to_parquet(path, index=False)
    million = pd.read_parquet(path)  # text columns as a file reader returns them
    # Best of two runs for both, so neither pays one-off warm-up costs.
    out["pipeline_batch_rows_s"] = len(million) / best_seconds(
        lambda: pipeline.predict_proba(million)
    )
    columns = {name: million[name] for name in million.columns}
    out["fast_batch_rows_s"] = len(million) / best_seconds(
        lambda: scorer.score_columns(columns, len(million))
    )
    started = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "churnops"),
            "predict",
            "--model",
            str(model),
            "--data",
            str(path),
            "--out",
            str(tmp / "scored.parquet"),
        ],
        check=True,
        capture_output=True,
    )
    out["predict_cli_rows_s"] = len(million) / (time.perf_counter() - started)
    return out


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def render(
    chapter: ServerResult,
    ours: ServerResult,
    local: dict[str, Any],
    args: argparse.Namespace,
    peers: list[tuple[ServerResult, str]],
) -> str:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}×" if b else "n/a"

    lines = [
        "| measure | chapter (DataFrame + Pipeline) | churnops | ratio |",
        "|---|---:|---:|---:|",
    ]
    for c in CONCURRENCY:
        a, b = chapter.single[c], ours.single[c]
        lines.append(
            f"| 1-record requests/s, c={c} | {a.requests_per_s:,.0f} | {b.requests_per_s:,.0f} "
            f"| {ratio(b.requests_per_s, a.requests_per_s)} |"
        )
        lines.append(
            f"| p50 / p99 ms, c={c} | {a.p50_ms:.2f} / {a.p99_ms:.2f} "
            f"| {b.p50_ms:.2f} / {b.p99_ms:.2f} | |"
        )
    assert chapter.batch100 is not None
    assert ours.batch100 is not None
    lines.append(
        f"| rows/s, 100-record requests, c=8 | {chapter.batch100.requests_per_s * 100:,.0f} "
        f"| {ours.batch100.requests_per_s * 100:,.0f} "
        f"| {ratio(ours.batch100.requests_per_s, chapter.batch100.requests_per_s)} |"
    )
    lines.append(
        f"| in-process µs/record, 1 record | {local['pipeline_1_us']:,.1f} "
        f"| {local['fast_1_us']:,.1f} "
        f"| {ratio(local['pipeline_1_us'], local['fast_1_us'])} |"
    )
    lines.append(
        f"| in-process µs/record, 1,000 records | {local['pipeline_1000_us']:,.2f} "
        f"| {local['fast_1000_us']:,.2f} "
        f"| {ratio(local['pipeline_1000_us'], local['fast_1000_us'])} |"
    )
    lines.append(
        f"| batch rows/s, 1M records (scoring) | {local['pipeline_batch_rows_s']:,.0f} "
        f"| {local['fast_batch_rows_s']:,.0f} "
        f"| {ratio(local['fast_batch_rows_s'], local['pipeline_batch_rows_s'])} |"
    )
    lines.append(
        f"| `churnops predict` rows/s, 1M records (read + score + write) | | "
        f"{local['predict_cli_rows_s']:,.0f} | |"
    )
    lines.append(
        f"| peak RSS per worker, MiB | {', '.join(f'{r:.0f}' for r in chapter.peak_rss_mib)} "
        f"| {', '.join(f'{r:.0f}' for r in ours.peak_rss_mib)} | |"
    )
    if peers:
        lines += [
            "",
            "Peers and the ceiling, same run, 1 worker each, same wrk settings (`-c8`, 1-record "
            "bodies; 100-record bodies for rows/s):",
            "",
            "| server | 1-record requests/s, c=8 | p50 / p99 ms | churnops ÷ this "
            "| rows/s, 100-record requests | versions |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for result, versions in [(ours, "this commit"), *peers]:
            one, hundred_ = result.single[8], result.batch100
            rows = f"{hundred_.requests_per_s * 100:,.0f}" if hundred_ else ""
            lines.append(
                f"| {result.name} | {one.requests_per_s:,.0f} | {one.p50_ms:.2f} / "
                f"{one.p99_ms:.2f} | {ratio(ours.single[8].requests_per_s, one.requests_per_s)} "
                f"| {rows} | {versions} |"
            )
    errors = sum(
        run.errors
        for r in (chapter, ours, *(peer for peer, _ in peers))
        for run in [*r.single.values(), r.batch100]
        if run
    )
    head = [
        "# Serving performance",
        "",
        f"Measured {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `bench/serving.py` on "
        f"{machine()}.",
        "",
        f"Both servers: uvicorn, {args.workers} worker(s), 127.0.0.1, HTTP Basic auth; load by wrk "
        f"(`-d{args.duration}s`, 1–2 threads) on the same machine, so the load generator shares "
        f"the cores. Model: {local['model']}. churnops scoring runtime: {local['runtime']}. "
        f"Max |p_churnops − p_pipeline| on 1,000 records: {local['max_abs_diff']:.1e}. "
        f"Socket/HTTP errors or non-2xx responses during the runs: {errors}.",
        "",
    ]
    return "\n".join(head + lines) + "\n"


def run_peers(
    model: Path, args: argparse.Namespace, tmp: Path, auth: tuple[str, str]
) -> list[tuple[ServerResult, str]]:
    """MLServer with the same booster (features pre-encoded) and the ceiling app (peers.py)."""
    import uvicorn

    from churnops.artifact import load_artifact
    from churnops.inference import load_scorer

    out: list[tuple[ServerResult, str]] = []
    port = free_port()
    planned = peers.mlserver_model(model, tmp / "mlserver", port)
    if planned is None:
        print("MLServer skipped: the model has no LightGBM text form", flush=True)
    else:
        command, folder = planned
        layout = load_scorer(load_artifact(model)).layout  # type: ignore[attr-defined]
        encode = lambda n, seed: peers.v2_body(  # noqa: E731
            layout.encode_records(sample_records(args.data, n, seed=seed)).matrix.tolist()
        )
        print("MLServer (mlserver-lightgbm, V2 protocol, pre-encoded features) …", flush=True)
        result = bench_server(
            "MLServer", command, {**os.environ, "OMP_NUM_THREADS": "1"}, "/v2/health/ready",
            port, auth,
            encode(1, 3), encode(100, 4), args.duration, folder,
            path="/v2/models/churn/infer", levels=(8,),
        )  # fmt: skip
        out.append((result, peers.mlserver_versions()))
    port = free_port()
    print("ceiling (bare ASGI app, fixed body) …", flush=True)
    result = bench_server(
        "ceiling (bare ASGI app)", peers.ceiling_command(Path(sys.executable), port),
        dict(os.environ), "/", port, auth, b"[{}]", b"[{}]", args.duration, REPO / "bench",
        path="/", levels=(8,),
    )  # fmt: skip
    out.append((result, f"uvicorn {uvicorn.__version__}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="artifact directory (default: train one)")
    parser.add_argument("--data", type=Path, default=TELCO if TELCO.is_file() else None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument(
        "--store",
        default=None,
        help="churnops' prediction log: a store URL, or 'off' (--no-store); default a SQLite "
        "file in the run's temporary directory",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="skip MLServer and the ceiling app (MLServer installs into its own environment)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install it (apt-get install wrk) and run again")

    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model = args.model or train_model(args.data, tmp / "model")
        user, password = "bench", secrets.token_urlsafe(16)
        # CHURN_HOME: the server's prediction log stays in this run's temporary directory.
        env = {**os.environ, "CHURN_USER": user, "CHURN_PASSWORD": password}
        env["CHURN_HOME"] = str(tmp / "home")
        single = json.dumps(sample_records(args.data, 1, seed=3)).encode()
        hundred = json.dumps(sample_records(args.data, 100, seed=4)).encode()

        port = free_port()
        print("baseline server (DataFrame + Pipeline) …", flush=True)
        chapter = bench_server(
            "chapter",
            [
                str(BIN / "uvicorn"),
                "chapter_server:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            {**env, "CHAPTER_MODEL": str(model)},
            "/openapi.json",
            port,
            (user, password),
            single,
            hundred,
            args.duration,
            REPO / "bench",
        )
        port = free_port()
        print("churnops serve …", flush=True)
        ours = bench_server(
            "churnops",
            [
                str(BIN / "churnops"),
                "serve",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                *(
                    ["--no-store"]
                    if args.store == "off"
                    else ["--store", args.store or f"sqlite:///{tmp / 'monitoring.db'}"]
                ),
            ],
            env,
            "/health/ready",
            port,
            (user, password),
            single,
            hundred,
            args.duration,
            REPO,
        )
        peers = [] if args.no_peers else run_peers(model, args, tmp, (user, password))
        print("in-process and batch scoring …", flush=True)
        local: dict[str, Any] = in_process(model, args.data, tmp)
        from churnops.artifact import load_artifact

        artifact = load_artifact(model)
        local["model"] = (
            f"{artifact.manifest.estimator} "
            f"({artifact.manifest.automl.best_config.get('n_estimators')} trees), "
            f"trained on {'synthetic' if artifact.synthetic else 'real'} data"
        )
    report = render(chapter, ours, local, args, peers)
    write_keeping_sections(args.out, report)  # other benchmarks' sections stay
    print()
    print(report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
