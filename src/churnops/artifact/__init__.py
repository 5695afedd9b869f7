"""The model artifact: a directory of files, each verified against its manifest.

Layout::

    manifest.json      what the model is: name, version, data, schema, settings, metrics, hashes
    manifest.sha256    the manifest's own digest (``sha256sum -c manifest.sha256`` works)
    pipeline.joblib    the fitted scikit-learn Pipeline (the portable deliverable)
    ...                serving form, reference profile, reports, evaluation data, search history

:mod:`~churnops.artifact.manifest` is the contract (file names, the typed manifest),
:mod:`~churnops.artifact.reader` verifies and reads, :mod:`~churnops.artifact.writer` writes.
"""

from churnops.artifact.manifest import (
    EVALUATION_FILE,
    FORMAT,
    FORMAT_VERSION,
    HISTORY_FILE,
    LAYOUT_FILE,
    MANIFEST,
    MANIFEST_DIGEST,
    PIPELINE_FILE,
    PROFILE_FILE,
    REPORT_FILE,
    REPORT_HTML_FILE,
    SERVING_DIR,
    SERVING_MODEL_SUFFIXES,
    SERVING_SPEC,
    UNAVAILABLE_FILE,
    DataInfo,
    FileEntry,
    Manifest,
    ModelDescription,
    Threshold,
    TrainingSettings,
)
from churnops.artifact.reader import ModelArtifact, load_artifact, sha256_bytes
from churnops.artifact.writer import rewrite_reports, write_artifact

__all__ = [
    "EVALUATION_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "HISTORY_FILE",
    "LAYOUT_FILE",
    "MANIFEST",
    "MANIFEST_DIGEST",
    "PIPELINE_FILE",
    "PROFILE_FILE",
    "REPORT_FILE",
    "REPORT_HTML_FILE",
    "SERVING_DIR",
    "SERVING_MODEL_SUFFIXES",
    "SERVING_SPEC",
    "UNAVAILABLE_FILE",
    "DataInfo",
    "FileEntry",
    "Manifest",
    "ModelArtifact",
    "ModelDescription",
    "Threshold",
    "TrainingSettings",
    "load_artifact",
    "rewrite_reports",
    "sha256_bytes",
    "write_artifact",
]
