"""The MLflow model form of a churnops model: a pyfunc that scores with churnops' own scorer.

A recorded run keeps an MLflow model under ``model/``::

    model/MLmodel               flavors python_function (loader: this module) and churnops
    model/requirements.txt ...  the environment MLflow recreates (churnops, mlflow)
    model/input_example.json    a few records built from the schema (serving_input_example too)
    model/data/churnops/        the verified churnops artifact directory, unchanged

``mlflow.pyfunc.load_model`` calls :func:`_load_pyfunc` on ``data/churnops``, which verifies the
artifact (:func:`churnops.artifact.load_artifact`) and scores with
:func:`churnops.inference.load_scorer`: the same data-only path ``churnops predict`` and the
service use, no pickle in the MLflow layer (the loader is named by module, not pickled). Its
output is a DataFrame with ``churn_probability`` (probability of the positive label) and
``prediction`` (the label at the model's threshold), the columns ``churnops predict`` writes.

Runs recorded before this form kept the bare artifact directory under ``model/``; both layouts
resolve through :func:`artifact_directory`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.artifact import MANIFEST, ModelArtifact, load_artifact
from churnops.errors import ArtifactError, RecordError

if TYPE_CHECKING:
    import pandas as pd

    from churnops.inference import Scorer
    from churnops.schema import Feature, Schema

FLAVOR = "churnops"
MLMODEL = "MLmodel"
DATA_NAME = "churnops"  # the artifact's directory under the MLflow model's data/
PROBABILITY_COLUMN = "churn_probability"
PREDICTION_COLUMN = "prediction"
EXAMPLE_ROWS = 3


def save_mlflow_model(artifact: ModelArtifact, path: Path) -> None:
    """Write the MLflow model of ``artifact`` into the new directory ``path``.

    The model carries a signature (the artifact's features as ``double`` or ``string`` columns,
    required unless the feature had missing values in training; output
    ``churn_probability``, ``prediction``) and an input example of a few records built from the
    schema, and the artifact itself under ``data/churnops``.
    """
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import Model

    from churnops import __version__

    with tempfile.TemporaryDirectory(prefix="churnops-mlflow-") as staging:
        data = Path(staging) / DATA_NAME
        shutil.copytree(artifact.path, data)
        model = Model()
        model.add_flavor(
            FLAVOR,
            artifact=f"data/{DATA_NAME}",
            model_name=artifact.name,
            model_version=artifact.version,
            churnops_version=__version__,
        )
        mlflow.pyfunc.save_model(
            str(path),
            loader_module=__name__,
            data_path=str(data),
            mlflow_model=model,
            signature=signature(artifact.schema),
            input_example=example_frame(artifact.schema),
            pip_requirements=[f"churnops=={__version__}", f"mlflow=={mlflow.__version__}"],
        )


def signature(schema: Schema) -> Any:
    """The MLflow signature of a model with ``schema`` (see :func:`save_mlflow_model`)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, TensorSpec
    from mlflow.types import Schema as MlflowSchema

    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(column_type(feature), feature.name, required=not feature.allows_missing)
        for feature in schema.features
    ]
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec(DataType.double, PROBABILITY_COLUMN),
        ColSpec(DataType.string, PREDICTION_COLUMN),
    ]
    return ModelSignature(MlflowSchema(inputs), MlflowSchema(outputs))


def column_type(feature: Feature) -> str:
    """The MLflow type of a feature: ``string`` for a category, ``long`` for whole numbers never
    missing in training (pandas reads them as int64, which MLflow refuses for ``double``),
    ``double`` for other numbers."""
    if feature.kind == "categorical":
        return "string"
    return "long" if feature.integer and not feature.allows_missing else "double"


def example_frame(schema: Schema, rows: int = EXAMPLE_ROWS) -> pd.DataFrame:
    """A few valid records: numbers spread over each feature's range, categories in turn."""
    import pandas as pd

    columns: dict[str, list[Any]] = {}
    for feature in schema.features:
        if feature.kind == "categorical":
            categories = feature.categories or ("",)
            columns[feature.name] = [categories[i % len(categories)] for i in range(rows)]
            continue
        low = feature.minimum if feature.minimum is not None else 0.0
        high = feature.maximum if feature.maximum is not None else low
        values = [low + (high - low) * (i + 1) / (rows + 1) for i in range(rows)]
        if column_type(feature) == "long":
            columns[feature.name] = [round(v) for v in values]
        else:
            columns[feature.name] = [float(round(v)) if feature.integer else v for v in values]
    return pd.DataFrame(columns)


def artifact_directory(model_dir: Path) -> Path:
    """The churnops artifact inside a version's downloaded source: ``model_dir`` itself (runs
    recorded before the MLflow model form) or the directory its ``MLmodel`` names.

    Raises
    ------
    ArtifactError
        ``model_dir`` holds neither a churnops artifact nor an MLflow model with one.
    """
    if (model_dir / MANIFEST).is_file():
        return model_dir
    if not (model_dir / MLMODEL).is_file():
        raise ArtifactError(f"{model_dir}: holds no churnops model ({MANIFEST} missing)")
    from mlflow.models import Model

    try:
        flavor = Model.load(str(model_dir / MLMODEL)).flavors.get(FLAVOR) or {}
    except Exception as exc:  # an MLmodel MLflow cannot read: the same refusal for the user
        raise ArtifactError(f"{model_dir / MLMODEL}: unreadable ({exc})") from None
    relative = flavor.get("artifact")
    inside = (model_dir / str(relative)).resolve() if relative else None
    if inside is None or not inside.is_relative_to(model_dir.resolve()):
        raise ArtifactError(f"{model_dir}: an MLflow model without a churnops artifact")
    if not (inside / MANIFEST).is_file():
        raise ArtifactError(f"{inside}: holds no churnops model ({MANIFEST} missing)")
    return inside


class ChurnModel:
    """What ``mlflow.pyfunc.load_model`` wraps: a verified artifact and its scorer."""

    def __init__(self, artifact: ModelArtifact, scorer: Scorer) -> None:
        self.artifact = artifact
        self.scorer = scorer

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Score a DataFrame (or a list of record dicts, or one dict) of customers.

        Returns a DataFrame, one row per input row in order: ``churn_probability`` and
        ``prediction``. Invalid records raise an ``MlflowException`` (invalid parameter: a 400
        from ``mlflow models serve``) naming the first bad record and field.
        """
        import pandas as pd
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        if isinstance(model_input, dict):
            model_input = [model_input]
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        columns = {str(name): frame[name].to_numpy() for name in frame.columns}
        try:
            scores = self.scorer.score_columns(columns, len(frame))
        except RecordError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        return pd.DataFrame(
            {PROBABILITY_COLUMN: scores.positive_probability, PREDICTION_COLUMN: scores.labels}
        )


def _load_pyfunc(data_path: str) -> ChurnModel:
    """MLflow's entry point (``loader_module``): load the artifact at ``data_path``."""
    from churnops.inference import load_scorer

    artifact = load_artifact(Path(data_path))
    return ChurnModel(artifact, load_scorer(artifact))
