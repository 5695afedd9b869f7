"""Retrain: a challenger against the champion on the same fresh rows; promote only if better."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.errors import ConfigError, DataError

if TYPE_CHECKING:
    from churnops.pipeline.build import AutoMLSettings

# metric → whether higher is better
COMPARED = {"roc_auc": True, "log_loss": False, "pr_auc": True, "brier": False}
TAG = "churnops.retrain."


@dataclass(frozen=True)
class RetrainRequest:
    """Retrain ``model`` (``models:/NAME@ALIAS``) on ``data``.

    ``holdout`` of the rows (stratified, ``settings.seed``) are set aside first and never used
    for fitting; the champion and the challenger are both scored on them. The challenger is
    promoted to the alias when it beats the champion on ``metric`` by at least ``margin``, or
    with ``force``.
    """

    data: Path
    model: str
    settings: AutoMLSettings
    tracking_uri: str
    out: Path | None = None  # default: HOME/models/NAME-challenger
    metric: str = "roc_auc"
    margin: float = 0.0
    force: bool = False
    holdout: float = 0.2
    experiment: str = "churnops"


@dataclass(frozen=True)
class RetrainOutcome:
    """Both models' figures on the fresh rows, and what was decided."""

    name: str
    alias: str
    champion_version: str
    challenger_version: str
    champion: dict[str, Any]
    challenger: dict[str, Any]
    promoted: bool
    reason: str
    run_id: str
    rows: int


def retrain(request: RetrainRequest) -> RetrainOutcome:
    """Train a challenger, compare it with the champion, register it, promote it if better.

    Raises
    ------
    ConfigError
        ``model`` is not a registry alias, the metric is unknown, or the margin is negative.
    DataError
        The data does not have the champion's target and labels.
    """
    from churnops.artifact import load_artifact
    from churnops.data.dataset import DataSpec, load_dataset, split_dataset
    from churnops.inference import load_scorer
    from churnops.pipeline.evaluate import evaluate
    from churnops.pipeline.train import export_model, positive_probability, train_model
    from churnops.registry.models import is_registry_ref, parse_ref, promote, register
    from churnops.registry.tracking import log_outcome, log_training
    from churnops.workflows.models import model_path, project_home

    if request.metric not in COMPARED:
        raise ConfigError(f"--metric must be one of {', '.join(COMPARED)}; got {request.metric!r}")
    if request.margin < 0:
        raise ConfigError(f"--margin must not be negative; got {request.margin}")
    parsed = parse_ref(request.model) if is_registry_ref(request.model) else None
    if parsed is None or parsed.alias is None:
        raise ConfigError(
            f"--model must name a registry alias, such as models:/churn@champion; "
            f"got {request.model!r}"
        )
    champion_dir = model_path(request.model, request.tracking_uri)
    champion = load_artifact(champion_dir)
    schema = champion.schema
    spec = DataSpec(schema.target, schema.positive_label, schema.id_columns, schema.ignored_columns)
    dataset = load_dataset(request.data, spec)
    if set(dataset.y.unique()) - set(schema.classes):
        raise DataError(
            f"{request.data}: target {schema.target!r} has labels {sorted(dataset.y.unique())}; "
            f"the champion knows {list(schema.classes)}"
        )
    rest, fresh = split_dataset(dataset, request.holdout, request.settings.seed)
    result = train_model(rest, request.settings)

    truth = (fresh.y == schema.positive_label).to_numpy()
    scorer = load_scorer(champion)
    columns = {name: fresh.X[name].to_numpy() for name in fresh.X.columns}
    champion_p = scorer.score_columns(columns, fresh.rows).positive_probability
    challenger_p = positive_probability(result.pipeline, fresh.X, schema.positive_label)
    champion_figures = evaluate(truth, champion_p, champion.threshold)
    challenger_figures = evaluate(truth, challenger_p, result.threshold)

    ours, theirs = challenger_figures[request.metric], champion_figures[request.metric]
    gain = ours - theirs if COMPARED[request.metric] else theirs - ours
    better = gain >= request.margin and gain > 0
    if request.force:
        reason = f"forced (gain {gain:+.4f} in {request.metric})"
    elif better:
        reason = f"{request.metric} better by {gain:+.4f} (margin {request.margin:g})"
    else:
        reason = f"{request.metric} gain {gain:+.4f} is below the margin {request.margin:g}"

    out = request.out or project_home() / "models" / f"{parsed.name}-challenger"
    artifact = export_model(result, out, name=parsed.name)
    run_id = log_training(artifact, request.tracking_uri, project_home(), request.experiment)
    version = register(run_id, parsed.name, request.tracking_uri)
    promoted = request.force or better
    if promoted:
        promote(parsed.name, version, request.tracking_uri, parsed.alias)
    figures = {
        f"retrain.{who}.{key}": float(value)
        for who, found in (("champion", champion_figures), ("challenger", challenger_figures))
        for key, value in found.items()
        if key in ("roc_auc", "log_loss", "f1", "pr_auc", "brier")
    }
    log_outcome(
        request.tracking_uri,
        run_id,
        {**figures, "retrain.fresh_rows": float(fresh.rows)},
        {
            f"{TAG}decision": "promoted" if promoted else "kept champion",
            f"{TAG}reason": reason,
            f"{TAG}champion_version": champion_dir.name,
            f"{TAG}alias": parsed.alias,
        },
    )
    return RetrainOutcome(
        name=parsed.name,
        alias=parsed.alias,
        champion_version=champion_dir.name,
        challenger_version=version,
        champion=champion_figures,
        challenger=challenger_figures,
        promoted=promoted,
        reason=reason,
        run_id=run_id,
        rows=fresh.rows,
    )
