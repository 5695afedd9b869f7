"""Model performance on logged predictions: realised once labels arrive, estimated before.

Realised figures use the labels attached to logged predictions (``churnops monitor labels``,
``POST /feedback``). Before they arrive, performance is estimated from the probabilities
themselves, taken as calibrated (confidence-based estimation): a record scored ``p`` is a
churner with probability ``p``, so the expected confusion matrix, ROC AUC and log loss follow
from the scores alone. The estimate holds while the model stays calibrated on the new data; the
realised figures, shown beside it, say when it stops holding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from churnops.monitoring.window import Window
from churnops.pipeline.evaluate import evaluate

CALIBRATION_BINS = 10


def estimated(p: np.ndarray, threshold: float) -> dict[str, float]:
    """Expected ROC AUC, log loss, precision, recall and F1 if the probabilities are calibrated."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    predicted = p >= threshold
    tp, fp = float(p[predicted].sum()), float((1 - p[predicted]).sum())
    fn = float(p[~predicted].sum())
    # AUC: expected share of (churner, stayer) pairs ranked right, ties counted half.
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    negatives = 1 - sorted_p
    below = np.concatenate([[0.0], np.cumsum(negatives)[:-1]])  # stayers' mass scored lower
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    group_neg = np.add.reduceat(negatives, first)
    tie_below = np.repeat(below[first], counts)
    tie_mass = np.repeat(group_neg, counts)
    pairs = float(p.sum() * negatives.sum())
    wins = float(np.sum(sorted_p * (tie_below + 0.5 * (tie_mass - negatives))))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "rows": float(len(p)),
        "roc_auc": wins / pairs if pairs else float("nan"),
        "log_loss": float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p)))),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "positive_rate": float(p.mean()),
    }


def calibration(truth: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Mean probability vs observed churn rate per probability decile, and their weighted gap."""
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    bins = np.clip(np.digitize(p, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    table = []
    gap = 0.0
    for b in range(CALIBRATION_BINS):
        inside = bins == b
        if not inside.any():
            continue
        mean_p, observed = float(p[inside].mean()), float(truth[inside].mean())
        gap += inside.mean() * abs(mean_p - observed)
        table.append({"bin": f"{edges[b]:.1f}–{edges[b + 1]:.1f}", "rows": int(inside.sum()),
                      "mean_probability": mean_p, "observed_rate": observed})  # fmt: skip
    return {"expected_calibration_error": float(gap), "bins": table}


def performance(
    window: Window, positive_label: str, threshold: float, period: str | None = None
) -> list[dict[str, Any]]:
    """Realised and estimated figures for the whole window, then for each ``period``.

    ``period`` is a pandas frequency (``"D"``, ``"W"``, ``"h"``…); rows are grouped by the time
    they were logged. A period's realised figures need labelled rows of both classes.
    """
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(window.rows, dtype=bool))]
    if period is not None and window.rows:
        stamps = window.logged_at.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(period)
        for stamp in sorted(stamps.unique()):
            groups.append((str(stamp), (stamps == stamp).to_numpy()))
    out = []
    for name, inside in groups:
        p = window.probabilities[inside]
        actual = window.actual[inside]
        known = actual.notna().to_numpy()
        row: dict[str, Any] = {
            "window": name,
            "rows": int(inside.sum()),
            "labelled": int(known.sum()),
            "estimated": estimated(p, threshold),
        }
        truth = (actual[known].astype(str) == positive_label).to_numpy()
        if known.any() and 0 < truth.sum() < len(truth):
            row["realised"] = evaluate(truth, p[known], threshold)
            row["calibration"] = calibration(truth, p[known])
        out.append(row)
    return out


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per window: realised and estimated ROC AUC, log loss and F1."""
    lines = []
    for row in rows:
        real, guess = row.get("realised", {}), row["estimated"]
        lines.append({
            "window": row["window"], "rows": row["rows"], "labelled": row["labelled"],
            "roc_auc": real.get("roc_auc"), "roc_auc_estimated": guess["roc_auc"],
            "log_loss": real.get("log_loss"), "log_loss_estimated": guess["log_loss"],
            "f1": real.get("f1"), "f1_estimated": guess["f1"],
            "calibration_error": row.get("calibration", {}).get("expected_calibration_error"),
        })  # fmt: skip
    return pd.DataFrame(lines)
