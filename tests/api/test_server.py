"""A real `churnops serve` process on 127.0.0.1, driven over real HTTP."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from churnops.artifact import load_artifact
from churnops.inference import load_scorer

from .servers import CHURNOPS, _env, serving
from .support import AUTH, payload


@pytest.mark.slow
def test_real_server_scores_over_http(synthetic_model, tmp_path):
    secret = tmp_path / "password"
    secret.write_text(AUTH[1] + "\n")  # as a mounted secret file
    model = synthetic_model[1].path
    env = _env(CHURN_USER=AUTH[0], CHURN_PASSWORD_FILE=str(secret))
    with serving(["--model", str(model), "--host", "127.0.0.1"], env, tmp_path / "log") as server:
        body = payload("chapter_request.json")
        response = httpx.post(f"{server.base}/predict", json=body, auth=AUTH, timeout=10)
        assert response.status_code == 200
        assert response.headers["X-Model-Version"] == synthetic_model[1].version
        expected = load_scorer(load_artifact(model)).score_records(body)
        assert response.json()["0"]["probabilities"]["Yes"] == pytest.approx(
            expected.positive_probability[0], abs=1e-12
        )
        wrong = httpx.post(f"{server.base}/predict", content=b"{not json", auth=("x", "y"))
        assert wrong.status_code == 401
        assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    output = server.output()
    assert "credentials: from the environment" in output
    assert "SYNTHETIC" in output
    lines = server.json_lines()
    access = [line for line in lines if line["logger"] == "churnops.access"]
    assert {line["status"] for line in access} >= {200, 401}
    assert all("request_id" in line and "latency_ms" in line for line in access)
    # uvicorn's own lines join the JSON stream
    assert any(
        line["logger"].startswith("uvicorn") and "Uvicorn running on" in line["message"]
        for line in lines
    )
    served = [line["message"] for line in lines if line["logger"] == "churnops.api"]
    assert any(synthetic_model[1].version in m and "fast data-only path" in m for m in served)
    assert AUTH[1] not in output  # the password never reaches the logs


@pytest.mark.slow
def test_generated_credentials_are_printed_once_and_work(synthetic_model, tmp_path):
    with serving(
        ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1", "--generate-credentials"],
        _env(),
        tmp_path / "log",
    ) as server:
        found = re.search(r"user (\S+) password (\S+)", server.output())
        assert found, server.output()
        user, password = found.groups()
        assert len(password) >= 24
        assert f"{server.base}/docs" in server.output()
        body = payload("chapter_request.json")
        assert httpx.post(f"{server.base}/predict", json=body, auth=(user, password)).is_success
        assert httpx.post(f"{server.base}/predict", json=body).status_code == 401
    assert server.output().count(password) == 1


@pytest.mark.slow
def test_generate_credentials_keeps_credentials_from_the_environment(synthetic_model, tmp_path):
    env = _env(CHURN_USER=AUTH[0], CHURN_PASSWORD=AUTH[1])
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1"]
    with serving([*args, "--generate-credentials"], env, tmp_path / "log") as server:
        body = payload("chapter_request.json")
        assert httpx.post(f"{server.base}/predict", json=body, auth=AUTH).is_success
    assert "credentials: from the environment" in server.output()
    assert "generated" not in server.output()
    assert AUTH[1] not in server.output()


@pytest.mark.slow
def test_no_auth_serves_on_loopback_only(synthetic_model, tmp_path):
    with serving(
        ["--model", str(synthetic_model[1].path), "--no-auth"], _env(), tmp_path / "log"
    ) as server:
        body = payload("chapter_request.json")
        assert httpx.post(f"{server.base}/predict", json=body).status_code == 200
    output = server.output()
    assert "authentication is OFF" in output
    running = [m["message"] for m in server.json_lines() if "Uvicorn running on" in m["message"]]
    assert running
    assert all("127.0.0.1" in m for m in running)


@pytest.mark.slow
def test_two_workers_report_one_set_of_metrics(synthetic_model, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = _env(CHURN_USER=AUTH[0], CHURN_PASSWORD=AUTH[1], TMPDIR=str(scratch))
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1", "--workers", "2"]
    with serving(args, env, tmp_path / "log") as server:
        body = payload("chapter_request.json")
        deadline = time.monotonic() + 60
        pids: set[str] = set()
        while len(pids) < 2:  # both workers up (each announces the model it serves)
            assert time.monotonic() < deadline, server.output()
            pids = set(
                re.findall(r'churnops_model_info\{[^}]*pid="(\d+)"', httpx.get(
                    f"{server.base}/metrics"
                ).text)
            )  # fmt: skip
            time.sleep(0.2)
        for _ in range(12):  # a new connection each: the kernel spreads them over the workers
            assert httpx.post(f"{server.base}/predict", json=body, auth=AUTH).is_success
        metrics = httpx.get(f"{server.base}/metrics").text
        predictions = 'churnops_requests_total{method="POST",route="/predict",status="200"}'
        assert f"{predictions} 12.0" in metrics
        assert list(scratch.glob("churnops-metrics-*/*.db"))
    assert not list(scratch.glob("churnops-metrics-*")), "metrics directory left behind"


def test_refuses_to_start_without_credentials(synthetic_model):
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path)],
        env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "no credentials" in message


def test_refuses_contradictory_secrets_in_one_line(synthetic_model, tmp_path):
    (tmp_path / "password").write_text("x\n")
    env = _env(CHURN_USER="a", CHURN_PASSWORD="b", CHURN_PASSWORD_FILE=str(tmp_path / "password"))
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "both CHURN_PASSWORD and CHURN_PASSWORD_FILE" in result.stderr


def test_refuses_a_bad_setting_in_one_line(synthetic_model):
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path)],
        env=_env(CHURN_USER="a", CHURN_PASSWORD="b", CHURN_LOG_LEVEL="trace"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "CHURN_LOG_LEVEL" in result.stderr


def test_refuses_a_tampered_artifact_naming_the_file(synthetic_model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(synthetic_model[1].path, copy)
    (copy / "serving" / "layout.json").write_text("{}")
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(copy)],
        env=_env(CHURN_USER=AUTH[0], CHURN_PASSWORD=AUTH[1]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "layout.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_server_imports_neither_pandas_nor_sklearn_nor_matplotlib(synthetic_model):
    code = f"""
import json, sys
from fastapi.testclient import TestClient
from churnops.api.app import create_app
from churnops.config import Settings
settings = Settings(model={str(synthetic_model[1].path)!r}, user="u", password="p", dev=True)
with TestClient(create_app(settings)) as client:
    body = {json.dumps(payload("chapter_request.json"))}
    response = client.post("/predict", json=body, auth=("u", "p"))
    assert response.status_code == 200, response.text
    assert client.get("/metadata", auth=("u", "p")).json()["fast_path"] is True
    assert client.get("/report", auth=("u", "p")).status_code == 200
heavy = ("pandas", "sklearn", "joblib", "flaml", "matplotlib")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
