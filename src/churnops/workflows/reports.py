"""Build a model's training report again from what its artifact stores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from churnops.errors import ConfigError


@dataclass(frozen=True)
class ReportOutcome:
    """Where the page went, for which model, and whether its bytes changed."""

    path: Path
    model: str
    version: str
    changed: bool
    in_artifact: bool


def build_report(ref: str, out: Path | None = None, uri: str | None = None) -> ReportOutcome:
    """Render the HTML training report of the model ``ref`` names.

    Without ``out`` the page replaces the artifact's own ``report.html`` through the artifact
    writer (the manifest lists its new hash; the model's version is kept), so the artifact still
    verifies. With ``out`` the page is written there and the artifact is left as it is; a
    registered model (``models:/NAME@ALIAS``) is never changed, so it needs ``out``.

    Raises
    ------
    ArtifactError, IntegrityError
        The artifact fails verification, or stores no evaluation data to build from.
    ConfigError
        A registry reference without ``out``, or ``out`` inside the artifact.
    """
    from churnops.artifact import REPORT_HTML_FILE, rewrite_reports
    from churnops.pipeline.html_report import artifact_report
    from churnops.registry.models import is_registry_ref
    from churnops.workflows.models import open_model

    if out is None and is_registry_ref(ref):
        raise ConfigError(
            f"{ref} is a registered model, which is never changed: write its report elsewhere "
            "with --out FILE"
        )
    artifact = open_model(ref, uri)  # verified: a changed file refuses the whole artifact
    page = artifact_report(artifact).encode()
    if out is not None:
        if out.resolve().is_relative_to(artifact.path.resolve()):
            raise ConfigError(
                f"{out} is inside the artifact, where an unlisted file breaks its verification; "
                "leave out --out to rebuild the artifact's own report"
            )
        changed = not out.is_file() or out.read_bytes() != page
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(page)
        return ReportOutcome(out, artifact.name, artifact.version, changed, in_artifact=False)
    before = artifact.files.get(REPORT_HTML_FILE)
    rewritten = rewrite_reports(artifact, {REPORT_HTML_FILE: page})
    changed = before is None or before.sha256 != rewritten.files[REPORT_HTML_FILE].sha256
    return ReportOutcome(
        rewritten.path / REPORT_HTML_FILE, rewritten.name, rewritten.version, changed, True
    )
