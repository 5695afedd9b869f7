"""The Cloud Run deployment files say what they must, and the script never shows a secret."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CLOUDRUN = REPO / "deploy" / "cloudrun"


def test_service_yaml_names_image_port_probes_and_secrets():
    service = yaml.safe_load((CLOUDRUN / "service.yaml").read_text())
    assert service["apiVersion"] == "serving.knative.dev/v1"
    assert service["kind"] == "Service"
    spec = service["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "IMAGE"  # filled in by deploy.sh
    assert container["ports"][0]["containerPort"] == 8080
    assert container["startupProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    env = {e["name"]: e for e in container["env"]}
    assert env["CHURN_USER"]["valueFrom"]["secretKeyRef"]["name"] == "churn-user"
    assert "CHURN_PASSWORD" not in env  # mounted as a file, never a plain value
    assert env["CHURN_PASSWORD_FILE"]["value"].startswith("/secrets/churn-password/")
    assert spec["volumes"][0]["secret"]["secretName"] == "churn-password"


def _dry_run(*args: str) -> str:
    result = subprocess.run(
        [str(CLOUDRUN / "deploy.sh"), "--project", "demo-project", "--dry-run", *args],
        capture_output=True, text=True, check=True, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "CHURN_PASSWORD": "must-not-appear"},
    )  # fmt: skip
    return result.stdout


def test_deploy_dry_run_uses_secret_manager():
    out = _dry_run()
    deploy = next(line for line in out.splitlines() if "gcloud run deploy" in line)
    assert "--set-secrets" in deploy
    assert "churn-password:latest" in deploy
    assert "europe-west1-docker.pkg.dev/demo-project/churnops/churnops:" in deploy
    assert "must-not-appear" not in out
    assert "CHURN_PASSWORD=" not in out
    assert "push" in out
    assert "dry run: nothing was run" in out


def test_deploy_dry_run_with_the_service_yaml():
    out = _dry_run("--yaml", "--region", "us-central1")
    assert "gcloud run services replace" in out
    assert "us-central1" in out
