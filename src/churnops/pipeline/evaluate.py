"""Held-out evaluation and the choice of a decision threshold."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sklearn import metrics as skm

from churnops.errors import ConfigError

ThresholdStrategy = Literal["fixed", "f1", "cost"]


@dataclass(frozen=True)
class ThresholdPolicy:
    """How the probability cut-off between the two labels is set.

    Attributes
    ----------
    strategy
        ``"fixed"``: use ``value`` (0.5 is the chapter's argmax). ``"f1"``: the threshold that
        maximises F1 on validation rows. ``"cost"``: the one minimising
        ``cost_false_positive·FP + cost_false_negative·FN`` on validation rows.
    value
        The threshold for ``"fixed"``.
    cost_false_positive, cost_false_negative
        Costs for ``"cost"``: e.g. a retention offer wasted vs a customer lost.
    validation_size
        Share of the training rows held out to choose the threshold (not ``"fixed"``).
    """

    strategy: ThresholdStrategy = "fixed"
    value: float = 0.5
    cost_false_positive: float = 1.0
    cost_false_negative: float = 5.0
    validation_size: float = 0.2

    def __post_init__(self) -> None:
        if self.strategy not in ("fixed", "f1", "cost"):
            raise ConfigError(f"unknown threshold strategy {self.strategy!r}")
        if not 0.0 < self.value < 1.0:
            raise ConfigError(f"threshold {self.value} is not between 0 and 1")
        if self.cost_false_positive < 0 or self.cost_false_negative < 0:
            raise ConfigError("costs must not be negative")
        if not 0.0 < self.validation_size < 1.0:
            raise ConfigError("validation_size must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form recorded in the artifact."""
        return asdict(self)


def choose_threshold(
    is_positive: np.ndarray, p_positive: np.ndarray, policy: ThresholdPolicy
) -> float:
    """Return the threshold ``policy`` asks for, measured on (validation) rows.

    A row is predicted positive when its probability is at least the threshold.
    """
    if policy.strategy == "fixed":
        return policy.value
    y = np.asarray(is_positive, dtype=bool)
    p = np.asarray(p_positive, dtype=np.float64)
    if policy.strategy == "f1":
        precision, recall, thresholds = skm.precision_recall_curve(y, p)
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
        return float(thresholds[int(np.argmax(f1[:-1]))])
    # Cost: try every distinct probability as a cut-off (and "nobody positive").
    candidates = np.unique(p)
    order = np.argsort(p)
    p_sorted, y_sorted = p[order], y[order]
    positives = int(y.sum())
    # For threshold t, rows with p >= t are positive. Count them from the top.
    cut = np.searchsorted(p_sorted, candidates, side="left")
    tp = positives - np.concatenate([[0], np.cumsum(y_sorted)])[cut]
    fp = (len(p) - cut) - tp
    fn = positives - tp
    cost = policy.cost_false_positive * fp + policy.cost_false_negative * fn
    none_positive_cost = policy.cost_false_negative * positives
    best = int(np.argmin(cost))
    if none_positive_cost < cost[best]:
        return float(np.nextafter(candidates[-1], np.inf))
    return float(candidates[best])


def evaluate(is_positive: np.ndarray, p_positive: np.ndarray, threshold: float) -> dict[str, Any]:
    """Return classification metrics of probabilities ``p_positive`` on held-out rows.

    Ranking and probability metrics (ROC AUC, PR AUC, log loss, Brier) use the probabilities;
    accuracy, precision, recall, F1 and the confusion matrix use the labels at ``threshold``.
    """
    y = np.asarray(is_positive, dtype=bool)
    p = np.asarray(p_positive, dtype=np.float64)
    return {
        "rows": len(y),
        "positive_rate": float(y.mean()),
        "threshold": threshold,
        **_label_metrics(y, p >= threshold),
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "log_loss": float(skm.log_loss(y, p, labels=[False, True])),
        "brier": float(skm.brier_score_loss(y, p)),
    }


def baseline_metrics(
    is_positive: np.ndarray, train_positive_rate: float, threshold: float
) -> dict[str, dict[str, Any]]:
    """Metrics, on the same held-out rows, of the references a model has to beat.

    ``prior``: every row gets the training rows' positive rate as its probability (a model
    that learned nothing about customers), judged with the model's threshold. ``majority``:
    every row gets the training rows' majority label; it has no probabilities, so only the
    label metrics.
    """
    y = np.asarray(is_positive, dtype=bool)
    prior = evaluate(y, np.full(len(y), train_positive_rate), threshold)
    majority_positive = train_positive_rate > 0.5
    majority = _label_metrics(y, np.full(len(y), majority_positive))
    return {
        "prior": {**prior, "probability": train_positive_rate},
        "majority": {"rows": len(y), "predicts_positive": majority_positive, **majority},
    }


def _label_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted, labels=[False, True]).ravel()
    return {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "precision": float(skm.precision_score(y, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y, predicted, zero_division=0)),
        "f1": float(skm.f1_score(y, predicted, zero_division=0)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
