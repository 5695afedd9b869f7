"""Start and stop real `churnops serve` processes for the tests that need one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CHURNOPS = str(Path(sys.executable).parent / "churnops")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    # CHURN_HOME stays: the test's own data directory (prediction log, caches), never the tree's.
    env = {
        k: v
        for k, v in os.environ.items()
        if (k == "CHURN_HOME" or not k.startswith("CHURN_")) and k != "PORT"
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


@dataclass
class Server:
    """A running `churnops serve`: its base URL and everything it printed so far."""

    base: str
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text()

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]


@contextmanager
def serving(args: list[str], env: dict[str, str], log: Path) -> Iterator[Server]:
    """Start `churnops serve ARGS --port FREE`, wait until ready, stop it with SIGTERM after."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CHURNOPS, "serve", *args, "--port", str(port)],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, server.output()
            try:
                if httpx.get(f"{server.base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert process.returncode == 0, server.output()
