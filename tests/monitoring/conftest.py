"""Monitoring fixtures: a model trained on the real Telco rows with its reference profile, and
prediction stores to test on (a new SQLite file; PostgreSQL when CHURN_TEST_PG_URL is set)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.artifact import PROFILE_FILE
from churnops.inference import Scorer, load_scorer
from churnops.schema import Schema

from ..api.servers import free_port
from .support import logged_rows


@dataclass(frozen=True)
class TelcoReference:
    profile: dict[str, Any]
    schema: Schema
    scorer: Scorer
    rows: pd.DataFrame  # every training row, as logged


@pytest.fixture(scope="session")
def telco_reference(telco_path, tmp_path_factory) -> TelcoReference:
    from churnops.data.dataset import DataSpec, load_dataset
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model

    dataset = load_dataset(telco_path, DataSpec())
    result = train_model(dataset, AutoMLSettings(time_budget=None, max_iter=4, n_jobs=1))
    artifact = export_model(result, tmp_path_factory.mktemp("models") / "telco")
    return TelcoReference(
        profile=artifact.read_json(PROFILE_FILE),
        schema=artifact.schema,
        scorer=load_scorer(artifact),
        rows=logged_rows(telco_path),
    )


PG_URL = os.environ.get("CHURN_TEST_PG_URL")
TABLES = ("drift_checks", "labels", "predictions", "churnops_store_version")


def reset_postgres(url: str) -> None:
    """Drop the store's tables: every test starts from a database that has never been used."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The URL of a store that does not exist yet (tables not created)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'monitoring.db'}"
    if not PG_URL:
        pytest.skip(
            "CHURN_TEST_PG_URL is not set (source ../shared/ci/services-env.sh; pg_env_start)"
        )
    reset_postgres(PG_URL)
    return PG_URL


@dataclass
class PostgresServer:
    """A PostgreSQL server of its own (a private cluster), to stop and start mid-test."""

    data: str
    port: int
    bindir: str
    as_postgres: list[str]  # command prefix: run as the postgres user when this is root

    @property
    def url(self) -> str:
        return f"postgresql://churnops@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [*self.as_postgres, f"{self.bindir}/pg_ctl", "-D", self.data, "-w", *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", f"{self.data}/server.log", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster on a free port (needs the server's binaries: CI installs them
    with ../shared/ci/services-env.sh); removed afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not PG_URL or not found:
        pytest.skip("needs PostgreSQL's server binaries (source ../shared/ci/services-env.sh)")
    bindir = os.path.dirname(found[-1])
    data = tempfile.mkdtemp(prefix="churnops-pg-")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "churnops",
         "--no-sync"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    server = PostgresServer(data, free_port(), bindir, as_postgres)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop()
        shutil.rmtree(data, ignore_errors=True)
