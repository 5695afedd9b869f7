"""The model being served: where it comes from, loading it, and swapping in a new one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from churnops.api.metrics import Metrics
from churnops.api.openapi import example_record
from churnops.artifact import REPORT_HTML_FILE, ModelArtifact, load_artifact
from churnops.errors import ArtifactError, ChurnopsError
from churnops.inference import Scorer, load_scorer

log = logging.getLogger("churnops.api")


@dataclass(frozen=True)
class ModelLocation:
    """Where the model to serve is now: a local artifact directory and, for a registry
    reference, what it resolved to: the registered model's name, its version and the alias
    followed (None for ``models:/NAME/VERSION``). Plain values, resolved by the caller."""

    path: Path
    registry_name: str | None = None
    registry_version: str | None = None
    registry_alias: str | None = None

    @property
    def registry_ref(self) -> str | None:
        """``models:/NAME/VERSION`` of a registry model, None for a plain directory."""
        if self.registry_name is None or self.registry_version is None:
            return None
        return f"models:/{self.registry_name}/{self.registry_version}"


ModelSource = Callable[[], ModelLocation]


@dataclass(frozen=True)
class ServedModel:
    """What the routes need: the verified artifact, its scorer and where it came from, and its
    training report's verified bytes (None when the artifact has none)."""

    artifact: ModelArtifact
    scorer: Scorer
    location: ModelLocation
    # Read with the model, so /report serves the page of the model as it was verified and
    # loaded, even after the report is rebuilt on disk (which keeps the model's version).
    report: bytes | None = None

    @property
    def version(self) -> str:
        """The version that answers: the artifact's own (unique per training run)."""
        return self.artifact.version

    @property
    def header_version(self) -> str:
        """``X-Model-Version``: the registry version served, else the artifact's version."""
        return self.location.registry_version or self.artifact.version

    @cached_property
    def logged_as(self) -> tuple[str, str, str | None]:
        """The prediction log's model name, model version and key column (the schema's first ID
        column, None without one) for this model's answers."""
        id_columns = self.artifact.schema.id_columns
        return self.artifact.name, self.artifact.version, id_columns[0] if id_columns else None


def load_served_model(location: ModelLocation) -> ServedModel:
    """Load, verify and smoke-test the model at ``location`` (blocking; run it off the loop).

    Raises
    ------
    ArtifactError
        The artifact fails verification, its runtime cannot load, or it cannot score a record
        built from its own schema.
    """
    artifact = load_artifact(location.path)
    scorer = load_scorer(artifact)
    try:
        scores = scorer.score_records([example_record(artifact.schema)])
    except ChurnopsError as exc:
        raise ArtifactError(f"{location.path}: cannot score a probe record ({exc})") from None
    p = float(scores.positive_probability[0])
    if not 0.0 <= p <= 1.0:
        raise ArtifactError(f"{location.path}: scored a probe record as {p}, not a probability")
    report = artifact.read_bytes(REPORT_HTML_FILE) if REPORT_HTML_FILE in artifact.files else None
    return ServedModel(artifact, scorer, location, report)


class ModelHolder:
    """Holds the served model and swaps in a new one only when it is sound.

    A swap is one assignment: a request holds the model it started with, so none fails or mixes
    two models. A model that fails verification, loading or the probe is refused, logged and
    counted; the old one keeps serving.
    """

    def __init__(self, source: ModelSource, metrics: Metrics) -> None:
        self.source = source
        self.metrics = metrics
        self.model: ServedModel | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Load the first model (start-up: a failure is the caller's to report)."""
        model = await run_in_threadpool(lambda: load_served_model(self.source()))
        self._serve(model)

    async def reload(self, reason: str) -> tuple[str, str]:
        """Reload from the source; return (outcome, message), outcome swapped|unchanged|refused."""
        async with self._lock:
            current = self.model
            try:
                location = await run_in_threadpool(self.source)
                if (
                    current is not None
                    and location.registry_version is not None
                    and location == current.location
                ):
                    return "unchanged", f"still serving {current.version}"
                candidate = await run_in_threadpool(load_served_model, location)
            except Exception as exc:  # a bad new model must never stop the service
                self.metrics.model_reloads.labels("refused").inc()
                shown = str(exc) if isinstance(exc, ChurnopsError) else repr(exc)
                kept = f"; still serving {current.version}" if current else ""
                log.error(f"model reload ({reason}) refused: {shown}{kept}")
                return "refused", f"new model refused: {shown}{kept}"
            if current is not None and candidate.version == current.version:
                return "unchanged", f"still serving {current.version}"
            self._serve(candidate)
            self.metrics.model_reloads.labels("swapped").inc()
            was = current.version if current else "none"
            log.info(f"model reload ({reason}): now serving {candidate.version} (was {was})")
            return "swapped", f"now serving {candidate.version} (was {was})"

    async def follow(self, every: float) -> None:
        """Check the source every ``every`` seconds (a registry alias moving to a new version)."""
        while True:
            await asyncio.sleep(every)
            await self.reload("registry poll")

    def _serve(self, model: ServedModel) -> None:
        previous, self.model = self.model, model
        artifact, scorer = model.artifact, model.scorer
        info = self.metrics.model_info
        if previous is not None:
            info.remove(previous.artifact.name, previous.version, previous.scorer.runtime)
        info.labels(artifact.name, artifact.version, scorer.runtime).set(1)
        path = (
            "fast data-only path" if scorer.fast else f"FALLBACK pipeline: {scorer.fallback_reason}"
        )
        ref = model.location.registry_ref
        registry = f" ({ref})" if ref else ""
        log.info(f"serving model {artifact.name} {artifact.version}{registry} with "
                 f"{scorer.runtime} ({path})")  # fmt: skip
        if artifact.synthetic:
            log.warning("this model was trained on SYNTHETIC data: do not use its predictions")
