"""``GET /report``: the served model's training report, behind authentication."""

from __future__ import annotations

from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.artifact import EVALUATION_FILE, REPORT_HTML_FILE, ModelDescription, write_artifact

from .support import AUTH, make_settings


def test_report_requires_authentication(client):
    assert client.get("/report").status_code == 401
    assert client.get("/report", auth=(AUTH[0], "wrong-password")).status_code == 401


def test_report_is_the_artifacts_verified_page_with_security_headers(client, synthetic_model):
    response = client.get("/report", auth=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == synthetic_model[1].read_bytes(REPORT_HTML_FILE)
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"  # no script, image, font or connection
    assert directives["style-src"] == "'unsafe-inline'"
    assert directives["frame-ancestors"] == "'none'"
    assert "script-src" not in directives
    assert "img-src" not in directives
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-model-version"] == synthetic_model[1].version


def test_a_model_without_a_report_gets_a_clear_404(synthetic_model, tmp_path):
    artifact = synthetic_model[1]
    keep = {
        n: artifact.read_bytes(n)
        for n in artifact.files
        if n not in (REPORT_HTML_FILE, EVALUATION_FILE)
    }
    # As written before reports: no page, no evaluation data, no baselines in the manifest.
    description = artifact.manifest.description().to_json()
    del description["metrics"]["baselines"]
    old = write_artifact(tmp_path / "old", keep, ModelDescription.model_validate(description))
    with TestClient(create_app(make_settings(old.path))) as client:
        assert client.get("/report").status_code == 401  # auth first, even without a page
        response = client.get("/report", auth=AUTH)
        assert client.post("/predict", json=[{}], auth=AUTH).status_code == 422  # still serves
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert old.version in detail
    assert "no training report" in detail


def test_the_served_page_survives_a_rebuild_on_disk(synthetic_model, tmp_path):
    from churnops.artifact import load_artifact, rewrite_reports

    artifact = synthetic_model[1]
    copy = write_artifact(
        tmp_path / "m", {n: artifact.read_bytes(n) for n in artifact.files}, artifact.manifest
    )
    with TestClient(create_app(make_settings(copy.path))) as client:
        served = client.get("/report", auth=AUTH).content
        rewrite_reports(load_artifact(copy.path), {REPORT_HTML_FILE: served + b"<!-- new -->"})
        # The model as verified and loaded keeps answering with its own page.
        assert client.get("/report", auth=AUTH).content == served
