"""A new tracking store is created under an inter-process lock: concurrent first use is safe."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from churnops.errors import ConfigError
from churnops.registry import tracking
from churnops.registry.models import list_versions
from churnops.registry.tracking import check_tracking, store_lock, store_lock_path
from tests.registry.conftest import sqlite_uri

CHURNOPS = str(Path(sys.executable).parent / "churnops")


@pytest.mark.slow
def test_three_trainings_at_once_on_a_new_store_all_register(customers_csv, tmp_path):
    home = tmp_path / ".churnops"
    uri = sqlite_uri(tmp_path)  # a store that does not exist yet
    env = {
        **os.environ,
        "CHURN_HOME": str(home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": uri,
    }
    processes = [
        subprocess.Popen(
            [
                *(CHURNOPS, "train", "--data", str(customers_csv), "--max-iter", "2"),
                *("--seed", str(seed), "--out", str(tmp_path / f"m{seed}"), "--register", "churn"),
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in (1, 2, 3)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "registered as churn version" in output
        assert "Traceback" not in output

    listed = subprocess.run(
        [CHURNOPS, "models", "list"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    versions = list_versions(uri, "churn")
    assert sorted(v.version for v in versions) == ["1", "2", "3"]


def test_a_sqlite_store_is_locked_beside_its_database(tmp_path):
    uri = sqlite_uri(tmp_path)
    assert store_lock_path(uri) == (tmp_path / "mlflow.db.lock").resolve()


def test_a_server_database_is_locked_per_uri_on_this_machine():
    first = store_lock_path("postgresql://u:p@db.example/mlflow")
    assert first == store_lock_path("postgresql://u:p@db.example/mlflow")
    assert first != store_lock_path("postgresql://u:p@db.example/other")
    assert "p@db" not in str(first)  # the password does not end up in a file name


def test_the_store_waits_for_the_process_creating_it(tmp_path, monkeypatch):
    uri = sqlite_uri(tmp_path / "new")
    (tmp_path / "new").mkdir()
    monkeypatch.setattr(tracking, "_OPENED", set())
    held, release = threading.Event(), threading.Event()

    def creator() -> None:
        with store_lock(uri):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=creator)
    thread.start()
    try:
        assert held.wait(10)
        # Another holder (here: a thread, standing in for a process) keeps the store locked.
        with pytest.raises(ConfigError, match="lock") as raised, store_lock(uri, timeout=0.2):
            pass  # pragma: no cover
        assert len(str(raised.value).splitlines()) == 1
    finally:
        release.set()
        thread.join()
    check_tracking(uri)  # free again: the store is created
    assert (tmp_path / "new" / "mlflow.db").is_file()
