"""Reliability under load, hostile input and model swaps, against a real `churnops serve`.

Usage::

    .venv/bin/python bench/load.py [--duration 60] [--concurrency 32] [--slow 2000]
        [--swap-seconds 30] [--fuzz 1000] [--out docs/reliability.md]

Everything runs on 127.0.0.1 and stops by itself (every loop is bounded in count and time). It
trains two small models on synthetic customers, serves the first through a symlink with the
default limits (see ``churnops.config.Settings``) and then measures, in one run:

1. **steady load**: wrk, single-record ``/predict`` at ``--concurrency`` for ``--duration`` s:
   requests/s, p50/p99, errors (socket errors and non-2xx), RSS after warm-up and at the end;
2. **hostile bodies**: a 60 KB and a 1 MB value in a numeric field, 10 MiB of ``[[],…]``
   (12 at once), a 100 MB header: status, time to answer, RSS growth (VmHWM), and the slowest
   ``/health/live`` answer while they are sent;
3. **slow and idle clients**: ``--slow`` connections, half idle and half sending a header byte
   every 5 s, plus slow bodies (a byte every 2 s), while wrk drives ``/predict`` at
   concurrency 8: req/s and errors of the well-behaved clients, and when the server had closed
   every slow connection;
4. **hot swap**: wrk at concurrency 8 for ``--swap-seconds`` while the model is swapped twice
   (admin call, SIGHUP) and a tampered model is refused: failed requests;
5. **fuzzing**: schemathesis against the server's own OpenAPI document, at least ``--fuzz``
   generated requests per endpoint (positive and negative data): 5xx, check failures.

It prints a table and writes it to ``--out``. wrk must be installed (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USER, PASSWORD = "bench", "bench-" + base64.b32encode(os.urandom(10)).decode().lower()
AUTH_HEADER = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


MANUAL = "## The limits and their settings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def churnops(*args: str) -> None:
    subprocess.run([str(BIN / "churnops"), *args], check=True, capture_output=True)


def train_models(tmp: Path) -> tuple[Path, Path]:
    data = tmp / "customers.csv"
    churnops("data", "sample", "--rows", "3000", "--out", str(data))
    models = []
    for seed in (1, 2):
        out = tmp / f"m{seed}"
        churnops("train", "--data", str(data), "--max-iter", "10", "--seed", str(seed),
                 "--out", str(out), "--no-tracking")  # fmt: skip
        models.append(out)
    return models[0], models[1]


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.base.removeprefix("http://").split(":")
        return host, int(port)

    def rss_mib(self) -> float:
        return _status_field(self.process.pid, "VmRSS")

    def peak_mib(self) -> float:
        return _status_field(self.process.pid, "VmHWM")

    def reset_peak(self) -> None:
        # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux).
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


def _status_field(pid: int, name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model: Path, log: Path, **settings: str) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(CHURN_USER=USER, CHURN_PASSWORD=PASSWORD, CHURN_LOG_LEVEL="warning", **settings)
    # The server's prediction log (on, as by default) goes beside its log, not into the project.
    env["CHURN_HOME"] = str(log.parent / "home")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "churnops"), "serve", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.base + "/health/ready", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start:\n" + log.read_text())


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def wrk(url: str, body: bytes, connections: int, seconds: float) -> Load:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body.json").write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(
            f'local f = io.open("{tmp}/body.json", "rb")\n'
            "wrk.body = f:read('*a')\nf:close()\n"
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "{AUTH_HEADER}"\n'
        )
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s", "--latency",
             "-s", str(script), url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
    requests = int(out.split(" requests in ")[0].split()[-1])
    errors = 0
    for line in out.splitlines():
        if "Socket errors" in line:
            errors += sum(int(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
        if "Non-2xx or 3xx responses" in line:
            errors += int(line.split(":")[1])
    return Load(
        requests_per_s=float(out.split("Requests/sec:")[1].split()[0]),
        p50_ms=_latency(out, "50%"),
        p99_ms=_latency(out, "99%"),
        requests=requests,
        errors=errors,
    )


def _latency(text: str, quantile: str) -> float:
    value = text.split(f" {quantile}")[1].split()[0]
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


class HealthProbe:
    """Asks /health/live over one kept-alive connection, every 2 ms, and keeps the slowest."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.slowest_ms = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                client.get(self.base + "/health/live")
                self.slowest_ms = max(self.slowest_ms, (time.perf_counter() - started) * 1000)
                self.count += 1
                time.sleep(0.002)


def hostile(server: Server, record: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """(case, status, seconds to answer, RSS growth MiB) for each hostile input."""
    rows = []
    headers = {"Authorization": AUTH_HEADER, "Content-Type": "application/json"}
    with httpx.Client(timeout=60) as client:
        for name, size in (("60 KB number", 60_000), ("1 MB number", 1_000_000)):
            body = json.dumps([dict(record, tenure="1" * size + "x")]).encode()
            server.reset_peak()
            with HealthProbe(server.base) as probe:
                started = time.perf_counter()
                response = client.post(server.base + "/predict", content=body, headers=headers)
                seconds = time.perf_counter() - started
                time.sleep(0.05)
            rows.append((f"{name} (health: slowest of {probe.count}: "
                         f"{probe.slowest_ms:.1f} ms)", str(response.status_code), seconds,
                         server.peak_mib() - server.rss_mib()))  # fmt: skip
        nested = b"[" + b"[]," * (10 * 1024 * 1024 // 3 - 1) + b"[]]"
        before = server.rss_mib()
        server.reset_peak()
        started = time.perf_counter()
        response = client.post(server.base + "/predict", content=nested, headers=headers)
        rows.append(("10 MiB of [[],…]", str(response.status_code),
                     time.perf_counter() - started, server.peak_mib() - before))  # fmt: skip
        before = server.rss_mib()
        server.reset_peak()
        statuses: list[int] = []
        started = time.perf_counter()

        def send() -> None:
            with httpx.Client(timeout=60) as own:
                statuses.append(
                    own.post(server.base + "/predict", content=nested, headers=headers).status_code
                )

        threads = [threading.Thread(target=send) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rows.append(("10 MiB of [[],…], 12 at once", ",".join(sorted(set(map(str, statuses)))),
                     time.perf_counter() - started, server.peak_mib() - before))  # fmt: skip
    before = server.rss_mib()
    server.reset_peak()
    sock = socket.create_connection(server.host_port, timeout=30)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    started = time.perf_counter()
    try:
        while sent < 100 * 1024 * 1024:
            sock.sendall(b"a" * 65536)
            sent += 65536
    except OSError:
        pass
    try:
        reply = sock.recv(64).split(b"\r\n")[0].decode()
    except OSError:
        reply = "connection reset"
    sock.close()
    rows.append((f"100 MB header (server stopped it after {sent / 2**20:.1f} MiB)",
                 reply.removeprefix("HTTP/1.1 "), time.perf_counter() - started,
                 server.peak_mib() - before))  # fmt: skip
    return rows


async def _slow_clients(server: Server, count: int, seconds: float) -> dict[str, Any]:
    """Open ``count`` idle/slow connections; return when the server closed each one."""
    host, port = server.host_port
    closed: dict[str, list[float]] = collections.defaultdict(list)
    started = time.monotonic()

    async def idle() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        await asyncio.wait_for(reader.read(), seconds)
        closed["idle"].append(time.monotonic() - started)
        writer.close()

    async def slow_header() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /health/live HTTP/1.1\r\n")
        try:
            while time.monotonic() - started < seconds:
                writer.write(b"X: y\r\n")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(), 5):
                        break
                except TimeoutError:
                    continue
                break
        except OSError:
            pass
        closed["slow header"].append(time.monotonic() - started)
        writer.close()

    async def slow_body() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + AUTH_HEADER.encode() + b"\r\nContent-Length: 5000\r\n\r\n"
        )
        try:
            while time.monotonic() - started < seconds:
                writer.write(b" ")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(), 2):
                        break
                except TimeoutError:
                    continue
                break
        except OSError:
            pass
        closed["slow body"].append(time.monotonic() - started)
        writer.close()

    tasks = [idle() for _ in range(count // 2)] + [slow_header() for _ in range(count // 2)]
    tasks += [slow_body() for _ in range(100)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    return {
        "closed": {kind: (len(times), max(times)) for kind, times in closed.items()},
        "failures": len(failures),
    }


def slow_clients(server: Server, count: int, body: bytes) -> tuple[dict[str, Any], Load]:
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(asyncio.run(_slow_clients(server, count, 60)))
    )
    thread.start()
    time.sleep(2)  # let the connections open
    load = wrk(server.base + "/predict", body, 8, 10)
    thread.join()
    return outcome, load


def hot_swap(server: Server, link: Path, models: tuple[Path, Path, Path], seconds: float,
             body: bytes) -> tuple[Load, list[str]]:  # fmt: skip
    first, second, tampered = models
    events: list[str] = []

    def point_at(target: Path) -> None:
        fresh = link.with_name("next")
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(target)
        fresh.replace(link)

    def swaps() -> None:
        with httpx.Client(timeout=30, headers={"Authorization": AUTH_HEADER}) as client:
            time.sleep(seconds / 4)
            point_at(second)
            answer = client.post(server.base + "/admin/reload").json()
            events.append(f"admin call → {answer['outcome']} ({answer['version']})")
            time.sleep(seconds / 4)
            point_at(tampered)
            answer = client.post(server.base + "/admin/reload").json()
            events.append(f"tampered model → {answer['outcome']} (still {answer['version']})")
            time.sleep(seconds / 4)
            point_at(first)
            server.process.send_signal(signal.SIGHUP)
            time.sleep(1)
            version = client.get(server.base + "/metadata").json()["version"]
            events.append(f"SIGHUP → serving {version}")

    thread = threading.Thread(target=swaps)
    thread.start()
    load = wrk(server.base + "/predict", body, 8, seconds)
    thread.join()
    return load, events


def fuzz(server: Server, minimum: int) -> tuple[list[tuple[str, int, int, int]], set[str]]:
    """(operation, requests, 5xx, failed checks) with at least ``minimum`` requests each, and
    the distinct failures."""
    import hypothesis
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(server.base + "/openapi.json")
    headers = {"Authorization": AUTH_HEADER}
    rows = []
    kinds: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        calls, errors, failures = 0, 0, 0
        seed = 0
        while calls < minimum:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @hypothesis.settings(
                    max_examples=minimum, deadline=None, database=None,
                    suppress_health_check=list(hypothesis.HealthCheck),
                    phases=[hypothesis.Phase.generate],
                )  # fmt: skip
                @hypothesis.seed(seed)
                @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
                def run(case: Any) -> None:
                    nonlocal calls, errors, failures
                    response = case.call(base_url=server.base, headers=headers)
                    calls += 1
                    errors += response.status_code >= 500
                    try:
                        case.validate_response(response, headers=headers)
                    except Exception as exc:  # every failed check counts
                        failures += 1
                        kinds.add(str(exc).splitlines()[0][:200])

                # Unsatisfiable: no input to make invalid (GET /health/live): positive data only.
                with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                    run()
                seed += 1
        rows.append((f"{operation.method.upper()} {operation.path}", calls, errors, failures))
    return rows, kinds


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--slow", type=int, default=2000, help="idle + slow-header connections")
    parser.add_argument("--swap-seconds", type=float, default=30)
    parser.add_argument("--fuzz", type=int, default=1000, help="requests per endpoint")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "reliability.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install it (apt-get install wrk) and run again")
    record = json.loads((REPO / "tests" / "testdata" / "chapter_request.json").read_text())[0]
    body = json.dumps([record]).encode()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(prefix="churnops-load-") as tmp_name:
        tmp = Path(tmp_name)
        first, second = train_models(tmp)
        tampered = tmp / "tampered"
        shutil.copytree(second, tampered)
        (tampered / "report.md").write_text("edited after signing")
        link = tmp / "current"
        link.symlink_to(first)
        server = start_server(link, tmp / "server.log")
        try:
            wrk(server.base + "/predict", body, 8, 5)  # warm-up
            warm = server.rss_mib()
            steady = wrk(server.base + "/predict", body, args.concurrency, args.duration)
            after_steady = server.rss_mib()
            hostile_rows = hostile(server, record)
            slow, polite = slow_clients(server, args.slow, body)
            swap, events = hot_swap(server, link, (first, second, tampered),
                                    args.swap_seconds, body)  # fmt: skip
            end = server.rss_mib()
        finally:
            server.process.terminate()
            server.process.wait(timeout=60)
        # schemathesis also checks that wrong credentials get 401 — for every operation, many
        # times: a server of its own, whose throttling would otherwise answer 429.
        fuzzed = start_server(first, tmp / "fuzz.log", CHURN_AUTH_FAILURES="1000000")
        try:
            fuzz_rows, fuzz_failures = fuzz(fuzzed, args.fuzz)
        finally:
            fuzzed.process.terminate()
            fuzzed.process.wait(timeout=60)
        server_errors = [
            line for line in (tmp / "server.log").read_text().splitlines()
            if '"level":"error"' in line and "reload" not in line
        ]  # fmt: skip

    say("# Reliability")
    say()
    say(f"`bench/load.py` on {dt.date.today().isoformat()} — {machine()}; one `churnops serve` "
        "(1 uvicorn worker, default limits) on 127.0.0.1; wrk with 2 threads on the same "
        "machine. Command: `.venv/bin/python bench/load.py "
        f"--duration {args.duration:g} --concurrency {args.concurrency} --slow {args.slow} "
        f"--swap-seconds {args.swap_seconds:g} --fuzz {args.fuzz}`.")  # fmt: skip
    say()
    say("## Steady load, hot swap and slow clients")
    say()
    say("| scenario | requests | req/s | p50 ms | p99 ms | failed |")
    say("|---|---:|---:|---:|---:|---:|")
    for name, load in (
        (f"1 record, concurrency {args.concurrency}, {args.duration:g} s", steady),
        (f"1 record, concurrency 8, with {args.slow} idle/slow + 100 slow-body "
         "connections open", polite),
        (f"1 record, concurrency 8, {args.swap_seconds:g} s, 2 swaps + 1 tampered model", swap),
    ):  # fmt: skip
        say(f"| {name} | {load.requests:,} | {load.requests_per_s:,.0f} | {load.p50_ms:.2f} | "
            f"{load.p99_ms:.2f} | {load.errors} |")  # fmt: skip
    say()
    say(f"Resident memory: {warm:.0f} MiB after warm-up, {after_steady:.0f} MiB after the steady "
        f"load, {end:.0f} MiB at the end of the whole run.")  # fmt: skip
    say()
    say("Swaps: " + "; ".join(events) + ".")
    say()
    closed = slow["closed"]
    say("Slow clients, closed by the server (count, last closed after s): "
        + ", ".join(f"{kind} {n} by {last:.1f} s" for kind, (n, last) in closed.items())
        + f"; client-side failures to connect: {slow['failures']}.")  # fmt: skip
    say()
    say("## Hostile input")
    say()
    say("| input | status | answered in | RSS growth (peak) |")
    say("|---|---|---:|---:|")
    for name, status, seconds, growth in hostile_rows:
        say(f"| {name} | {status} | {seconds * 1000:.1f} ms | {growth:+.1f} MiB |")
    say()
    say("## Fuzzing (schemathesis, positive and negative data, every check)")
    say()
    say("| operation | requests | 5xx | failed checks |")
    say("|---|---:|---:|---:|")
    for name, calls, errors, failures in fuzz_rows:
        say(f"| {name} | {calls:,} | {errors} | {failures} |")
    say()
    if fuzz_failures:
        say("Distinct failures: " + "; ".join(sorted(fuzz_failures)))
        say()
    say(f"Server log lines at level error (model refusals excepted): {len(server_errors)}.")
    # The hand-written part of the page (the limits, how they work) follows the measured part.
    kept = args.out.read_text().split(MANUAL, 1) if args.out.is_file() else []
    manual = MANUAL + kept[1] if len(kept) == 2 else ""
    args.out.write_text("\n".join(lines) + "\n\n" + manual)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
