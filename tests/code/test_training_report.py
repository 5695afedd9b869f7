"""The HTML training report: built at export, complete, self-contained, rebuilt verifiably."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from churnops.artifact import (
    EVALUATION_FILE,
    MANIFEST,
    REPORT_HTML_FILE,
    load_artifact,
    rewrite_reports,
    write_artifact,
)
from churnops.cli import app
from churnops.errors import ArtifactError
from churnops.pipeline.evaluate import evaluate
from churnops.pipeline.export import layout_from_pipeline
from churnops.pipeline.html_report import (
    PLOT_IDS,
    artifact_report,
    held_out,
    render_training_report,
    report_figures,
)
from churnops.pipeline.importance import field_importance

SECTIONS = (
    "summary", "metrics", "metrics-table", "evaluation", "importance-section", "search",
    "selection", "finalists", "data", "features", "provenance",
)  # fmt: skip
runner = CliRunner()


class _Page(HTMLParser):
    """Element ids, plot figures (with what they hold) and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.plots: dict[str, list[str]] = {}
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._plot: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.add(tag)
        if tag == "figure" and values.get("class") == "plot":
            self._plot = str(values["id"])
            self.plots[self._plot] = []
        elif self._plot is not None and tag in ("svg", "img", "figcaption"):
            self.plots[self._plot].append(tag)
        if values.get("id") and not (self._plot and tag not in ("figure",)):
            self.ids.append(str(values["id"]))
        self.urls += [str(v) for k, v in attrs if k in ("src", "href", "action") and v]

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._plot = None


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def artifact(synthetic_model):
    return synthetic_model[1]


@pytest.fixture(scope="module")
def html(artifact) -> str:
    return artifact.read_bytes(REPORT_HTML_FILE).decode()


def test_export_stores_the_report_and_its_data_in_the_manifest(artifact):
    for name in (REPORT_HTML_FILE, EVALUATION_FILE):
        assert name in artifact.files  # listed with its sha256: verified like every file
        assert len(artifact.manifest.files[name].sha256) == 64
    load_artifact(artifact.path)


def test_the_report_has_every_section_and_plot(html):
    page = parse(html)
    assert set(SECTIONS) <= set(page.ids), set(SECTIONS) - set(page.ids)
    assert tuple(page.plots) == PLOT_IDS
    for plot_id, inside in page.plots.items():
        assert inside == ["svg", "figcaption"], plot_id
    for text in ("prior baseline", "majority baseline", "AutoML search history", "Finalists"):
        assert text in html
    every_id = re.findall(r'\bid="([^"]+)"', html)  # the SVGs' own ids included
    assert len(set(every_id)) == len(every_id)


def test_the_report_references_nothing_outside_itself(html):
    page = parse(html)
    every_id = set(re.findall(r'\bid="([^"]+)"', html))
    assert page.urls
    assert all(u.startswith("#") and u[1:] in every_id for u in page.urls)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & page.tags
    assert "://" not in html  # no URL at all: the SVGs' namespace URLs are stripped too
    assert "@import" not in html
    assert "url(http" not in html
    assert "data:" not in html  # plots are vector shapes and text, not embedded images


def test_every_plot_has_a_title_and_labelled_axes(synthetic_model, artifact, html):
    history = [
        json.loads(line) for line in artifact.read_bytes("search_history.jsonl").splitlines()
    ]
    figures = report_figures(artifact.manifest, artifact.read_json(EVALUATION_FILE), history)
    assert tuple(figures) == PLOT_IDS
    for plot_id, fig in figures.items():
        ax = fig.axes[0]
        assert ax.get_title(), plot_id
        assert ax.get_xlabel(), plot_id
        assert ax.get_ylabel(), plot_id
        # The page's SVG carries the same text as text (fonts are not turned into paths).
        svg = re.search(rf'<figure class="plot" id="{plot_id}">(<svg.*?</svg>)', html, re.S)
        assert svg is not None, plot_id
        texts = {"".join(e.itertext()).strip() for e in ET.fromstring(svg.group(1)).iter("text")}
        assert {ax.get_title(), ax.get_xlabel(), ax.get_ylabel()} <= texts, plot_id


def test_stored_evaluation_data_reproduces_the_manifest_metrics(artifact):
    evaluation = artifact.read_json(EVALUATION_FILE)
    y, p = held_out(evaluation)
    recorded = artifact.manifest.test_metrics
    recomputed = evaluate(y, p, evaluation["threshold"])
    assert len(y) == recorded["rows"] == artifact.manifest.data.test_rows
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1"):
        assert recomputed[key] == pytest.approx(recorded[key], abs=1e-12), key
    assert recomputed["confusion_matrix"] == recorded["confusion_matrix"]


def test_baselines_are_measured_on_the_same_rows(artifact):
    metrics = artifact.manifest.metrics
    prior, majority = metrics["baselines"]["prior"], metrics["baselines"]["majority"]
    test = metrics["test"]
    assert prior["rows"] == majority["rows"] == test["rows"]
    assert prior["roc_auc"] == pytest.approx(0.5)
    assert prior["pr_auc"] == pytest.approx(test["positive_rate"])
    rates = artifact.read_json(EVALUATION_FILE)["positive_rates"]
    assert prior["probability"] == pytest.approx(rates["train"])
    # Churners are the minority: the majority label is "stays", right on the stayers only.
    assert majority["predicts_positive"] is False
    assert majority["accuracy"] == pytest.approx(1 - test["positive_rate"])
    assert test["roc_auc"] > prior["roc_auc"]
    assert test["log_loss"] < prior["log_loss"]


def test_importances_sum_one_hot_columns_back_to_fields(synthetic_model, artifact):
    result = synthetic_model[0]
    importance = artifact.read_json(EVALUATION_FILE)["importance"]
    layout = layout_from_pipeline(result.pipeline, result.schema)
    assert len(importance["columns"]) == layout.width
    assert importance["kind"] == "gain"  # the synthetic search's winner is LightGBM
    shares = field_importance(importance["columns"])
    assert set(shares) == set(result.schema.feature_names)
    assert sum(shares.values()) == pytest.approx(1.0)
    contract = [c for c in importance["columns"] if c["field"] == "Contract"]
    assert len(contract) == len(result.schema.feature("Contract").categories)
    total = sum(c["importance"] for c in importance["columns"])
    expected = sum(c["importance"] for c in contract) / total
    assert shares["Contract"] == pytest.approx(expected)


def test_text_from_data_is_escaped(artifact):
    evil = "<script>alert(1)</script>"
    description = artifact.manifest.description().to_json()
    description["schema"]["features"][0]["name"] = evil
    description["name"] = evil
    evaluation = artifact.read_json(EVALUATION_FILE)
    first = artifact.manifest.schema_["features"][0]["name"]
    for column in evaluation["importance"]["columns"]:
        if column["field"] == first:
            column["field"] = evil
    model = type(artifact.manifest.description()).model_validate(description)
    html = render_training_report(model, evaluation, [])
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "No trial was logged" in html  # an empty search history leaves its plot out


def test_rendering_is_deterministic(artifact, html):
    assert artifact_report(artifact) == html


@pytest.fixture
def copy(artifact, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(artifact.path, target)
    return target


def test_cli_rebuilds_the_report_and_the_artifact_still_verifies(copy, html):
    before = load_artifact(copy)
    # Drop the page (as an artifact that stores its data but lost its report would be).
    files = {n: before.read_bytes(n) for n in before.files if n != REPORT_HTML_FILE}
    stripped = write_artifact(copy, files, before.manifest.description())
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert "report rebuilt" in result.output
    rebuilt = load_artifact(copy)  # verifies every file against the updated manifest
    assert rebuilt.version == stripped.version  # the model did not change
    page = rebuilt.read_bytes(REPORT_HTML_FILE).decode()
    assert parse(page).ids == parse(html).ids
    assert tuple(parse(page).plots) == PLOT_IDS
    assert page == html
    # Rebuilding again changes nothing, not even the manifest.
    manifest = (copy / MANIFEST).read_bytes()
    again = runner.invoke(app, ["report", str(copy)])
    assert again.exit_code == 0
    assert "unchanged" in again.output
    assert (copy / MANIFEST).read_bytes() == manifest


def test_cli_writes_elsewhere_without_touching_the_artifact(copy, tmp_path, html):
    manifest = (copy / MANIFEST).read_bytes()
    out = tmp_path / "pages" / "report.html"
    result = runner.invoke(app, ["report", str(copy), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == html
    assert (copy / MANIFEST).read_bytes() == manifest
    inside = runner.invoke(app, ["report", str(copy), "--out", str(copy / "r.html")])
    assert inside.exit_code == 1
    assert "inside the artifact" in inside.output
    load_artifact(copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("tamper", "sha256 does not match the manifest"),
        ("old", "no stored evaluation data"),
        ("registry", "is a registered model, which is never changed"),
    ],
)
def test_cli_refuses_in_one_line(copy, change, message):
    target = str(copy)
    if change == "tamper":
        (copy / "report.md").write_text("edited")
    elif change == "old":  # an artifact written before reports: no evaluation data, no page
        old = load_artifact(copy)
        keep = {
            n: old.read_bytes(n) for n in old.files if n not in (EVALUATION_FILE, REPORT_HTML_FILE)
        }
        write_artifact(copy, keep, old.manifest.description())
    else:
        target = "models:/churn@champion"
    result = runner.invoke(app, ["report", target])
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output


def test_only_reports_can_be_rewritten_in_place(copy):
    artifact = load_artifact(copy)
    with pytest.raises(ArtifactError, match="not a report file"):
        rewrite_reports(artifact, {"pipeline.joblib": b"anything"})
    load_artifact(copy)


def test_calibration_and_curves_come_from_the_held_out_rows(artifact):
    evaluation = artifact.read_json(EVALUATION_FILE)
    y, p = held_out(evaluation)
    figures = report_figures(artifact.manifest, evaluation, [])
    roc_line = figures["roc"].axes[0].get_lines()[0]
    assert roc_line.get_xdata()[0] == 0.0
    assert roc_line.get_ydata()[-1] == 1.0
    confusion = np.asarray(figures["confusion"].axes[0].collections[0].get_array()).reshape(2, 2)
    cm = artifact.manifest.test_metrics["confusion_matrix"]
    assert confusion.tolist() == [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]]
    assert int(np.asarray(confusion).sum()) == len(y) == len(p)


def test_plots_without_data_are_left_out_and_failed_trials_skipped(artifact):
    evaluation = {**artifact.read_json(EVALUATION_FILE), "importance": None}
    history = [
        {"learner": "lgbm", "validation_loss": float("inf"), "wall_clock_time": 0.5},
        {"learner": "rf", "validation_loss": 0.45, "wall_clock_time": 1.0},
    ]
    figures = report_figures(artifact.manifest, evaluation, history)
    assert "importance" not in figures
    points = figures["search-history"].axes[0].collections
    assert [len(c.get_offsets()) for c in points] == [1]  # the failed trial is not drawn
    html = render_training_report(artifact.manifest, evaluation, history)
    assert "reports no feature importance" in html
    assert 'id="importance"' not in html
