"""The Cloud Run deployment files say what they must, and the script never shows a secret.

deploy.sh runs here against stand-ins for gcloud, docker and podman that only record how they
were called, from a copy of the files it needs, so nothing reaches a cloud or the working tree.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLOUDRUN = REPO / "deploy" / "cloudrun"
SECRET = "must-not-appear"
RECORDER = '#!/bin/sh\nprintf "%s\\n" "$(basename "$0") $*" >> "$CALLS"\n'


def test_service_yaml_names_image_port_probes_and_secrets():
    service = yaml.safe_load((CLOUDRUN / "service.yaml").read_text())
    assert service["apiVersion"] == "serving.knative.dev/v1"
    assert service["kind"] == "Service"
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert int(annotations["autoscaling.knative.dev/minScale"]) >= 0
    assert int(annotations["autoscaling.knative.dev/maxScale"]) >= 1
    spec = template["spec"]
    assert spec["containerConcurrency"] >= 1
    container = spec["containers"][0]
    assert container["image"] == "IMAGE"  # filled in by deploy.sh
    assert container["ports"][0]["containerPort"] == 8080
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert container["startupProbe"]["httpGet"] == {"path": "/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": 8080}
    env = {e["name"]: e for e in container["env"]}
    assert env["CHURN_USER"]["valueFrom"]["secretKeyRef"] == {"name": "churn-user", "key": "latest"}
    assert "CHURN_PASSWORD" not in env  # mounted as a file, never a plain value
    password_file = Path(env["CHURN_PASSWORD_FILE"]["value"])
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in mounts.values() if Path(m["mountPath"]) == password_file.parent)
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "churn-password"
    assert [item["path"] for item in secret["items"]] == [password_file.name]
    assert not any("value" in e and SECRET in str(e) for e in container["env"])


class Sandbox:
    """A copy of deploy/cloudrun beside a model, and recording stand-ins on PATH."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "repo"
        shutil.copytree(CLOUDRUN, self.root / "deploy" / "cloudrun")
        self.model = tmp_path / "model"
        self.model.mkdir()
        manifest = {"name": "churn", "version": "v20261124-ab12"}
        (self.model / "manifest.json").write_text(json.dumps(manifest))
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("gcloud", "docker", "podman"):
            (bin_dir / tool).write_text(RECORDER)
            (bin_dir / tool).chmod(0o755)
        self.calls = tmp_path / "calls.txt"
        self.cwd = tmp_path
        self.env = {
            "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "CALLS": str(self.calls),
            "ENGINE": "podman",
            "CHURN_PASSWORD": SECRET,
        }

    def deploy(self, *args: str) -> tuple[str, list[str]]:
        """Run deploy.sh; return its output and the recorded tool calls."""
        result = subprocess.run(
            [str(self.root / "deploy" / "cloudrun" / "deploy.sh"), "--project", "demo-project",
             "--model", str(self.model), *args],
            capture_output=True, text=True, cwd=self.cwd, env=self.env, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert SECRET not in result.stdout + result.stderr
        recorded = self.calls.read_text().splitlines() if self.calls.exists() else []
        return result.stdout, recorded


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


IMAGE = "europe-west1-docker.pkg.dev/demo-project/churnops/churnops:v20261124-ab12"


def test_dry_run_prints_a_secret_manager_deploy_and_runs_nothing(sandbox):
    out, calls = sandbox.deploy("--dry-run")
    assert calls == []
    assert not (sandbox.root / "build").exists()
    commands = [shlex.split(line[2:]) for line in out.splitlines() if line.startswith("+ ")]
    deploy = next(c for c in commands if c[:3] == ["gcloud", "run", "deploy"])
    secrets = deploy[deploy.index("--set-secrets") + 1].split(",")
    assert "CHURN_USER=churn-user:latest" in secrets
    assert "/secrets/churn-password/password=churn-password:latest" in secrets
    env_vars = deploy[deploy.index("--set-env-vars") + 1]
    assert "CHURN_PASSWORD_FILE=/secrets/churn-password/password" in env_vars.split(",")
    assert "CHURN_PASSWORD=" not in out
    assert deploy[deploy.index("--image") + 1] == IMAGE
    assert ["podman", "push", IMAGE] in commands
    assert "dry run: nothing was run" in out


def test_deploy_builds_pushes_and_deploys_in_order(sandbox):
    _, calls = sandbox.deploy()
    tools = [" ".join(call.split()[:3]) for call in calls]
    assert tools == [
        "gcloud auth configure-docker",
        "podman build --platform",
        "podman push " + IMAGE,
        "gcloud run deploy",
    ]
    assert "--build-arg MODEL_DIR=build/model" in calls[1]
    staged = sandbox.root / "build" / "model" / "manifest.json"
    assert json.loads(staged.read_text())["version"] == "v20261124-ab12"


def test_deploy_with_the_service_yaml_renders_it(sandbox):
    _, calls = sandbox.deploy("--yaml", "--region", "us-central1", "--service", "churn-eu")
    rendered = sandbox.root / "build" / "cloudrun-service.yaml"
    assert f"gcloud run services replace {rendered} --project demo-project" in calls[3]
    assert "--region us-central1" in calls[3]
    assert calls[4].startswith("gcloud run services add-iam-policy-binding churn-eu")
    service = yaml.safe_load(rendered.read_text())
    assert service["metadata"]["name"] == "churn-eu"
    spec = service["spec"]["template"]["spec"]
    image = "us-central1-docker.pkg.dev/demo-project/churnops/churnops:v20261124-ab12"
    assert spec["containers"][0]["image"] == image
    assert spec["serviceAccountName"] == "churnops-run@demo-project.iam.gserviceaccount.com"
    # Everything else is the file as written.
    template = yaml.safe_load((CLOUDRUN / "service.yaml").read_text())
    template["metadata"]["name"] = "churn-eu"
    template["spec"]["template"]["spec"]["containers"][0]["image"] = image
    template["spec"]["template"]["spec"]["serviceAccountName"] = spec["serviceAccountName"]
    assert service == template


def test_deploy_refuses_a_directory_without_a_model(tmp_path):
    result = subprocess.run(
        [str(CLOUDRUN / "deploy.sh"), "--project", "p", "--model", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no model" in result.stderr
