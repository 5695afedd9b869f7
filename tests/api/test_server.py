"""A real `churnops serve` process on 127.0.0.1, driven over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from churnops.artifact import load_artifact
from churnops.inference import load_scorer

from .support import AUTH, payload

CHURNOPS = str(Path(sys.executable).parent / "churnops")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(extra)
    return env


@pytest.mark.slow
def test_real_server_scores_over_http(synthetic_model, tmp_path):
    port = _free_port()
    secret = tmp_path / "password"
    secret.write_text(AUTH[1] + "\n")  # as a mounted secret file
    process = subprocess.Popen(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path), "--host", "127.0.0.1",
         "--port", str(port)],
        env=_env(CHURN_USER=AUTH[0], CHURN_PASSWORD_FILE=str(secret)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)
        body = payload("chapter_request.json")
        response = httpx.post(f"{base}/predict", json=body, auth=AUTH, timeout=10)
        assert response.status_code == 200
        expected = load_scorer(load_artifact(synthetic_model[1].path)).score_records(body)
        assert response.json()["0"]["probabilities"]["Yes"] == pytest.approx(
            expected.positive_probability[0], abs=1e-12
        )
        assert httpx.post(f"{base}/predict", json=body, auth=("x", "y")).status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "churnops.access"]
    assert {line["status"] for line in access} >= {200, 401}
    assert all("request_id" in line and "latency_ms" in line for line in access)
    assert AUTH[1] not in output  # the password never reaches the logs


def test_refuses_to_start_without_credentials(synthetic_model):
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path)],
        env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "no credentials" in message


def test_refuses_a_tampered_artifact_naming_the_file(synthetic_model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(synthetic_model[1].path, copy)
    (copy / "serving" / "layout.json").write_text("{}")
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(copy)],
        env=_env(CHURN_USER="a", CHURN_PASSWORD="b"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "layout.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_imports_neither_pandas_nor_sklearn(synthetic_model):
    code = f"""
import json, sys
from fastapi.testclient import TestClient
from churnops.api import create_app
from churnops.config import Settings
settings = Settings(model={str(synthetic_model[1].path)!r}, user="u", password="p")
with TestClient(create_app(settings)) as client:
    body = {json.dumps(payload("chapter_request.json"))}
    response = client.post("/predict", json=body, auth=("u", "p"))
    assert response.status_code == 200, response.text
print(json.dumps(sorted(m for m in ("pandas", "sklearn", "joblib", "flaml") if m in sys.modules)))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
