"""The serving image, built and run for real with podman (``make test-container``).

The module builds the image from the repository with a freshly trained model, then checks what is
inside it (non-root, no training stack, no credentials, a working HEALTHCHECK) and what it does:
it runs in two configurations — the defaults, and Cloud Run's (``PORT`` set, two workers) — answers
``/health/ready``, scores like the in-process model, refuses unauthenticated calls and stops cleanly
on SIGTERM. Build time, image size and time to ready are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from churnops.artifact import load_artifact
from churnops.data.dataset import synthetic_dataset
from churnops.data.sample import generate_customers
from churnops.inference import load_scorer
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, train_model

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "tests" / "testdata"
IMAGE = "localhost/churnops:test"
# Importable in the image would mean the training stack (or an installer) leaked into it.
NOT_IN_IMAGE = ("flaml", "mlflow", "pandas", "sklearn", "joblib", "xgboost", "pytest", "pip")
USER, PASSWORD = "ci-user", "ci-secret-9d2f"


def podman(
    *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def model_dir():
    """Train a tiny model into build/model, build the image with it; remove the image after."""
    base = os.environ.get("CHURN_BASE_IMAGE")
    if not base or shutil.which("podman") is None:
        pytest.skip("run through `make test-container` (sources ../shared/ci/container-env.sh)")
    model = REPO / "build" / "model"
    if model.exists():
        shutil.rmtree(model)
    result = train_model(
        synthetic_dataset(1500, seed=8),
        AutoMLSettings(time_budget=None, max_iter=4, estimators=("lgbm",), n_jobs=2),
    )
    export_model(result, model, name="churn-ci")
    started = time.monotonic()
    build = podman(
        "build", "--pull=never", "--format", "docker", "--build-arg", f"BASE_IMAGE={base}",
        "--build-arg", "MODEL_DIR=build/model", "-t", IMAGE, str(REPO), check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"\nimage built in {time.monotonic() - started:.0f} s")
    yield model
    podman("rmi", "-f", IMAGE, check=False)
    podman("image", "prune", "-f", check=False)  # the builder stage


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    """The chapter's record (numbers, then strings) and 200 synthetic customers (text)."""
    chapter = json.loads((TESTDATA / "chapter_request.json").read_text())
    strings = json.loads((TESTDATA / "chapter_request_strings.json").read_text())
    synthetic = generate_customers(200, seed=21).drop(columns=["Churn"]).to_dict("records")
    return [*chapter, *strings, *synthetic]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _inspect(name: str, field: str) -> str:
    return podman("inspect", "--format", "{{" + field + "}}", name).stdout.strip()


def _logs(name: str) -> str:
    logs = podman("logs", name, check=False)
    return logs.stdout + logs.stderr


def test_image_is_non_root_serving_only_and_secret_free(model_dir):
    config = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    assert config["Config"]["User"] in ("10001", "10001:10001")
    env = config["Config"].get("Env", [])
    assert "CHURN_MODEL=/app/model" in env
    assert not [e for e in env if e.startswith(("CHURN_USER", "CHURN_PASSWORD"))], env
    assert PASSWORD not in json.dumps(config)
    health = config.get("Healthcheck") or config["Config"].get("Healthcheck") or {}
    assert "/health/live" in " ".join(health.get("Test", [])), "HEALTHCHECK missing"
    probe = (
        "import importlib.util, json, os; "
        "print(json.dumps({'uid': os.getuid(), "
        "'found': [m for m in %r if importlib.util.find_spec(m) is not None]}))"
    )
    inside = json.loads(
        podman("run", "--rm", IMAGE, "python3", "-c", probe % (NOT_IN_IMAGE,)).stdout
    )
    assert inside == {"uid": 10001, "found": []}
    base = json.loads(podman("image", "inspect", os.environ["CHURN_BASE_IMAGE"]).stdout)[0]
    print(
        f"\nimage size: {config['Size'] / 1e6:.0f} MB "
        f"({(config['Size'] - base['Size']) / 1e6:.0f} MB over the base image)"
    )


@dataclass(frozen=True)
class Run:
    """One way of running the image: its port inside, and its environment."""

    port: int
    env: dict[str, str]
    secret_file: str  # which credential comes from a mounted file


RUNS = {
    # The defaults a `docker run` user gets: port 8080, one worker.
    "defaults": Run(8080, {"CHURN_USER": USER}, secret_file="password"),
    # Cloud Run: it sets PORT; deploy/cloudrun runs two workers.
    "cloud-run": Run(9090, {"PORT": "9090", "CHURN_WORKERS": "2", "CHURN_PASSWORD": PASSWORD},
                     secret_file="user"),
}  # fmt: skip


@pytest.mark.parametrize("run", RUNS.values(), ids=RUNS.keys())
def test_container_serves_like_the_model_and_stops_cleanly(model_dir, records, run, tmp_path):
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    secret = PASSWORD if run.secret_file == "password" else USER
    (secrets_dir / run.secret_file).write_text(secret + "\n")
    secrets_dir.chmod(0o755)  # readable by uid 10001 in the container
    (secrets_dir / run.secret_file).chmod(0o644)
    variable = f"CHURN_{run.secret_file.upper()}_FILE=/run/secrets/churn/{run.secret_file}"
    env = [arg for key, value in run.env.items() for arg in ("-e", f"{key}={value}")]
    port = _free_port()
    name = f"churnops-test-{port}"
    started = time.monotonic()
    podman(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{run.port}", *env, "-e", variable,
        "-v", f"{secrets_dir}:/run/secrets/churn:ro", IMAGE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert _inspect(name, ".State.Running") == "true", _logs(name)
            assert time.monotonic() - started < 90, "not ready after 90 s:\n" + _logs(name)
            time.sleep(0.2)
        print(f"\n{name}: ready {time.monotonic() - started:.1f} s after `podman run`")
        assert podman("healthcheck", "run", name, check=False).returncode == 0, "HEALTHCHECK"

        response = httpx.post(f"{base}/predict", json=records, auth=(USER, PASSWORD), timeout=30)
        assert response.status_code == 200, response.text
        served = response.json()
        assert sorted(served, key=int) == [str(i) for i in range(len(records))]
        artifact = load_artifact(model_dir)
        scores = load_scorer(artifact).score_records(records)
        pipeline = artifact.load_pipeline()
        classes = [str(c) for c in pipeline.classes_]
        expected = pipeline.predict_proba(pd.DataFrame(records, dtype=object))
        for i in range(len(records)):
            answer = served[str(i)]
            p = answer["probabilities"][scores.positive_label]
            assert p == pytest.approx(scores.positive_probability[i], abs=1e-6), i
            assert answer["probabilities"] == pytest.approx(
                dict(zip(classes, expected[i].tolist(), strict=True)), abs=1e-6
            ), i
            assert answer["prediction"] == scores.labels[i], i
        assert served["0"]["probabilities"] == served["1"]["probabilities"]  # numbers or strings

        assert httpx.post(f"{base}/predict", json=records, timeout=10).status_code == 401
        wrong = httpx.post(f"{base}/predict", json=records, auth=(USER, "wrong"), timeout=10)
        assert wrong.status_code == 401
        meta = httpx.get(f"{base}/metadata", auth=(USER, PASSWORD), timeout=10).json()
        assert meta["fast_path"] is True  # the data-only serving form, no pickle
        for path in ("/ui", "/ui/ui.js", "/ui/ui.css"):  # the scoring page ships in the image
            page = httpx.get(f"{base}{path}", auth=(USER, PASSWORD), timeout=10)
            assert page.status_code == 200, path
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

        stopping = time.monotonic()
        podman("stop", "-t", "20", name)
        took = time.monotonic() - stopping
        output = _logs(name)
        assert _inspect(name, ".State.ExitCode") == "0", output[-3000:]
        assert took < 15, f"SIGTERM took {took:.1f} s"
        assert "Finished server process" in output, output[-3000:]
        assert PASSWORD not in output
    finally:
        podman("rm", "-f", name, check=False)


def test_container_refuses_to_start_without_credentials(model_dir):
    result = podman("run", "--rm", IMAGE, check=False, timeout=120)
    assert result.returncode != 0
    assert "no credentials" in result.stdout + result.stderr
