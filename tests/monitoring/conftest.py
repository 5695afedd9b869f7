"""Monitoring fixtures: a model trained on the real Telco rows with its reference profile, and
prediction stores to test on (a new SQLite file; PostgreSQL when CHURN_TEST_PG_URL is set)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.artifact import PROFILE_FILE
from churnops.inference import Scorer, load_scorer
from churnops.schema import Schema

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
