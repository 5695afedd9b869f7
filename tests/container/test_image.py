"""The serving image, built and run for real with podman (``make test-container``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from churnops.artifact import load_artifact
from churnops.data.dataset import synthetic_dataset
from churnops.inference import load_scorer
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, train_model

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/churnops:test"
TRAINING_ONLY = ("flaml", "mlflow", "pandas", "sklearn", "joblib", "xgboost", "pytest")
USER, PASSWORD = "ci-user", "ci-secret-9d2f"


def podman(
    *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, timeout=timeout
    )


@pytest.fixture(scope="module")
def image():
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
    print(f"image built in {time.monotonic() - started:.0f} s")
    yield model
    podman("rmi", "-f", IMAGE, check=False)
    podman("image", "prune", "-f", check=False)  # the builder stage


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_image_is_non_root_slim_and_secret_free(image):
    config = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    assert config["Config"]["User"] in ("10001", "10001:10001")
    env = " ".join(config["Config"].get("Env", []))
    assert "CHURN_PASSWORD" not in env
    assert "CHURN_USER=" not in env
    health = config.get("Healthcheck") or config["Config"].get("Healthcheck") or {}
    assert "/health/live" in " ".join(health.get("Test", [])), "HEALTHCHECK missing"
    probe = (
        "import importlib.util, json; "
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in %r}))"
    )
    found = json.loads(
        podman("run", "--rm", IMAGE, "python3", "-c", probe % (TRAINING_ONLY,)).stdout
    )
    assert not any(found.values()), found
    whoami = podman("run", "--rm", IMAGE, "python3", "-c", "import os; print(os.getuid())").stdout
    assert whoami.strip() == "10001"
    base = json.loads(podman("image", "inspect", os.environ["CHURN_BASE_IMAGE"]).stdout)[0]
    print(f"image size: {config['Size'] / 1e6:.0f} MB (base {base['Size'] / 1e6:.0f} MB)")


def test_container_serves_and_stops_cleanly(image, tmp_path):
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "password").write_text(PASSWORD + "\n")
    secrets_dir.chmod(0o755)
    (secrets_dir / "password").chmod(0o644)
    port = _free_port()
    name = f"churnops-test-{port}"
    podman(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
        "-e", f"CHURN_USER={USER}", "-e", "CHURN_PASSWORD_FILE=/run/secrets/churn/password",
        "-v", f"{secrets_dir}:/run/secrets/churn:ro", IMAGE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            state = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            assert state == "true", podman("logs", name).stdout + podman("logs", name).stderr
            assert time.monotonic() < deadline, "container did not become ready"
            time.sleep(0.5)
        records = json.loads((REPO / "tests" / "testdata" / "chapter_request.json").read_text())
        response = httpx.post(f"{base}/predict", json=records, auth=(USER, PASSWORD), timeout=10)
        assert response.status_code == 200, response.text
        expected = load_scorer(load_artifact(image)).score_records(records)
        assert response.json()["0"]["probabilities"]["Yes"] == pytest.approx(
            expected.positive_probability[0], abs=1e-6
        )
        pipeline = load_artifact(image).load_pipeline()
        import pandas as pd

        p_pipeline = pipeline.predict_proba(pd.DataFrame(records, dtype=object))[0, 1]
        assert response.json()["0"]["probabilities"]["Yes"] == pytest.approx(p_pipeline, abs=1e-6)
        assert httpx.post(f"{base}/predict", json=records, timeout=10).status_code == 401
        meta = httpx.get(f"{base}/metadata", auth=(USER, PASSWORD), timeout=10).json()
        assert meta["fast_path"] is True
        podman("stop", "-t", "20", name)
        exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = podman("logs", name)
        output = logs.stdout + logs.stderr
        assert exit_code == "0", output[-2000:]
        assert "Finished server process" in output or "Shutting down" in output
        assert PASSWORD not in output
    finally:
        podman("rm", "-f", name, check=False)
