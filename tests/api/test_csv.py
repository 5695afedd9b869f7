"""POST /predict/csv: a CSV file in, the same file with its scores out."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.data.sample import generate_customers

from .support import AUTH, make_settings, payload

SCORES = ["prediction", "probability", "churn_probability", "warnings"]


def _csv(rows: list[dict], columns: list[str] | None = None) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns or list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _post(client, body: bytes, content_type: str = "text/csv", auth=AUTH):
    return client.post(
        "/predict/csv", content=body, headers={"Content-Type": content_type}, auth=auth
    )


def _read(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.fixture(scope="module")
def customers() -> list[dict]:
    return generate_customers(30, seed=5).drop(columns=["Churn"]).to_dict("records")


def test_scored_file_keeps_every_column_and_equals_predict(client, customers):
    rows = [dict(r, note=f"row {i}") for i, r in enumerate(customers)]
    response = _post(client, _csv(rows))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="scored.csv"'
    assert response.headers["X-Records"] == str(len(rows))
    scored = _read(response)
    assert list(scored[0]) == [*rows[0], *SCORES]
    answers = client.post("/predict", json=customers, auth=AUTH).json()
    positive = next(iter(answers["0"]["probabilities"].keys() - {"No"}))
    for i, (row, out) in enumerate(zip(rows, scored, strict=True)):
        assert out["customerID"] == row["customerID"]
        assert out["note"] == row["note"]
        answer = answers[str(i)]
        assert out["prediction"] == answer["prediction"]
        # Written in full: the very floats /predict answers.
        assert float(out["probability"]) == answer["probability"]
        assert float(out["churn_probability"]) == answer["probabilities"][positive]
        assert out["warnings"] == ""


def test_blank_cells_quoted_newlines_and_a_byte_order_mark(client, customers):
    rows = [dict(customers[0], customerID="a\nb"), dict(customers[1], TotalCharges="")]
    response = _post(client, b"\xef\xbb\xbf" + _csv(rows))
    assert response.status_code == 200, response.text
    scored = _read(response)
    assert [r["customerID"] for r in scored] == ["a\nb", customers[1]["customerID"]]
    expected = client.post(
        "/predict", json=[rows[0], dict(rows[1], TotalCharges=None)], auth=AUTH
    ).json()
    assert [float(r["probability"]) for r in scored] == [
        expected["0"]["probability"],
        expected["1"]["probability"],
    ]


def test_unseen_category_is_scored_with_its_warning(client, customers):
    response = _post(client, _csv([dict(customers[0], PaymentMethod="Crypto")]))
    assert response.status_code == 200
    assert "Crypto" in _read(response)[0]["warnings"]


def test_a_scored_file_scores_again_with_its_score_columns_replaced(client, customers):
    first = _post(client, _csv(customers[:3])).content
    again = _post(client, first)
    assert again.status_code == 200
    assert again.content == first


def test_missing_columns_are_named_with_the_unknown_ones(client, customers):
    rows = [{("Tenure" if k == "tenure" else k): v for k, v in r.items()} for r in customers[:2]]
    response = _post(client, _csv(rows))
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == (
        "the file lacks columns the model needs: tenure; columns the model does not know: Tenure"
    )
    assert {"record": None, "field": "tenure", "problem": "column missing"} in body["problems"]


def test_a_bad_value_is_named_by_its_line(client, customers):
    rows = [customers[0], dict(customers[1], customerID="two\nlines"), customers[2]]
    rows[2] = dict(rows[2], tenure="many")
    response = _post(client, _csv(rows))
    assert response.status_code == 422
    body = response.json()
    # Line 1 is the header; the second row spans lines 3-4, so the third starts on line 5.
    assert body["detail"].startswith("line 5, column 'tenure': expected a number")
    assert body["problems"][0]["record"] == 2
    assert body["problems"][0]["line"] == 5


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"", 400, "the file is empty"),
        (b"\n\n", 400, "the file is empty"),
        (b"\xff\xfe,\x00", 400, "not UTF-8 text"),
        (b"a,a\n1,2\n", 400, "names column 'a' twice"),
        (b"a,,b\n1,2,3\n", 400, "a column without a name"),
    ],
)
def test_unreadable_files_get_one_line(client, body, status, detail):
    response = _post(client, body)
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_header_only_and_ragged_rows(client, customers):
    header_only = _csv(customers[:1]).split(b"\n", 1)[0] + b"\n"
    response = _post(client, header_only)
    assert response.status_code == 400
    assert response.json()["detail"] == "the file has a header but no rows to score"
    ragged = _csv(customers[:2]) + b"x,y\n"
    response = _post(client, ragged)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("line 4: 2 cells where the header has")
    quote = _csv(customers[:1]) + b'"unterminated\n'
    response = _post(client, quote)
    assert response.status_code == 400
    assert "not valid CSV" in response.json()["detail"]


def test_more_rows_than_the_limit(client):
    # The module's client allows 50 records per request.
    rows = generate_customers(51, seed=6).drop(columns=["Churn"]).to_dict("records")
    response = _post(client, _csv(rows))
    assert response.status_code == 413
    assert response.json()["detail"] == "more than 50 rows: the limit per request"


def test_a_body_over_the_size_limit(synthetic_model, customers):
    settings = make_settings(synthetic_model[1].path, max_body_bytes=4096)
    with TestClient(create_app(settings)) as small:
        response = _post(small, _csv(customers))
    assert response.status_code == 413
    assert "exceeds the limit of 4096 bytes" in response.json()["detail"]


def test_large_file_is_scored_in_the_thread_pool(large_client):
    rows = generate_customers(2000, seed=8).drop(columns=["Churn"]).to_dict("records")
    body = _csv(rows)
    assert len(body) > 32 * 1024
    response = _post(large_client, body)
    assert response.status_code == 200
    assert len(_read(response)) == 2000


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x"])
def test_other_media_types_are_refused(client, customers, content_type):
    response = _post(client, _csv(customers[:1]), content_type)
    assert response.status_code == 415
    assert (
        "send the file itself as the body with Content-Type: text/csv"
        in (response.json()["detail"])
    )


def test_needs_credentials(client, customers):
    response = _post(client, _csv(customers[:1]), auth=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="churnops"'


def test_scored_rows_reach_the_prediction_log(synthetic_model, tmp_path, customers):
    import sqlalchemy as sa

    from churnops.monitoring.store import open_store

    url = f"sqlite:///{tmp_path / 'log.db'}"
    settings = make_settings(synthetic_model[1].path, store_url=url)
    with TestClient(create_app(settings)) as logged:
        response = _post(logged, _csv(customers[:4]))
        assert response.status_code == 200
    scored = _read(response)
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT * FROM predictions ORDER BY id"))
            rows = rows.mappings().all()
    finally:
        store.close()
    assert [r["record_key"] for r in rows] == [c["customerID"] for c in customers[:4]]
    assert [r["label"] for r in rows] == [r["prediction"] for r in scored]
    assert [r["probability"] for r in rows] == [float(r["churn_probability"]) for r in scored]


def test_chapter_record_as_csv(client):
    record = payload("chapter_request.json")[0]
    response = _post(client, _csv([record]))
    assert response.status_code == 200
    expected = client.post("/predict", json=[record], auth=AUTH).json()["0"]
    assert float(_read(response)[0]["probability"]) == expected["probability"]
