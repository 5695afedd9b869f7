"""Hostile and careless input to the app: every answer is a named 4xx, never a 500."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnops.api.app import create_app
from churnops.api.body import WHOLE_PARSE_BYTES, BodyBudget, ServerBusyError, parse_records
from churnops.api.routes.scoring import SCORING_WHOLE_PARSE_BYTES
from churnops.artifact import load_artifact
from churnops.errors import ChurnopsError, ConfigError, LimitError, RecordError
from churnops.inference import load_scorer
from churnops.schema import MAX_NUMBER_CHARS, MAX_TEXT_CHARS, NotANumberError, parse_number

from .support import AUTH, make_settings, payload


def _record(**changes):
    return {**payload("chapter_request.json")[0], **changes}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1" * 60_000 + "x", f"text of 60001 characters (at most {MAX_NUMBER_CHARS})"),
        ("1e309", "expected a finite number, got '1e309'"),
        ("-1e309", "expected a finite number"),
        (" 1" * 51, "at most 100"),
    ],
)
def test_hostile_numbers_get_a_422_naming_the_field(client, value, problem):
    response = client.post("/predict", json=[_record(tenure=value)], auth=AUTH)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "tenure"
    assert problem in response.json()["problems"][0]["problem"]


def test_a_long_category_is_refused_and_an_unseen_one_is_not_echoed_whole(client):
    long = client.post("/predict", json=[_record(Contract="x" * (MAX_TEXT_CHARS + 1))], auth=AUTH)
    assert long.status_code == 422
    assert long.json()["problems"][0]["field"] == "Contract"
    unseen = client.post("/predict", json=[_record(Contract="y" * 900)], auth=AUTH)
    assert unseen.status_code == 200
    (warning,) = unseen.json()["0"]["warnings"]
    assert len(warning) < 200


def test_number_parsing_is_linear_in_the_text():
    # The old pattern backtracked quadratically: this took seconds. Parsing must not even try
    # text beyond the length limit, and the pattern itself is unambiguous.
    with pytest.raises(NotANumberError, match="characters"):
        parse_number("1" * 1_000_000 + "x")
    with pytest.raises(NotANumberError, match="expected a number"):
        parse_number("1" * 99 + "x")
    assert parse_number("1" * 99) == float("1" * 99)


def test_record_limit_applies_while_parsing_a_large_body():
    big = b"[" + b",".join([b"[]"] * 3_000_000) + b"]"
    with pytest.raises(RecordError, match="record 0: expected an object, got a JSON array"):
        parse_records(big, 10)
    objects = b"[" + b",".join([b"{}"] * 50_000) + b"]"
    with pytest.raises(LimitError, match="more than 10 records"):
        parse_records(objects, 10)
    assert len(parse_records(b"[" + b",".join([b"{}"] * 20_000) + b"]", 20_000)) == 20_000


@pytest.mark.parametrize(
    "body",
    [
        b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]",  # nesting deeper than any parser recursion
        b"[" + b'{"a": 1},' * 5_000 + b"]",  # trailing comma
        b"[" + b'{"a": 1},' * 5_000 + b"{}] extra",
        b"[" + b'{"a": NaN},' * 20_000 + b"{}]",
        b"\xff" * (WHOLE_PARSE_BYTES + 1),
        b'{"a": 1' + b" " * WHOLE_PARSE_BYTES + b"}",
    ],
    ids=["deep", "trailing-comma", "extra-data", "nan", "not-utf8", "object"],
)
def test_malformed_large_bodies_are_a_400(large_client, body):
    response = large_client.post(
        "/predict", content=body, auth=AUTH, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_large_and_small_bodies_parse_alike():
    records = payload("chapter_request.json") * 400
    small = json.dumps(records[:1]).encode()
    large = json.dumps(records).encode()
    assert len(large) > WHOLE_PARSE_BYTES
    assert parse_records(large, 1000) == records
    assert parse_records(small, 1000) == records[:1]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("application/vnd.api+json", 200),
        (None, 200),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
    ],
)
def test_content_type(client, content_type, status):
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(payload("chapter_request.json")).encode()
    response = client.post("/predict", content=body, auth=AUTH, headers=headers)
    assert response.status_code == status, response.text
    if status == 415:
        assert "application/json" in response.json()["detail"]


def test_failed_logins_are_throttled_per_client_address(synthetic_model):
    app = create_app(make_settings(synthetic_model[1].path, auth_failures=5, auth_window=60))
    body = payload("chapter_request.json")
    with TestClient(app, client=("203.0.113.7", 40000)) as attacker:
        other = TestClient(app, client=("198.51.100.2", 40000))
        codes = [
            attacker.post("/predict", json=body, auth=(AUTH[0], f"guess-{i}")).status_code
            for i in range(6)
        ]
        assert codes == [401] * 5 + [429]
        blocked = attacker.post("/predict", json=body, auth=AUTH)
        assert blocked.status_code == 429  # even the right password: a guess must learn nothing
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
        assert other.post("/predict", json=body, auth=AUTH).status_code == 200
        metrics = other.get("/metrics").text
        assert "churnops_auth_throttled_total" in metrics


@pytest.mark.parametrize("password", ["a", " ", "short-pass1", "aaaaaaaaaaaaaaaa", "abababababab"])
def test_a_weak_password_is_refused_at_start_unless_dev(synthetic_model, password):
    with pytest.raises(ConfigError, match="CHURN_PASSWORD"):
        create_app(make_settings(synthetic_model[1].path, password=password))
    create_app(make_settings(synthetic_model[1].path, password=password, dev=True))


def test_metadata_does_not_reveal_where_the_training_file_was(client):
    source = client.get("/metadata", auth=AUTH).json()["data"]["source"]
    assert source is None or "/" not in source


# -- the record encoder under any JSON ------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=200),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def scorer(synthetic_model):
    return load_scorer(load_artifact(synthetic_model[1].path))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field_values=st.dictionaries(st.sampled_from(["tenure", "Contract", "TotalCharges",
                                                     "SeniorCitizen", "customerID", "extra"]),
                                    JSON_VALUES, max_size=4))  # fmt: skip
def test_any_json_value_in_any_field_scores_or_is_a_named_problem(scorer, field_values):
    record = _record(**field_values)
    try:
        scores = scorer.score_records([record])
    except RecordError as exc:
        problems = exc.problems
    else:
        p = float(scores.positive_probability[0])
        assert 0.0 <= p <= 1.0
        assert not math.isnan(p)
        return
    assert problems
    assert all(problem["field"] in field_values for problem in problems)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_any_body_parses_or_is_a_domain_error(body):
    try:
        records = parse_records(body, 5)
    except ChurnopsError:
        return
    assert isinstance(records, list)
    assert len(records) <= 5


def test_body_budget_refuses_past_its_limit_and_frees_what_a_request_held():
    budget = BodyBudget(100)
    with budget.hold() as first:
        first.take(60)
        with budget.hold() as second:
            second.take(30)
            with pytest.raises(ServerBusyError, match="retry"):
                second.take(30)  # 60 + 60 > 100
        assert budget.held == 60  # the second request gave back what it held
    assert budget.held == 0


def test_an_integer_beyond_float64_in_a_large_body_is_a_422(large_client):
    records = payload("chapter_request.json") * 2_500  # over 1 MiB: parsed element by element
    body = (
        json.dumps(records).encode().replace(b'"tenure": 1,', b'"tenure": 1' + b"0" * 400 + b",", 1)
    )
    assert len(body) > SCORING_WHOLE_PARSE_BYTES
    response = large_client.post(
        "/predict", content=body, auth=AUTH, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["field"] == "tenure"
