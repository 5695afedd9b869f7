"""A small model trained on the real Telco rows, exported with its reference profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

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
