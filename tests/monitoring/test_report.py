"""The HTML drift report: complete, offline, and safe with hostile names and categories."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from churnops.data.cleaning import describe_feature
from churnops.monitoring.drift import check_drift
from churnops.monitoring.report import render_html
from churnops.schema import Kind, Schema

from .support import profiled

HOSTILE_COLUMN = '<img src=x onerror="alert(1)">'
HOSTILE_CATEGORY = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def hostile():
    rng = np.random.default_rng(0)
    rows = 2_000
    frame = pd.DataFrame(
        {
            HOSTILE_COLUMN: rng.normal(50, 10, rows).round(2),
            "plan": rng.choice(["basic", "$x^2$ plan", "pro & co"], rows, p=[0.5, 0.3, 0.2]),
        }
    )
    kinds: dict[str, Kind] = {HOSTILE_COLUMN: "numeric", "plan": "categorical"}
    schema, profile, scores = profiled(frame, kinds, rng)
    window = frame.sample(1_000, random_state=1).reset_index(drop=True).astype(object)
    window[HOSTILE_COLUMN] = window[HOSTILE_COLUMN].astype(float) + 10
    window.loc[:299, "plan"] = HOSTILE_CATEGORY
    report = check_drift(profile, window, np.clip(scores[:1_000] + 0.3, 0, 1), schema)
    return report, profile


def test_report_escapes_text_from_data(hostile):
    report, profile = hostile
    assert set(report.flagged) == {HOSTILE_COLUMN, "plan"}
    page = render_html(report, profile, context={"model": "churn@<b>prod</b>"})
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "onerror=" not in page.replace("onerror=&quot;", "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "churn@&lt;b&gt;prod&lt;/b&gt;" in page


def test_report_is_self_contained_with_a_plot_per_drifted_feature(hostile):
    report, profile = hostile
    page = render_html(report, profile)
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # nothing fetched from elsewhere
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(report.flagged) + 1  # and the predictions
    for image in images:
        assert base64.b64decode(image).startswith(b"\x89PNG")
    # One row per feature in the summary table, with its status.
    row = r'<tr class="\w+"><td>[^<]*</td><td>(?:numeric|categorical)</td><td>([^<]+)<'
    statuses = re.findall(row, page)
    assert statuses == [f.status for f in report.features]
    assert statuses.count("drift") == len(report.flagged)


def test_report_without_profile_or_predictions(hostile):
    report, _ = hostile
    quiet = check_drift({"features": {}}, pd.DataFrame({"plan": ["basic"]}), None, _schema())
    page = render_html(quiet)
    assert "<p>No findings.</p>" in page
    assert "<img" not in page
    assert render_html(report).count("<img") == len(report.flagged) + 1


def _schema() -> Schema:
    return Schema(
        target="churned",
        positive_label="yes",
        classes=("no", "yes"),
        features=(describe_feature("plan", "categorical", pd.Series(["basic"], dtype=object)),),
    )
