"""The prediction store, the same suite on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time

import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from churnops.errors import ConfigError, DataError
from churnops.monitoring.labels import attach_labels
from churnops.monitoring.store import (
    INSERT_COLUMNS,
    Answers,
    metadata,
    open_store,
    predictions,
    record_key,
    rows_of,
    shown_url,
)


def _rows(keys: list[str | None], version: str = "v1") -> list[tuple]:
    now = dt.datetime.now(dt.UTC)
    features = [
        orjson.dumps({"customerID": key, "tenure": i}).decode() for i, key in enumerate(keys)
    ]
    return [
        (now, "churn", version, f"r{i}", key, features[i], 0.25, "No") for i, key in enumerate(keys)
    ]


def _named(rows) -> list[dict]:
    return [dict(zip(INSERT_COLUMNS, row, strict=True)) for row in rows]


def test_open_creates_the_current_schema_once(new_store_url):
    store = open_store(new_store_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": "churnops_store_version"}
            )
            assert context.get_current_revision() == "0002"
            # The tables the migrations made are the ones the code queries, indexes included.
            assert compare_metadata(context, metadata) == []
        store.insert_predictions(_rows(["a"]))
    finally:
        store.close()
    again = open_store(new_store_url)  # already at head: nothing re-created, nothing lost
    try:
        assert again.count() == 1
    finally:
        again.close()


def test_predictions_round_trip_and_keys_are_found(new_store_url):
    store = open_store(new_store_url)
    try:
        store.insert_predictions(_rows(["k1", "k2", None, "k1"]))
        assert store.count() == 4
        assert store.known_keys(["k1", "k3", "k2"]) == {"k1", "k2"}
        with store.engine.connect() as connection:
            row = (
                connection.execute(sa.text("SELECT * FROM predictions ORDER BY id"))
                .mappings()
                .first()
            )
        assert row["record_key"] == "k1"
        assert orjson.loads(row["features"]) == {"customerID": "k1", "tenure": 0}
        assert row["probability"] == 0.25
        assert row["label"] == "No"
        assert row["model_version"] == "v1"
    finally:
        store.close()


def test_logged_times_read_back_and_compare_as_sqlalchemy_writes_them(new_store_url):
    # The SQLite path formats the times itself: what it stores must be what SQLAlchemy's
    # DateTime stores (windows compare the column with bound datetimes) and reads back.
    times = [
        dt.datetime(2026, 12, 1, 8, 0, 5, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 1, 8, 0, 5, 7, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 9, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 0, 0, 0, 123_456, tzinfo=dt.UTC),
    ]
    store = open_store(new_store_url)
    try:
        store.insert_predictions(
            [(when, "m", "v", f"r{i}", None, "{}", 0.5, "No") for i, when in enumerate(times)]
        )
        column = predictions.c.logged_at
        with store.engine.connect() as connection:
            read = connection.execute(sa.select(column).order_by(predictions.c.id)).scalars()
            assert [t.replace(tzinfo=None) for t in read] == [t.replace(tzinfo=None) for t in times]
            for i, when in enumerate(times):
                later = connection.execute(
                    sa.select(sa.func.count()).where(column >= when)
                ).scalar_one()
                assert later == sum(t >= when for t in times), i
    finally:
        store.close()


def test_labels_of_unknown_keys_are_counted_and_named_not_stored(new_store_url):
    store = open_store(new_store_url)
    try:
        store.insert_predictions(_rows(["k1", "k2"]))
        pairs = [("k1", "Yes"), ("x9", "No"), ("k2", "No"), ("x9", "Yes"), ("x8", "No")]
        outcome = store.store_labels(pairs, "test")
        assert outcome.stored == 2
        assert outcome.unknown == 3
        assert outcome.unknown_keys == ["x9", "x8"]  # each once, in order of arrival
        assert store.count("labels") == 2
        with store.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT record_key, label, source FROM labels ORDER BY record_key")
            ).all()
        assert [tuple(r) for r in rows] == [("k1", "Yes", "test"), ("k2", "No", "test")]
    finally:
        store.close()


def test_many_labels_are_checked_in_chunks(new_store_url):
    store = open_store(new_store_url)
    try:
        keys = [f"c{i}" for i in range(1200)]
        store.insert_predictions(_rows(keys[::2]))  # every other key was predicted
        outcome = store.store_labels([(k, "No") for k in keys], "test")
        assert (outcome.stored, outcome.unknown) == (600, 600)
        assert len(outcome.unknown_keys) == 20
    finally:
        store.close()


def test_attach_labels_from_a_frame_and_from_rows(new_store_url):
    store = open_store(new_store_url)
    try:
        store.insert_predictions(_rows(["7590-VHVEG", "42"]))
    finally:
        store.close()
    frame = pd.DataFrame({"customerID": ["7590-VHVEG", "nope"], "Churn": ["Yes", "No"]})
    outcome = attach_labels(new_store_url, frame)
    assert (outcome.stored, outcome.unknown, outcome.unknown_keys) == (1, 1, ["nope"])
    # Integer IDs (a frame's int64 or float column) match the text the API logged.
    numbers = pd.DataFrame({"id": [42.0], "y": ["No"]})
    assert attach_labels(new_store_url, numbers, "id", "y").stored == 1
    rows = [{"id": 42, "y": "Yes"}]
    assert attach_labels(new_store_url, rows, "id", "y", source="crm").stored == 1


def test_attach_labels_names_a_missing_column_or_key(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    frame = pd.DataFrame({"customerID": ["a"], "Churn": ["No"]})
    with pytest.raises(DataError, match="no column 'cid'"):
        attach_labels(url, frame, key_column="cid")
    with pytest.raises(DataError, match="row 1: customerID None"):
        attach_labels(url, [{"customerID": "a", "Churn": "No"}, {"Churn": "Yes"}])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nosuch://host/db", "nosuch is not supported"),
        ("not a url", "is not a database URL"),
        ("sqlite://", "names no database file"),
        ("sqlite:///:memory:", "names no database file"),
        ("postgresql:///db", "names no database host"),
    ],
)
def test_a_bad_url_is_one_line(url, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        open_store(url)
    assert len(str(caught.value).splitlines()) == 1


def test_an_unreachable_database_is_one_line_without_its_password():
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot be opened") as caught:
        open_store("postgresql://churnops:hunter2-secret@127.0.0.1:1/churnops")
    message = str(caught.value)
    assert "hunter2-secret" not in message
    assert "***" in message
    assert len(message.splitlines()) == 1
    assert time.monotonic() - started < 15


def test_a_directory_is_not_a_database(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


def test_sqlite_store_is_in_wal_mode(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with store.engine.connect() as connection:
            assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        store.close()


def test_shown_url_masks_passwords():
    assert shown_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert "secret" not in shown_url("bad url://u:secret@h")


FIRST_USE = textwrap.dedent(
    """
    import sys, time
    from churnops.monitoring.store import open_store
    url, start, key = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    while time.time() < start:
        time.sleep(0.001)
    store = open_store(url)
    import datetime as dt
    store.insert_predictions([(dt.datetime.now(dt.UTC), "m", "v", key, key, "{}", 0.5, "No")])
    store.close()
    """
)


def test_concurrent_first_use_from_three_processes(new_store_url):
    # Three processes open the same new store at the same instant: one creates the tables, the
    # others wait for it (file lock / advisory lock), then all three write.
    start = time.time() + 3
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, new_store_url, str(start), f"p{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    store = open_store(new_store_url)
    try:
        assert store.count() == 3
        assert store.known_keys(["p0", "p1", "p2"]) == {"p0", "p1", "p2"}
    finally:
        store.close()


def test_rows_of_a_request_keep_the_records_as_received():
    records = [
        {"customerID": "A-1", "tenure": 3, "TotalCharges": " 12.5"},
        {"customerID": 17, "tenure": 1},
        {"tenure": 2},
        {"customerID": "x" * 300},
        {"customerID": True},
    ]
    body = bytearray(orjson.dumps(records))
    answers: Answers = (0.0, "churn", "v9", "req", "customerID", body, ("Yes",) * 5, (0.9,) * 5)
    rows = _named(rows_of(answers))
    assert [r["record_key"] for r in rows] == ["A-1", "17", None, None, None]
    assert orjson.loads(rows[0]["features"]) == records[0]
    assert rows[0]["logged_at"] == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert {r["request_id"] for r in rows} == {"req"}
    assert record_key({"id": "a"}, None) is None


def test_rows_of_a_body_only_the_incremental_parser_reads():
    # A lone surrogate: orjson refuses it, the API's large-body parser does not. The row keeps
    # it escaped (storable text); a key with one is no key.
    body = b'[{"customerID": "k", "city": "\\ud800"}, {"customerID": "\\udfff"}]'
    rows = _named(rows_of((0.0, "m", "v", "r", "customerID", body, ("No", "No"), (0.1, 0.2))))
    assert [r["record_key"] for r in rows] == ["k", None]
    assert rows[0]["features"].isascii()
    assert json.loads(rows[0]["features"]) == {"customerID": "k", "city": "\ud800"}
    for row in rows:
        row["features"].encode()  # valid UTF-8: any database takes it
