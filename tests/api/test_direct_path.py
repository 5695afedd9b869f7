"""POST /predict answered ahead of the framework (ChurnopsApp.direct) is the framework's route:
same statuses, bodies and headers for good and bad requests, same logs and metrics."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app

from .support import AUTH, make_settings, payload
from .test_predict import _BrokenScorer

GOOD = payload("chapter_request.json")[0]
JSON = {"Content-Type": "application/json"}

# (name, query, body, headers, auth)
REQUESTS = [
    ("one record", "", [GOOD], JSON, AUTH),
    ("three records", "", [GOOD, GOOD, dict(GOOD, Contract="Ten year")], JSON, AUTH),
    ("explained", "?explain=true&top=3", [GOOD], JSON, AUTH),
    ("no credentials", "", [GOOD], JSON, None),
    ("wrong password", "", [GOOD], JSON, (AUTH[0], "nope")),
    ("not JSON", "", b"{nope", JSON, AUTH),
    ("not an array", "", {"a": 1}, JSON, AUTH),
    ("a bad field", "", [dict(GOOD, tenure=True)], JSON, AUTH),
    ("too many records", "", [GOOD] * 51, JSON, AUTH),
    ("unknown query parameter", "?explian=true", [GOOD], JSON, AUTH),
    ("top out of range", "?explain=true&top=0", [GOOD], JSON, AUTH),
    ("bad boolean", "?explain=maybe", [GOOD], JSON, AUTH),
    ("text body", "", b"[]", {"Content-Type": "text/plain"}, AUTH),
    ("empty array", "", [], JSON, AUTH),
]
# Headers that differ between any two answers (fresh ids) or are the server's.
VARYING = {"x-request-id", "date", "server"}


def _send(client: TestClient, query: str, body, headers, auth):
    content = body if isinstance(body, bytes) else None
    return client.post(
        "/predict" + query,
        content=content,
        json=None if content is not None else body,
        headers=headers,
        auth=auth,
    )


def _answer(response):
    headers = {k: v for k, v in response.headers.items() if k not in VARYING}
    return response.status_code, response.content, headers


@pytest.fixture(scope="module")
def both(synthetic_model):
    settings = make_settings(synthetic_model[1].path, max_records=50, no_store=True)
    direct_app, framework_app = create_app(settings), create_app(settings)
    framework_app.direct.clear()  # every request through the framework's route
    with TestClient(direct_app) as direct, TestClient(framework_app) as framework:
        yield direct, framework


@pytest.mark.parametrize(("query", "body", "headers", "auth"), [r[1:] for r in REQUESTS],
                         ids=[r[0] for r in REQUESTS])  # fmt: skip
def test_same_answer_on_both_paths(both, query, body, headers, auth):
    direct, framework = both
    assert ("POST", "/predict") in direct.app.direct
    assert _answer(_send(direct, query, body, headers, auth)) == _answer(
        _send(framework, query, body, headers, auth)
    )


def test_same_metrics_on_both_paths(both):
    direct, framework = both
    for client in both:
        for _, query, body, headers, auth in REQUESTS:
            _send(client, query, body, headers, auth)

    def samples(client):
        return {
            (sample.name, tuple(sorted(sample.labels.items())))
            for metric in client.app.state.metrics.registry.collect()
            if metric.name in ("churnops_requests", "churnops_predictions", "churnops_records")
            for sample in metric.samples
            if sample.value and not sample.name.endswith("_created")
        }

    requests = {s for s in samples(direct) if s[0] == "churnops_requests_total"}
    refused = (("method", "POST"), ("route", "/predict"), ("status", "401"))
    assert ("churnops_requests_total", refused) in requests
    assert samples(direct) == samples(framework)


def test_a_bug_is_the_same_json_500_on_both_paths(synthetic_model):
    answers = []
    for direct in (True, False):
        app = create_app(make_settings(synthetic_model[1].path, no_store=True))
        if not direct:
            app.direct.clear()
        with TestClient(app, raise_server_exceptions=False) as client:
            holder = app.state.holder
            holder.model = dataclasses.replace(
                holder.model, scorer=_BrokenScorer(holder.model.scorer)
            )
            response = client.post(
                "/predict", json=[GOOD], auth=AUTH, headers={"X-Request-ID": "bug-2"}
            )
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1] == (500, {"detail": "internal error", "request_id": "bug-2"})


def test_other_paths_and_methods_take_the_framework(both):
    direct, _ = both
    assert direct.get("/predict", auth=AUTH).status_code == 405
    redirected = direct.post("/predict/", json=[GOOD], auth=AUTH, follow_redirects=False)
    assert redirected.status_code == 307  # the framework's slash redirect
