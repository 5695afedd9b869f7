"""``churnops report models:/NAME@ALIAS --out FILE``: the page of a registered model."""

from __future__ import annotations

from churnops.artifact import REPORT_HTML_FILE
from churnops.registry.models import promote

from .conftest import Store, run


def test_report_of_a_registered_model_is_written_elsewhere(store: Store, tmp_path):
    promote("churn", "2", store.uri, "champion")
    out = tmp_path / "champion.html"
    result = run("report", "models:/churn@champion", "--out", str(out), "--tracking-uri", store.uri)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == store.artifacts[1].read_bytes(REPORT_HTML_FILE)
    refused = run("report", "models:/churn@champion", "--tracking-uri", store.uri)
    assert refused.exit_code == 1
    assert "never changed" in refused.output
