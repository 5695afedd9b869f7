"""A drift report as one self-contained HTML page: no scripts, no links, plots inline.

Everything shown comes from the :class:`~churnops.monitoring.drift.DriftReport` (which holds the
window's binned shares and quantiles) and the reference profile; every text taken from data —
column names, categories, notes — is escaped. Plots are drawn with matplotlib's Agg renderer
into base64 PNG, so no text from data reaches the page inside an image's markup either.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from churnops.monitoring.drift import DriftReport, FeatureDrift, PredictionDrift

MAX_LABEL_CHARS = 24
_COLOURS = {"reference": "#4c78a8", "window": "#f58518"}
_STATUS_CLASS = {"drift": "bad", "quality": "bad", "warn": "warn", "ok": "ok", "no data": "warn"}
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { background: #fbe3e3; } .warn { background: #fdf3d7; } .ok { background: #e6f4e6; }
img { max-width: 100%; } figure { margin: 1.5em 0; } small { color: #666; }
"""


def render_html(
    report: DriftReport,
    profile: Mapping[str, Any] | None = None,
    *,
    title: str = "Drift report",
    context: Mapping[str, str] | None = None,
) -> str:
    """Render ``report`` as a complete HTML page.

    Parameters
    ----------
    report
        The result of :func:`~churnops.monitoring.drift.check_drift`.
    profile
        The reference profile the report was computed against: adds the reference quantiles
        (cumulative distribution) next to the binned shares in the plots.
    title
        The page's heading.
    context
        Lines to show under the heading, such as the model and the window's time span.
    """
    reference = (profile or {}).get("features", {})
    scores = (profile or {}).get("scores", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if context:
        parts.append("<p>")
        parts.append("<br>".join(f"{escape(k)}: {escape(v)}" for k, v in context.items()))
        parts.append("</p>")
    parts.append(_summary(report))
    parts.append(_findings(report))
    parts.append("<h2>Features</h2>")
    parts.append(_feature_table(report))
    if report.prediction is not None:
        parts.append("<h2>Predictions</h2>")
        parts.append(_prediction_table(report.prediction))
        parts.append(_plot_prediction(report.prediction, scores.get("quantiles")))
    drifted = [f for f in report.features if f.drifted]
    if drifted:
        parts.append("<h2>Drifted features</h2>")
        for feature in drifted:
            quantiles = (reference.get(feature.name) or {}).get("quantiles")
            parts.append(_plot_feature(feature, quantiles))
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary(report: DriftReport) -> str:
    t = report.thresholds
    flagged = ", ".join(escape(name) for name in report.flagged) or "none"
    prediction = "not checked"
    if report.prediction is not None:
        prediction = "drifted" if report.prediction.drifted else "stable"
    verdict = "alarm" if report.any_alarm else "no alarm"
    lines = [
        f'<p><strong class="{"bad" if report.any_alarm else "ok"}">{verdict}</strong> — '
        f"{report.rows} rows; drifted features: {flagged}; predictions: {prediction}.</p>",
        f"<p><small>Drift: PSI ≥ {t.psi_alarm:g} and p &lt; {report.alpha_per_test:.2g} "
        f"(α {t.alpha:g}, Bonferroni over the tests run). Warnings from PSI ≥ {t.psi_warn:g}. "
        f"Data quality: missing rate +{t.missing_increase:g}, unseen categories "
        f"≥ {t.unseen_share:g}, out of range ≥ {t.out_of_range_share:g}. "
        f"Prediction drift: PSI ≥ {t.prediction_psi:g} and p &lt; "
        f"{report.alpha_per_test:.2g}.</small></p>",
    ]
    lines += [f"<p><small>{escape(note)}</small></p>" for note in report.notes]
    return "\n".join(lines)


def _findings(report: DriftReport) -> str:
    if not report.findings:
        return "<p>No findings.</p>"
    rows = [
        f'<tr class="{"bad" if f.severity == "alarm" else "warn"}"><td>{escape(f.severity)}</td>'
        f"<td>{escape(f.kind)}</td><td>{escape(f.feature or 'predictions')}</td>"
        f"<td>{escape(f.message)}</td></tr>"
        for f in report.findings
    ]
    return (
        "<h2>Findings</h2><table><tr><th>severity</th><th>kind</th><th>feature</th>"
        "<th>finding</th></tr>" + "".join(rows) + "</table>"
    )


def _feature_table(report: DriftReport) -> str:
    head = (
        "<tr><th>feature</th><th>kind</th><th>status</th><th>PSI</th><th>test</th>"
        "<th>p-value</th><th>present</th><th>missing (training)</th><th>unseen</th>"
        "<th>out of range</th><th>refused</th><th>notes</th></tr>"
    )
    rows = []
    for f in report.features:
        unseen = ""
        if f.kind == "categorical":
            unseen = _pct(f.unseen_share)
            if f.unseen_top:
                shown = ", ".join(f"{value} ×{n}" for value, n in f.unseen_top)
                unseen += f"<br><small>{escape(shown)}</small>"
        rows.append(
            f'<tr class="{_STATUS_CLASS[f.status]}"><td>{escape(f.name)}</td>'
            f"<td>{escape(f.kind)}</td><td>{escape(f.status)}</td>"
            f'<td class="n">{_fixed(f.psi, 3)}</td><td>{escape(f.test or "–")}</td>'
            f'<td class="n">{_sci(f.p_value)}</td><td class="n">{f.present}</td>'
            f'<td class="n">{_pct(f.missing_rate)} ({_pct(f.reference_missing_rate)})</td>'
            f'<td class="n">{unseen}</td>'
            f'<td class="n">{_pct(f.out_of_range_share) if f.kind == "numeric" else ""}</td>'
            f'<td class="n">{f.invalid}</td><td>{escape("; ".join(f.notes))}</td></tr>'
        )
    return "<table>" + head + "".join(rows) + "</table>"


def _prediction_table(p: PredictionDrift) -> str:
    return (
        "<table><tr><th>rows</th><th>PSI</th><th>KS p-value</th><th>mean</th>"
        "<th>held-out mean</th><th>drifted</th><th>notes</th></tr>"
        f'<tr class="{"bad" if p.drifted else "ok"}"><td class="n">{p.rows}</td>'
        f'<td class="n">{_fixed(p.psi, 3)}</td><td class="n">{_sci(p.p_value)}</td>'
        f'<td class="n">{_fixed(p.window_mean, 3)}</td>'
        f'<td class="n">{_fixed(p.reference_mean, 3)}</td><td>{"yes" if p.drifted else "no"}</td>'
        f"<td>{escape('; '.join(p.notes))}</td></tr></table>"
    )


def _plot_feature(f: FeatureDrift, quantiles: Sequence[float] | None) -> str:
    caption = f"{f.name}: PSI {_fixed(f.psi, 3)}, p {_sci(f.p_value)}"
    ecdf = quantiles if f.kind == "numeric" and f.window_quantiles else None
    image = _figure(f.bins, f.reference_shares, f.window_shares, ecdf, f.window_quantiles)
    return _figure_html(image, caption)


def _plot_prediction(p: PredictionDrift, quantiles: Sequence[float] | None) -> str:
    if not p.window_shares:
        return ""
    caption = f"probability of the positive class: PSI {_fixed(p.psi, 3)}, p {_sci(p.p_value)}"
    image = _figure(p.bins, p.reference_shares, p.window_shares, quantiles, p.window_quantiles)
    return _figure_html(image, caption)


def _figure_html(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _figure(
    bins: Sequence[str],
    reference: Sequence[float],
    window: Sequence[float],
    reference_quantiles: Sequence[float] | None,
    window_quantiles: Sequence[float],
) -> bytes:
    """Shares per bin side by side and, when quantiles are known, both CDFs: a PNG."""
    # Text from data is drawn as given: no mathtext for a "$" in a category.
    with matplotlib.rc_context({"text.parse_math": False}):
        panels = 2 if reference_quantiles and window_quantiles else 1
        fig = Figure(figsize=(5.5 * panels, 3.4), layout="constrained")
        FigureCanvasAgg(fig)
        bars = fig.add_subplot(1, panels, 1)
        x = np.arange(len(bins))
        if reference:
            bars.bar(x - 0.2, reference, 0.4, label="reference", color=_COLOURS["reference"])
        if window:
            bars.bar(x + 0.2, window, 0.4, label="window", color=_COLOURS["window"])
        bars.set_xticks(x, [_short(b) for b in bins], rotation=45, ha="right", fontsize=8)
        bars.set_ylabel("share of present values")
        bars.legend(fontsize=8)
        if panels == 2 and reference_quantiles:
            cdf = fig.add_subplot(1, panels, 2)
            for name, points in (("reference", reference_quantiles), ("window", window_quantiles)):
                cdf.plot(points, _grid(points), label=name, color=_COLOURS[name])
            cdf.set_ylabel("cumulative share")
            cdf.legend(fontsize=8)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _grid(quantiles: Sequence[float]) -> np.ndarray:
    return np.linspace(0, 1, len(quantiles))


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _fixed(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _sci(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
