"""Limits in front of the app, against a real `churnops serve`: slow, idle, oversized, aborted."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time

import httpx
import pytest

from .servers import CHURNOPS, _env, serving
from .support import AUTH, payload

pytestmark = pytest.mark.slow


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _reply(sock: socket.socket) -> bytes:
    try:
        return sock.recv(200)
    except OSError:
        return b""


@pytest.fixture(scope="module")
def server(synthetic_model, tmp_path_factory):
    env = _env(
        CHURN_USER=AUTH[0],
        CHURN_PASSWORD=AUTH[1],
        CHURN_HEADER_TIMEOUT="1",
        CHURN_BODY_TIMEOUT="1",
        CHURN_MAX_HEADER_BYTES="8192",
    )
    log = tmp_path_factory.mktemp("limits") / "log"
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1"]
    with serving(args, env, log) as running:
        yield running


def test_idle_and_slow_header_connections_are_closed_at_the_deadline(server):
    idle = _connect(server.base)
    slow = _connect(server.base)
    slow.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    for _ in range(6):  # a header line every 0.3 s: each byte in time, the whole too late
        try:
            slow.sendall(b"X-Slow: y\r\n")
        except OSError:
            break
        time.sleep(0.3)
    assert _reply(slow).startswith(b"HTTP/1.1 408")
    assert _reply(idle).startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 5
    # Meanwhile and after, everyone else is served.
    assert httpx.get(f"{server.base}/health/live").status_code == 200


def test_a_kept_alive_connection_gets_the_header_deadline_again(server):
    with httpx.Client() as client:
        assert client.get(f"{server.base}/health/live").status_code == 200
        assert client.get(f"{server.base}/health/live").status_code == 200


def test_oversized_headers_are_refused_without_buffering_them(server):
    sock = _connect(server.base)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    try:
        while sent < 20 * 1024 * 1024:
            sock.sendall(b"a" * 65536)
            sent += 65536
    except OSError:
        pass
    assert sent < 20 * 1024 * 1024  # the server closed the connection long before
    assert _reply(sock).startswith(b"HTTP/1.1 431")


def test_a_slow_body_gets_408_and_an_aborted_one_is_a_client_event(server):
    body = b'[{"tenure": 1}]'
    slow = _connect(server.base)
    credentials = httpx.BasicAuth(*AUTH)._auth_header
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: " + credentials.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
    )
    slow.sendall(head + body)
    assert _reply(slow).startswith(b"HTTP/1.1 408")

    aborted = _connect(server.base)
    aborted.sendall(head + body)
    aborted.close()
    time.sleep(0.3)
    lines = server.json_lines()
    statuses = [line.get("status") for line in lines if line["logger"] == "churnops.access"]
    assert 408 in statuses
    assert 499 in statuses
    assert 500 not in statuses
    assert not [line for line in lines if line["level"] == "error"]
    assert all("client" in line for line in lines if line["logger"] == "churnops.access")
    metrics = httpx.get(f"{server.base}/metrics").text
    assert 'status="499"' in metrics
    assert 'status="500"' not in metrics


def test_hostile_bodies_answer_fast_and_health_keeps_answering(server):
    record = dict(payload("chapter_request.json")[0], tenure="1" * 1_000_000 + "x")
    with httpx.Client(auth=AUTH, timeout=10) as client:
        hostile = client.post(f"{server.base}/predict", json=[record])
        assert hostile.status_code == 422
        nested = client.post(
            f"{server.base}/predict",
            content=b"[" + b"[]," * 3_000_000 + b"[]]",
            headers={"Content-Type": "application/json"},
        )
        assert nested.status_code == 422
        assert client.get(f"{server.base}/health/live").status_code == 200


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "99999"], {}, "CHURN_PORT (or PORT): Input should be less than or equal to"),
        ([], {"CHURN_PASSWORD": "a"}, "CHURN_PASSWORD has 1 characters; use at least 12"),
        ([], {"CHURN_PASSWORD": " "}, "CHURN_PASSWORD is blank"),
    ],
)
def test_start_up_mistakes_are_one_line(synthetic_model, args, env, message):
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path), *args],
        env=_env(**{"CHURN_USER": AUTH[0], "CHURN_PASSWORD": AUTH[1], **env}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dev_accepts_a_weak_password_loudly(synthetic_model, tmp_path):
    env = _env(CHURN_USER=AUTH[0], CHURN_PASSWORD="dev")
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1", "--dev"]
    with serving(args, env, tmp_path / "log") as running:
        assert httpx.get(f"{running.base}/metadata", auth=(AUTH[0], "dev")).status_code == 200
    assert "WARNING: weak password accepted because of --dev" in running.output()


def test_hot_swap_under_load_fails_no_request(synthetic_model, pipeline_only_model, tmp_path):
    """Two swaps and one tampered model while 4 clients keep scoring: every answer is a 200."""
    first, second = synthetic_model[1], pipeline_only_model
    current = tmp_path / "current"
    current.symlink_to(first.path)
    tampered = tmp_path / "tampered"
    shutil.copytree(second.path, tampered)
    (tampered / "report.md").write_text("edited")
    env = _env(CHURN_USER=AUTH[0], CHURN_PASSWORD=AUTH[1])
    with serving(["--model", str(current), "--host", "127.0.0.1"], env, tmp_path / "log") as s:
        body = payload("chapter_request.json")
        codes: list[int] = []
        versions: set[str] = set()
        stop = threading.Event()

        def score() -> None:
            with httpx.Client(auth=AUTH, timeout=10) as client:
                while not stop.is_set():
                    response = client.post(f"{s.base}/predict", json=body)
                    codes.append(response.status_code)
                    versions.add(response.headers.get("X-Model-Version", "?"))

        clients = [threading.Thread(target=score) for _ in range(4)]
        for thread in clients:
            thread.start()

        def point_at(target) -> None:
            link = tmp_path / "next"
            link.symlink_to(target)
            link.replace(current)  # atomic, as a deployment would do it

        admin = httpx.Client(auth=AUTH, timeout=30)
        time.sleep(0.5)
        point_at(second.path)
        swapped = admin.post(f"{s.base}/admin/reload")
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["outcome"] == "swapped"
        assert swapped.json()["version"] == second.version
        time.sleep(0.5)
        point_at(tampered)
        refused = admin.post(f"{s.base}/admin/reload")
        assert refused.status_code == 409
        assert "report.md" in refused.json()["detail"]
        assert refused.json()["version"] == second.version  # the old one keeps serving
        time.sleep(0.5)
        point_at(first.path)
        s.process.send_signal(signal.SIGHUP)  # the second swap, by signal
        deadline = time.monotonic() + 20
        while admin.get(f"{s.base}/metadata").json()["version"] != first.version:
            assert time.monotonic() < deadline, "SIGHUP did not reload the model"
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        for thread in clients:
            thread.join()
        admin.close()
    assert codes
    assert set(codes) == {200}
    assert {first.version, second.version} <= versions
    output = s.output()
    assert "model reload (admin call) refused" in output
    assert "model reload (SIGHUP): now serving" in output
