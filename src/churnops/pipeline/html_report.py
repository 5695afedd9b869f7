"""The training report of a model as one self-contained HTML page.

Everything shown comes from the artifact: the manifest (metrics and baselines, selection, data
and schema), its stored evaluation data (``evaluation.json``: held-out labels and scores, the
model's importances) and its search history. The page has no scripts and no links; the CSS is
inline and every plot is an inline SVG drawn with matplotlib's SVG backend, its text kept
as text (so it can be read and checked) and every ``id`` prefixed with the plot's own.

Each plot sits in ``<figure class="plot" id="…">`` with an ``<svg>`` and a ``<figcaption>``;
the ids are :data:`PLOT_IDS`. Every text taken from data (column names, categories, the model's
name) is escaped; matplotlib escapes what it draws and ``text.parse_math`` is off, so a ``$``
in a category is drawn as it is.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from html import escape
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from churnops.artifact import EVALUATION_FILE, HISTORY_FILE, ModelArtifact, ModelDescription
from churnops.errors import ArtifactError
from churnops.pipeline.importance import field_importance
from churnops.pipeline.report import SYNTHETIC_WARNING, config_text, selection_method

# The plots and their element ids, in page order.
PLOT_IDS = (
    "roc",
    "pr",
    "calibration",
    "confusion",
    "scores",
    "importance",
    "search-history",
)
# Curves are drawn with at most this many points (a large held-out set has one per row).
MAX_CURVE_POINTS = 1000
MAX_SHOWN_CATEGORIES = 6
MAX_IMPORTANCE_BARS = 25
_BLUE, _ORANGE, _GREY = "#4c78a8", "#f58518", "#888888"
_ESTIMATOR_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")
_METRICS = (
    ("roc_auc", "ROC AUC", True),
    ("pr_auc", "PR AUC (average precision)", True),
    ("log_loss", "Log loss", False),
    ("brier", "Brier score", False),
    ("accuracy", "Accuracy", True),
    ("precision", "Precision", True),
    ("recall", "Recall", True),
    ("f1", "F1", True),
)
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222;
  padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.warning { background: #fbe3e3; border: 1px solid #d99; padding: .6em 1em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure.plot { margin: 0; flex: 1 1 26em; max-width: 40em; }
figure.plot svg { width: 100%; height: auto; }
figcaption, small { color: #555; font-size: .9em; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def render_training_report(
    model: ModelDescription,
    evaluation: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
) -> str:
    """Render the training report of ``model`` as a complete HTML page.

    Parameters
    ----------
    model
        The model's description (the manifest's fields).
    evaluation
        The artifact's stored evaluation data (see :func:`evaluation_data`).
    history
        The search's trials (``search_history.jsonl``), possibly empty.

    The page depends on nothing else (not the artifact's version, which is a digest of its
    files, this page among them), so rebuilding it from the same artifact gives the same page.
    """
    figures = report_figures(model, evaluation, history)
    title = f"Churn model {model.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}: training report</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}: training report</h1>",
        _heading_facts(model),
    ]
    if model.data.synthetic:
        warning = escape(SYNTHETIC_WARNING).replace("**", "")
        parts.append(f'<p class="warning" id="synthetic-warning">{warning}</p>')
    parts += [
        _metrics_section(model),
        _evaluation_section(model, figures),
        _importance_section(evaluation, figures),
        _search_section(model, history, figures),
        _selection_section(model),
        _data_section(model, evaluation),
        _provenance_section(model),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def evaluation_data(
    is_positive: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    positive_rates: Mapping[str, float],
    importance: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The artifact's ``evaluation.json``: what the report is rebuilt from.

    ``is_positive`` and ``scores`` are the held-out rows' labels and the evaluated model's
    probabilities of the positive label (the ones the manifest's metrics are computed from);
    ``positive_rates`` the target's rate in ``all``, ``train`` and ``test`` rows.
    """
    return {
        "held_out": {
            "is_positive": [int(v) for v in np.asarray(is_positive, dtype=bool)],
            "scores": [float(v) for v in np.asarray(scores, dtype=np.float64)],
        },
        "threshold": float(threshold),
        "positive_rates": {k: float(v) for k, v in positive_rates.items()},
        "importance": dict(importance) if importance is not None else None,
    }


def report_figures(
    model: ModelDescription,
    evaluation: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
) -> dict[str, Figure]:
    """Every plot of the report, by id; a plot without data (no importances, no trial logged)
    is left out."""
    y, p = held_out(evaluation)
    threshold = float(evaluation.get("threshold", model.threshold.value))
    labels = model.schema_["positive_label"], _negative_label(model)
    figures = {
        "roc": _roc(y, p),
        "pr": _pr(y, p),
        "calibration": _calibration(y, p),
        "confusion": _confusion(y, p, threshold, labels),
        "scores": _scores(y, p, threshold, labels),
    }
    importance = evaluation.get("importance")
    if importance and importance.get("columns"):
        figures["importance"] = _importance(field_importance(importance["columns"]), importance)
    trials = [t for t in history if _finite(t.get("validation_loss"))]  # a failed trial: inf
    if trials:
        figures["search-history"] = _search_history(trials, model.fitting.selection)
    return figures


def held_out(evaluation: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The held-out labels (True: positive) and scores of the stored evaluation data."""
    rows = evaluation["held_out"]
    return (
        np.asarray(rows["is_positive"], dtype=bool),
        np.asarray(rows["scores"], dtype=np.float64),
    )


# --- page sections -----------------------------------------------------------------------------


def _heading_facts(model: ModelDescription) -> str:
    search, threshold = model.automl, model.threshold
    facts = [
        f"Chosen by FLAML: <code>{escape(str(search.best_estimator))}</code> "
        f"({escape(str(search.estimator_class))}) after {search.trials} trials",
        f"decision threshold {threshold.value:.4f} ({escape(threshold.strategy)})",
    ]
    return f'<p id="summary">{"; ".join(facts)}.</p>'


def _metrics_section(model: ModelDescription) -> str:
    test = model.test_metrics
    baselines = model.metrics.get("baselines") or {}
    prior, majority = baselines.get("prior") or {}, baselines.get("majority") or {}
    head = "<tr><th>metric</th><th>model</th>"
    notes = []
    if prior:
        head += "<th>prior baseline</th>"
        notes.append(
            f"<b>prior</b>: every customer gets the training rows' churn rate "
            f"({prior.get('probability', 0.0):.3f}) as probability, judged at the model's "
            "threshold"
        )
    if majority:
        head += "<th>majority baseline</th>"
        shown = model.schema_["positive_label"] if majority.get("predicts_positive") else None
        label = shown if shown is not None else _negative_label(model)
        notes.append(
            f"<b>majority</b>: every customer gets the training rows' majority label "
            f"(<code>{escape(str(label))}</code>); no probabilities"
        )
    head += "<th>better than</th></tr>"
    rows = []
    for key, label, higher_is_better in _METRICS:
        value = test.get(key)
        cells = f"<td>{label}</td><td class='n'>{_fixed(value, 4)}</td>"
        beats = []
        for name, reference in (("prior", prior), ("majority", majority)):
            if not reference:
                continue
            other = reference.get(key)
            cells += f"<td class='n'>{_fixed(other, 4)}</td>"
            if _better(value, other, higher_is_better):
                beats.append(name)
        rows.append(f"<tr>{cells}<td>{', '.join(beats) or '–'}</td></tr>")
    rows_note = (
        f"{test.get('rows', 0)} held-out rows the model never saw, "
        f"churn rate {_pct(test.get('positive_rate'))}"
    )
    explained = "".join(f"<li>{n}</li>" for n in notes)
    return (
        '<section id="metrics"><h2>Held-out metrics</h2>'
        f"<p>{rows_note}. Label metrics at the decision threshold "
        f"{model.threshold.value:.4f}; lower is better for log loss and Brier score.</p>"
        f'<table id="metrics-table">{head}{"".join(rows)}</table>'
        + (f"<ul>{explained}</ul>" if explained else "")
        + "</section>"
    )


def _evaluation_section(model: ModelDescription, figures: Mapping[str, Figure]) -> str:
    captions = {
        "roc": "ROC curve of the held-out rows; the diagonal is the prior baseline.",
        "pr": "Precision-recall curve of the held-out rows; the horizontal line is the prior "
        "baseline (the churn rate).",
        "calibration": "Calibration: mean predicted probability against the observed churn rate "
        "in ten bins of equal size; the diagonal is perfect calibration.",
        "confusion": f"Confusion matrix at the decision threshold {model.threshold.value:.4f}.",
        "scores": "Distribution of the held-out probabilities by actual label, with the "
        "decision threshold.",
    }
    plots = "".join(_figure_html(figures[k], k, captions[k]) for k in captions)
    return (
        '<section id="evaluation"><h2>Held-out evaluation</h2>'
        f'<div class="plots">{plots}</div></section>'
    )


def _importance_section(evaluation: Mapping[str, Any], figures: Mapping[str, Figure]) -> str:
    importance = evaluation.get("importance")
    if "importance" not in figures or not importance:
        return (
            '<section id="importance-section"><h2>Feature importance</h2>'
            "<p>The model reports no feature importance.</p></section>"
        )
    what = {"gain": "total gain of its splits", "impurity": "mean decrease in impurity"}
    kind = what.get(str(importance.get("kind")), escape(str(importance.get("kind"))))
    caption = (
        f"Importance of each input field to the exported model "
        f"({escape(str(importance.get('estimator')))}: {kind}), one-hot columns summed back to "
        "their field, as a share of the total."
    )
    return (
        '<section id="importance-section"><h2>Feature importance</h2>'
        + _figure_html(figures["importance"], "importance", caption)
        + "</section>"
    )


def _search_section(
    model: ModelDescription, history: Sequence[Mapping[str, Any]], figures: Mapping[str, Figure]
) -> str:
    search, fitting = model.automl, model.fitting
    budget = fitting.search_budget_seconds
    facts = [
        f"{search.trials} trials logged",
        (f"search budget {budget:g} s; " if budget else "")
        + f"the search and FLAML's fit of the winner took {search.fit_seconds or 0.0:.1f} s",
        f"best found after {_fixed(search.time_to_find_best_seconds, 1)} s",
        f"best configuration: <code>{escape(config_text(search.best_config))}</code>",
    ]
    body = f"<p>{'; '.join(facts)}.</p>"
    if "search-history" in figures:
        caption = (
            "Validation loss of every trial over the search's wall-clock time, by estimator; "
            "the line is the best loss so far."
        )
        body += _figure_html(figures["search-history"], "search-history", caption)
    else:
        body += "<p>No trial was logged (the search stopped before its first log line).</p>"
    return f'<section id="search"><h2>AutoML search</h2>{body}</section>'


def _selection_section(model: ModelDescription) -> str:
    fitting = model.fitting
    selection = fitting.selection
    if selection is None:
        return (
            '<section id="selection"><h2>Selection</h2>'
            "<p>This artifact does not record how its model was selected.</p></section>"
        )
    final, evaluation = fitting.final, fitting.evaluation
    exported = (
        f"the same configuration refitted on all {final.rows} rows (the metrics are the "
        "held-out model's)"
        if final.refit
        else f"the evaluated one, fitted on {final.rows} rows"
    )
    items = [
        f"Trials ranked by {_code(selection_method(selection))} on {selection.rows} rows, "
        f"metric <code>{escape(selection.metric)}</code> (lower loss is better)",
        f"Held-out evaluation: the winner fitted on the {evaluation.model_fitted_on_rows} "
        f"training rows, scored on {evaluation.rows} rows it never saw",
        f"Exported model: {exported}",
    ]
    body = "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
    if selection.finalists:
        kind = "cross-validated" if selection.method == "cv" else "validation"
        rows = "".join(
            f"<tr><td><code>{escape(f.estimator)}</code></td>"
            f"<td class='n'>{f.validation_loss:.4f}</td><td class='n'>{f.trials}</td>"
            f"<td><code>{escape(config_text(f.config))}</code></td></tr>"
            for f in selection.finalists
        )
        body += (
            f"<p>Finalists: the best {kind} score of each estimator searched.</p>"
            f'<table id="finalists"><tr><th>estimator</th>'
            f"<th>{kind} loss ({escape(selection.metric)})</th><th>trials</th>"
            f"<th>configuration</th></tr>{rows}</table>"
        )
    return f'<section id="selection"><h2>Selection</h2>{body}</section>'


def _data_section(model: ModelDescription, evaluation: Mapping[str, Any]) -> str:
    data, schema = model.data, model.schema_
    features = schema["features"]
    numeric = sum(1 for f in features if f["kind"] == "numeric")
    rates = evaluation.get("positive_rates") or {}
    final_rows = data.final_fit_rows if data.final_fit_rows is not None else data.train_rows
    ids = ", ".join(f"<code>{escape(c)}</code>" for c in schema.get("id_columns", [])) or "none"
    ignored = ", ".join(f"<code>{escape(c)}</code>" for c in schema.get("ignored_columns", []))
    facts = [
        f"Source: {escape(str(data.source))} (sha256 <code>{escape(data.sha256[:16])}…</code>)",
        f"Rows: {data.rows} — train {data.train_rows}, validation {data.validation_rows}, "
        f"held-out test {data.test_rows}; the exported model is fitted on {final_rows}",
        f"Columns: {len(features)} input features ({numeric} numeric, "
        f"{len(features) - numeric} categorical), the target <code>{escape(schema['target'])}"
        f"</code>, ID columns dropped by the model: {ids}"
        + (f"; ignored: {ignored}" if ignored else ""),
        f"Target rate (<code>{escape(str(schema['positive_label']))}</code>): "
        + ", ".join(
            f"{name} {_pct(rates.get(name))}" for name in ("all", "train", "test") if name in rates
        ),
    ]
    facts += [f"Note: {escape(note)}" for note in data.notes]
    shares: dict[str, float] = {}
    importance = evaluation.get("importance")
    if importance and importance.get("columns"):
        shares = field_importance(importance["columns"])
    rows = []
    for f in features:
        if f["kind"] == "numeric":
            values = f"{_number(f.get('minimum'))} … {_number(f.get('maximum'))}"
            if f.get("integer"):
                values += " (integers)"
        else:
            categories = [str(c) for c in f.get("categories", [])]
            shown = ", ".join(categories[:MAX_SHOWN_CATEGORIES])
            more = len(categories) - MAX_SHOWN_CATEGORIES
            values = f"{len(categories)} categories: {escape(shown)}" + (
                f", … ({more} more)" if more > 0 else ""
            )
        share = _pct(shares.get(f["name"])) if shares else "–"
        rows.append(
            f"<tr><td><code>{escape(f['name'])}</code></td><td>{escape(f['kind'])}</td>"
            f"<td class='n'>{_pct(f.get('missing_rate'))}</td><td>{values}</td>"
            f"<td class='n'>{share}</td></tr>"
        )
    return (
        '<section id="data"><h2>Data</h2><ul>'
        + "".join(f"<li>{fact}</li>" for fact in facts)
        + '</ul><table id="features"><tr><th>feature</th><th>type</th><th>missing</th>'
        "<th>range or categories (training)</th><th>importance</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def _provenance_section(model: ModelDescription) -> str:
    git = model.git or {}
    commit = str(git.get("commit") or "unknown")
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    versions = ", ".join(f"{escape(k)} {escape(v)}" for k, v in sorted(model.versions.items()))
    return (
        '<section id="provenance"><h2>Provenance</h2>'
        f"<p>Code commit <code>{escape(commit)}</code>{dirty}. Libraries: {versions}.</p>"
        "</section>"
    )


# --- plots -------------------------------------------------------------------------------------


@contextmanager
def _drawing() -> Iterator[None]:
    # Text from data is drawn as given: no mathtext for a "$" in a category.
    with matplotlib.rc_context({"text.parse_math": False, "svg.fonttype": "none"}):
        yield


def _new_figure(width: float = 5.0, height: float = 3.8) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasSVG(fig)
    return fig


def _roc(y: np.ndarray, p: np.ndarray) -> Figure:
    with _drawing():
        fig = _new_figure()
        ax = fig.add_subplot()
        fpr, tpr, _ = skm.roc_curve(y, p)
        fpr, tpr = _thin(fpr, tpr)
        ax.plot(fpr, tpr, color=_BLUE, label=f"model (AUC {skm.roc_auc_score(y, p):.3f})")
        ax.plot([0, 1], [0, 1], color=_GREY, linestyle="--", label="prior baseline (AUC 0.5)")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), title="ROC curve (held-out rows)")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate (recall)")
        ax.legend(loc="lower right", fontsize=8)
    return fig


def _pr(y: np.ndarray, p: np.ndarray) -> Figure:
    with _drawing():
        fig = _new_figure()
        ax = fig.add_subplot()
        precision, recall, _ = skm.precision_recall_curve(y, p)
        recall, precision = _thin(recall, precision)
        ap = skm.average_precision_score(y, p)
        ax.step(recall, precision, where="post", color=_BLUE, label=f"model (AP {ap:.3f})")
        rate = float(y.mean())
        ax.axhline(rate, color=_GREY, linestyle="--", label=f"prior baseline ({rate:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), title="Precision-recall curve (held-out rows)")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.legend(loc="upper right", fontsize=8)
    return fig


def _calibration(y: np.ndarray, p: np.ndarray) -> Figure:
    with _drawing():
        fig = _new_figure()
        ax = fig.add_subplot()
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot([0, 1], [0, 1], color=_GREY, linestyle="--", label="perfectly calibrated")
        brier = skm.brier_score_loss(y, p)
        ax.plot(predicted, observed, marker="o", color=_BLUE, label=f"model (Brier {brier:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1), title="Calibration (held-out rows)")
        ax.set_xlabel("mean predicted probability of churn")
        ax.set_ylabel("observed churn rate")
        ax.legend(loc="upper left", fontsize=8)
    return fig


def _confusion(y: np.ndarray, p: np.ndarray, threshold: float, labels: tuple[str, str]) -> Figure:
    positive, negative = labels
    cells = skm.confusion_matrix(y, p >= threshold, labels=[False, True])
    with _drawing():
        fig = _new_figure(4.4, 3.8)
        ax = fig.add_subplot()
        # Cells as vector shapes (an image would be embedded as a PNG the page's policy refuses).
        ax.pcolormesh(cells, cmap="Blues", vmin=0)
        ax.set_aspect("equal")
        ax.invert_yaxis()  # actual labels top to bottom, as a confusion matrix is read
        total = max(int(cells.sum()), 1)
        for (row, column), count in np.ndenumerate(cells):
            dark = count > cells.max() / 2
            ax.text(column + 0.5, row + 0.5, f"{count}\n{count / total:.1%}", ha="center",
                    va="center", color="white" if dark else "black")  # fmt: skip
        ticks = [_short(negative), _short(positive)]
        ax.set_xticks([0.5, 1.5], ticks)
        ax.set_yticks([0.5, 1.5], ticks)
        ax.set_title(f"Confusion matrix at threshold {threshold:.3f}")
        ax.set_xlabel("predicted label")
        ax.set_ylabel("actual label")
    return fig


def _scores(y: np.ndarray, p: np.ndarray, threshold: float, labels: tuple[str, str]) -> Figure:
    positive, negative = labels
    with _drawing():
        fig = _new_figure()
        ax = fig.add_subplot()
        bins = [i / 25 for i in range(26)]
        for mask, label, colour in ((~y, negative, _BLUE), (y, positive, _ORANGE)):
            ax.hist(p[mask], bins=bins, alpha=0.6, color=colour, label=f"actual {_short(label)}")
        ax.axvline(threshold, color="black", linestyle=":", label=f"threshold {threshold:.3f}")
        ax.set(xlim=(0, 1), title="Held-out probabilities by actual label")
        ax.set_xlabel("predicted probability of churn")
        ax.set_ylabel("customers")
        ax.legend(fontsize=8)
    return fig


def _importance(shares: Mapping[str, float], importance: Mapping[str, Any]) -> Figure:
    top = list(shares.items())[:MAX_IMPORTANCE_BARS]
    with _drawing():
        fig = _new_figure(6.0, 1.2 + 0.26 * len(top))
        ax = fig.add_subplot()
        positions = np.arange(len(top))[::-1]
        ax.barh(positions, [share for _, share in top], color=_BLUE)
        ax.set_yticks(positions, [_short(name) for name, _ in top], fontsize=8)
        shown = "" if len(top) == len(shares) else f" (top {len(top)} of {len(shares)})"
        ax.set_title(f"Feature importance by input field{shown}")
        ax.set_xlabel(f"share of total {importance.get('kind', 'importance')}")
        ax.set_ylabel("input field")
    return fig


def _search_history(trials: Sequence[Mapping[str, Any]], selection: Any) -> Figure:
    times = np.array([float(t.get("wall_clock_time") or 0.0) for t in trials])
    losses = np.array([float(t["validation_loss"]) for t in trials])
    learners = [str(t.get("learner")) for t in trials]
    metric = selection.metric if selection is not None else "validation"
    with _drawing():
        fig = _new_figure(6.0, 3.8)
        ax = fig.add_subplot()
        for index, learner in enumerate(dict.fromkeys(learners)):
            mask = np.array([name == learner for name in learners])
            colour = _ESTIMATOR_COLOURS[index % len(_ESTIMATOR_COLOURS)]
            ax.scatter(times[mask], losses[mask], s=18, color=colour, label=_short(learner))
        order = np.argsort(times, kind="stable")
        ax.step(times[order], np.minimum.accumulate(losses[order]), where="post",
                color="black", linewidth=1, label="best so far")  # fmt: skip
        ax.set_title("AutoML search history")
        ax.set_xlabel("search wall-clock time (s)")
        ax.set_ylabel(f"validation loss, {metric} (lower is better)")
        ax.legend(fontsize=8)
    return fig


# --- HTML helpers ------------------------------------------------------------------------------

# Without these the SVG carries an RDF block of namespace URLs and the drawing date.
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(href="#|url\(#)')


def figure_svg(fig: Figure, plot_id: str) -> str:
    """The figure as an inline ``<svg>`` element whose ids all start with ``plot_id``.

    The XML prolog and namespace declarations are dropped (HTML parses inline SVG without
    them) and ``xlink:href`` becomes SVG 2's ``href``, so no URL is left in the markup.
    """
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": plot_id}):
        fig.savefig(buffer, format="svg", metadata=_NO_METADATA)
    svg = buffer.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)
    svg = svg.replace("xlink:href=", "href=")
    svg = _ID.sub(lambda m: f'id="{plot_id}-{m.group(1)}"', svg)
    svg = _REFERENCE.sub(lambda m: f"{m.group(1)}{plot_id}-", svg)
    title = fig.axes[0].get_title() if fig.axes else plot_id
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1)


def _figure_html(fig: Figure, plot_id: str, caption: str) -> str:
    return (
        f'<figure class="plot" id="{plot_id}">{figure_svg(fig, plot_id)}'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= MAX_CURVE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).round().astype(int))
    return x[keep], y[keep]


def _negative_label(model: ModelDescription) -> str:
    classes = [str(c) for c in model.schema_.get("classes", [])]
    positive = str(model.schema_["positive_label"])
    return next((c for c in classes if c != positive), f"not {positive}")


def _code(text: str) -> str:
    """Escape ``text`` and show its backticked names as code."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", escape(text))


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _better(value: object, other: object, higher_is_better: bool) -> bool:
    if not isinstance(value, int | float) or not isinstance(other, int | float):
        return False
    return value > other if higher_is_better else value < other


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _fixed(value: object, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def _pct(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "–"


def _number(value: Any) -> str:
    return "none" if value is None else f"{value:g}"


def artifact_report(artifact: ModelArtifact) -> str:
    """Render the training report of a verified artifact from what it stores.

    Raises
    ------
    ArtifactError
        The artifact has no stored evaluation data (written before reports were).
    """
    if EVALUATION_FILE not in artifact.files:
        raise ArtifactError(
            f"{artifact.path}: no stored evaluation data ({EVALUATION_FILE}): this artifact was "
            "written before training reports were; train it again to get one"
        )
    evaluation = artifact.read_json(EVALUATION_FILE)
    history: list[dict[str, Any]] = []
    if HISTORY_FILE in artifact.files:
        text = artifact.read_bytes(HISTORY_FILE).decode()
        history = [json.loads(line) for line in text.splitlines() if line.strip()]
    return render_training_report(artifact.manifest, evaluation, history)
