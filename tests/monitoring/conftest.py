"""Prediction stores to test on: a new SQLite file, and PostgreSQL when CHURN_TEST_PG_URL is set."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("CHURN_TEST_PG_URL")
TABLES = ("labels", "predictions", "churnops_store_version")


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
