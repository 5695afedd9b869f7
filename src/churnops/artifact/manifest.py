"""The artifact contract: file names and the typed manifest that describes a model.

``manifest.json`` is validated into :class:`Manifest` when an artifact is read, so every reader
gets typed fields instead of dictionary look-ups, and a manifest of another shape is refused with
a message naming the field. Format version 1 is the only one written and read; fields added since
(``fitting``, ``data.final_fit_rows``, ``serving``) are optional, so every version-1 artifact
still reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from churnops.errors import ArtifactError
from churnops.schema import Schema

FORMAT = "churnops-model"
FORMAT_VERSION = 1

# Every file name of an artifact (paths inside the directory).
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
PIPELINE_FILE = "pipeline.joblib"
PROFILE_FILE = "reference_profile.json"
HISTORY_FILE = "search_history.jsonl"
REPORT_FILE = "report.md"
# The training report as a self-contained page, and the held-out labels, scores and importances
# it is built from (artifacts written before them have neither).
REPORT_HTML_FILE = "report.html"
EVALUATION_FILE = "evaluation.json"
SERVING_DIR = "serving"
# The data-only serving form: a spec naming the runtime and its model file, and the layout of the
# feature matrix. Part of the contract so the reader can check the spec's file names too.
SERVING_SPEC = f"{SERVING_DIR}/serving.json"
LAYOUT_FILE = f"{SERVING_DIR}/layout.json"
UNAVAILABLE_FILE = f"{SERVING_DIR}/unavailable.json"
SERVING_MODEL_SUFFIXES = {
    "lightgbm-text": ".txt",
    "treelite-checkpoint": ".treelite",
    "lightgbm-compiled": ".so",  # only as the spec's ``compiled`` entry, beside a text model
}


class _Part(BaseModel):
    # Unknown keys are kept (and written back): a newer writer may add detail a reader ignores.
    model_config = ConfigDict(extra="allow", frozen=True)


class FileEntry(_Part):
    """One file: its sha256 and size."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class DataInfo(_Part):
    """The data the model came from, and how its rows were used."""

    source: str | None = None
    sha256: str = ""
    rows: int = 0
    train_rows: int = 0
    validation_rows: int = 0
    test_rows: int = 0
    final_fit_rows: int | None = None  # all rows after a refit; train_rows without one
    synthetic: bool = False
    notes: list[str] = []


class TrainingSettings(_Part):
    """The settings training ran with (AutoML settings as :class:`AutoMLSettings` fields)."""

    automl: dict[str, Any] = {}
    threshold_policy: dict[str, Any] = {}
    test_size: float = 0.2


class Threshold(_Part):
    """The decision threshold on the positive label's probability."""

    value: float = Field(0.5, ge=0.0, le=1.0)
    strategy: str = "fixed"


class Search(_Part):
    """The AutoML search's result: the winner and what finding it took."""

    best_estimator: str | None = None
    best_config: dict[str, Any] = {}
    best_loss: float | None = None
    estimator_class: str | None = None
    trials: int = 0
    time_to_find_best_seconds: float | None = None
    fit_seconds: float | None = None


class Finalist(_Part):
    """The best trial of one estimator searched, with the search's own score."""

    estimator: str
    validation_loss: float
    trials: int
    config: dict[str, Any] = {}


class Selection(_Part):
    """How trials were ranked: asked (``method``) and done by FLAML (``flaml_eval_method``)."""

    method: str
    metric: str
    n_splits: int | None = None
    split_type: str | None = None
    flaml_eval_method: str | None = None
    rows: int = 0
    finalists: list[Finalist] = []


class Evaluation(_Part):
    """The held-out evaluation: rows scored, and the rows the scored model was fitted on."""

    rows: int = 0
    model_fitted_on_rows: int = 0


class FinalFit(_Part):
    """The exported model: refitted on every row, or the evaluated one."""

    refit: bool = False
    rows: int = 0
    refit_seconds: float | None = None


class Fitting(_Part):
    """What was fitted on what: selection, held-out evaluation, threshold rows, final fit."""

    selection: Selection | None = None
    evaluation: Evaluation = Evaluation()
    threshold: dict[str, Any] = {}
    final: FinalFit = FinalFit()
    search_budget_seconds: float | None = None
    seconds: float | None = None


class Serving(_Part):
    """How the model is served: the runtime of its serving spec and its compiled form, or why
    there is none (the details, and the check of each against the pipeline, are in the spec)."""

    runtime: str | None = None  # None: no data-only form, the pipeline serves
    unavailable: str | None = None
    compiled: str | None = None
    compiled_unavailable: str | None = None


class ModelDescription(_Part):
    """What training says about a model: everything in the manifest but what the writer adds."""

    name: str = "churn"
    data: DataInfo = DataInfo()
    schema_: dict[str, Any] = Field(alias="schema")
    settings: TrainingSettings = TrainingSettings()
    automl: Search = Search()
    fitting: Fitting = Fitting()  # absent from artifacts written before selection was recorded
    metrics: dict[str, Any] = {}
    threshold: Threshold = Threshold()
    versions: dict[str, str] = {}
    git: dict[str, Any] | None = None
    serving: Serving | None = None  # absent from artifacts written before it was recorded

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _schema_reads(cls, value: dict[str, Any]) -> dict[str, Any]:
        Schema.from_dict(value)  # raises ArtifactError naming the problem
        return value

    @property
    def test_metrics(self) -> dict[str, Any]:
        """The held-out metrics."""
        test = self.metrics.get("test", {})
        return dict(test) if isinstance(test, dict) else {}

    @property
    def estimator(self) -> str | None:
        """Class name of the fitted estimator."""
        return self.automl.estimator_class

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form, with the manifest's own key names."""
        return self.model_dump(mode="json", by_alias=True)


class Manifest(ModelDescription):
    """``manifest.json``: a model description plus what the writer adds."""

    format: Literal["churnops-model"] = "churnops-model"
    format_version: int = FORMAT_VERSION
    version: str
    created_at: str
    files: dict[str, FileEntry]

    def description(self) -> ModelDescription:
        """The description this manifest was written from (to write a changed copy)."""
        data = self.to_json()
        for key in WRITER_FIELDS:
            data.pop(key, None)
        return ModelDescription.model_validate(data)


# What write_artifact adds to a description.
WRITER_FIELDS = ("format", "format_version", "version", "created_at", "files")


def parse_manifest(data: object, where: str) -> Manifest:
    """Validate a parsed ``manifest.json``; raise ArtifactError naming the first problem."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArtifactError(f"{where}: not a churnops model manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: format version {data.get('format_version')} is not supported "
            f"(this churnops reads version {FORMAT_VERSION})"
        )
    if not isinstance(data.get("schema"), dict):
        raise ArtifactError(f"{where}: no feature schema; not a churnops model manifest")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "manifest"
        raise ArtifactError(f"{where}: field {field!r}: {first['msg']}") from None
