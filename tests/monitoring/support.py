"""Windows of logged requests built from real Telco rows, and their scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from churnops.data.cleaning import clean_frame, describe_feature
from churnops.data.profile import reference_profile
from churnops.inference import Scorer
from churnops.schema import Kind, Schema

CONTRACTS = ("Month-to-month", "One year", "Two year")


def logged_rows(path: Path) -> pd.DataFrame:
    """The table as the API logs requests: every value as the text a client sends."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def resample(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """``size`` distinct rows drawn at random."""
    rng = np.random.default_rng(seed)
    return rows.iloc[rng.choice(len(rows), size, replace=False)].reset_index(drop=True)


def shifted(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Mostly month-to-month contracts and monthly charges raised by 20 %, the rest as logged."""
    rng = np.random.default_rng(seed)
    window = resample(rows, size, seed)
    window["Contract"] = rng.choice(CONTRACTS, size, p=[0.85, 0.10, 0.05])
    charges = window["MonthlyCharges"].astype(float) * 1.2
    window["MonthlyCharges"] = [f"{v:.2f}" for v in charges]
    return window


def score(scorer: Scorer, schema: Schema, window: pd.DataFrame) -> np.ndarray:
    """The probabilities the service returned for the window."""
    columns = {name: window[name].to_numpy(dtype=object) for name in schema.feature_names}
    return np.asarray(scorer.score_columns(columns, len(window)).positive_probability)


def profiled(
    frame: pd.DataFrame, kinds: dict[str, Kind], rng: np.random.Generator
) -> tuple[Schema, dict[str, object], np.ndarray]:
    """A schema and reference profile of ``frame`` as training writes them, with made-up scores."""
    clean = clean_frame(frame, kinds)
    schema = Schema(
        target="churned",
        positive_label="yes",
        classes=("no", "yes"),
        features=tuple(describe_feature(n, k, clean[n]) for n, k in kinds.items()),
    )
    scores = rng.beta(2, 5, len(frame))
    return schema, json.loads(json.dumps(reference_profile(clean, schema, scores))), scores
