"""/ui: the scoring page's files, their security headers and the form's description."""

from __future__ import annotations

import re

import pytest

from .support import AUTH

PAGES = ["/ui", "/ui/ui.js", "/ui/ui.css", "/ui/form.json"]


@pytest.mark.parametrize("path", PAGES)
def test_every_file_of_the_page_needs_credentials(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="churnops"'
    assert client.get(path, auth=(AUTH[0], "wrong")).status_code == 401


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/ui", "text/html"),
        ("/ui/ui.js", "text/javascript"),
        ("/ui/ui.css", "text/css"),
        ("/ui/form.json", "application/json"),
    ],
)
def test_security_headers(client, path, media):
    response = client.get(path, auth=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media)
    csp = {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1]
        for part in response.headers["Content-Security-Policy"].split(";")
    }
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_page_has_no_inline_script_or_style(client):
    html = client.get("/ui", auth=AUTH).text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts == [(' src="/ui/ui.js" defer', "")]
    assert not re.search(r"\son[a-z]+=", html)  # no event-handler attributes
    assert "<style" not in html
    assert " style=" not in html
    assert "http://" not in html
    assert "https://" not in html


def test_unknown_files_are_not_found(client):
    for path in ("/ui/ui.html", "/ui/app.py", "/ui/nothing.js", "/ui/..%2Fapp.py", "/ui/a/b"):
        response = client.get(path, auth=AUTH)
        assert response.status_code == 404, path


def test_the_form_is_the_served_models_schema(client, synthetic_model):
    artifact = synthetic_model[1]
    schema = artifact.schema
    form = client.get("/ui/form.json", auth=AUTH).json()
    assert form["model"] == {
        "name": artifact.name,
        "version": artifact.version,
        "synthetic_training_data": True,
    }
    assert form["target"] == schema.target
    assert form["positive_label"] == schema.positive_label
    assert form["threshold"] == artifact.threshold
    assert form["id_columns"] == list(schema.id_columns)
    assert form["limits"] == {"max_records": 50, "max_body_bytes": 10 * 1024 * 1024}
    assert [f["name"] for f in form["features"]] == list(schema.feature_names)
    for field, feature in zip(form["features"], schema.features, strict=True):
        assert field["kind"] == feature.kind
        assert field["allows_missing"] == feature.allows_missing
        if feature.kind == "categorical":
            assert field["categories"] == list(feature.categories)
            assert field["categories"]
        else:
            assert (field["minimum"], field["maximum"]) == (feature.minimum, feature.maximum)
            assert field["minimum"] < field["maximum"]
            assert field["integer"] == feature.integer


def test_the_page_is_not_in_the_api_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]
    assert "text/csv" in paths["/predict/csv"]["post"]["requestBody"]["content"]
