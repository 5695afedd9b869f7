"""The scoring page in a real browser: log in, fill the form, upload a file, read the reasons."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from churnops.data.sample import generate_customers

from ..api.support import AUTH
from .conftest import open_browser, statuses

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WAIT = 20  # seconds for anything the page does


def _wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def _visible(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return _wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def _open_page(driver: Any, base: str) -> dict[str, Any]:
    """Open /ui, wait for the form, and return the form's description as the page read it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(f"{base}/ui")
    _wait(driver, ec.element_to_be_clickable((By.ID, "score")))
    return httpx.get(f"{base}/ui/form.json", auth=AUTH, timeout=10).json()


def _in_range(record: dict[str, Any], form: dict[str, Any]) -> bool:
    for f in form["features"]:
        if f["kind"] == "numeric":
            value = str(record[f["name"]]).strip()
            if not value or not f["minimum"] <= float(value) <= f["maximum"]:
                return False
    return True


def _customers(form: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """Customers whose numbers are given and lie in the training ranges (the form's bounds)."""
    records = generate_customers(4 * n, seed=seed).drop(columns=["Churn"]).to_dict("records")
    chosen = [r for r in records if _in_range(r, form)][:n]
    assert len(chosen) == n
    return chosen


def _fill(driver: Any, form: dict[str, Any], record: dict[str, Any]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name in form["id_columns"]:
        field = driver.find_element(By.ID, f"f-{name}")
        field.clear()
        field.send_keys(str(record[name]))
    for feature in form["features"]:
        field = driver.find_element(By.ID, f"f-{feature['name']}")
        value = record[feature["name"]]
        if feature["kind"] == "categorical":
            Select(field).select_by_value(str(value))
        else:
            field.clear()
            field.send_keys(repr(value) if isinstance(value, float) else str(value))


def _score_form(driver: Any, form: dict[str, Any], record: dict[str, Any]) -> str:
    from selenium.webdriver.common.by import By

    _fill(driver, form, record)
    driver.find_element(By.ID, "score").click()
    _wait(driver, lambda d: d.find_element(By.ID, "probability").text)
    return str(driver.find_element(By.ID, "probability").text)


def _predict(base: str, records: list[dict[str, Any]], **params: str) -> dict[str, Any]:
    response = httpx.post(f"{base}/predict", json=records, params=params, auth=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    answers: dict[str, Any] = response.json()
    return answers


def test_without_credentials_the_page_is_refused(server, downloads):
    from selenium.webdriver.common.by import By

    answer = httpx.get(f"{server.base}/ui", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="churnops"'
    driver = open_browser(downloads, credentials=None)
    try:
        driver.get(f"{server.base}/ui")
        assert statuses(driver)[f"{server.base}/ui"] == 401
        assert not driver.find_elements(By.ID, "customer")  # no form: the page never loaded
    finally:
        driver.quit()


def test_the_form_shows_what_the_api_answers(server, browser):
    from selenium.webdriver.common.by import By

    form = _open_page(browser, server.base)
    # The form is the served model's schema: one field per feature, categories and bounds.
    for feature in form["features"]:
        field = browser.find_element(By.ID, f"f-{feature['name']}")
        if feature["kind"] == "categorical":
            options = [o.get_attribute("value") for o in field.find_elements(By.TAG_NAME, "option")]
            assert [o for o in options if o] == feature["categories"]
        else:
            assert float(field.get_attribute("min")) == feature["minimum"]
            assert float(field.get_attribute("max")) == feature["maximum"]
    positive = form["positive_label"]
    for record in _customers(form, 3, seed=11):
        shown = _score_form(browser, form, record)
        answer = _predict(server.base, [record])["0"]
        expected = answer["probabilities"][positive]
        # Shown as a percentage with one decimal: equal to the API's to that precision.
        assert shown.endswith("%")
        assert float(shown[:-1]) == pytest.approx(100 * expected, abs=0.05 + 1e-9)
        label = browser.find_element(By.ID, "label").text
        assert label == f"{form['target']}: {answer['prediction']}"


def test_a_value_the_model_refuses_is_shown_as_the_apis_error(server, browser):
    from selenium.webdriver.common.by import By

    form = _open_page(browser, server.base)
    numeric = next(
        f for f in form["features"] if f["kind"] == "numeric" and not f["allows_missing"]
    )
    browser.execute_script(
        # The browser's own checks would stop an empty required field: send it anyway.
        "document.getElementById('customer').noValidate = true;"
        f"document.getElementById('f-{numeric['name']}').value = '';"
    )
    browser.find_element(By.ID, "score").click()
    error = _visible(browser, "#single-error")
    assert f"field '{numeric['name']}': a value is required" in error.text
    assert error.text.startswith("Not scored (422)")


def test_an_uploaded_file_comes_back_scored(server, browser, downloads, tmp_path):
    from selenium.webdriver.common.by import By

    form = _open_page(browser, server.base)
    records = generate_customers(40, seed=12).drop(columns=["Churn"]).to_dict("records")
    path = tmp_path / "customers.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "upload-button").click()
    scored_file = _downloaded(downloads / "customers-scored.csv")
    status = browser.find_element(By.ID, "upload-status").text
    assert status.startswith(f"Scored {len(records)} rows of customers.csv")
    link = browser.find_element(By.ID, "download")
    assert link.is_displayed()
    assert link.text == "Download customers-scored.csv"
    rows = list(csv.DictReader(io.StringIO(scored_file.read_text())))
    assert len(rows) == len(records)
    answers = _predict(server.base, records)
    for i, (record, row) in enumerate(zip(records, rows, strict=True)):
        assert row["customerID"] == record["customerID"]
        assert row["prediction"] == answers[str(i)]["prediction"]
        assert (
            float(row["churn_probability"])
            == (answers[str(i)]["probabilities"][form["positive_label"]])
        )


def test_a_file_the_model_cannot_read_is_explained(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _open_page(browser, server.base)
    path = tmp_path / "wrong.csv"
    path.write_text("name,Tenure\nAda,3\n")
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "upload-button").click()
    error = _visible(browser, "#upload-error")
    assert error.text.startswith("wrong.csv was not scored (422): the file lacks columns")
    assert "columns the model does not know: name, Tenure" in error.text
    assert not browser.find_element(By.ID, "download").is_displayed()


def test_reasons_chart(server, browser):
    """The top reasons of the served model's explanation, as bars; or the page says none."""
    from selenium.webdriver.common.by import By

    form = _open_page(browser, server.base)
    record = _customers(form, 1, seed=13)[0]
    _score_form(browser, form, record)
    answer = _predict(server.base, [record], explain="true", top="8")["0"]
    reasons = browser.find_element(By.ID, "reasons")
    if "explanation" not in answer:
        assert reasons.text == "No explanation available for this model."
        pytest.skip(
            "the served model gives no explanation (POST /predict?explain=true answers no "
            "'explanation'): checked the page says so; the chart is checked once it does"
        )
    contributions = answer["explanation"]["contributions"][:8]
    bars = reasons.find_elements(By.CSS_SELECTOR, "#reasons-chart rect.bar")
    assert [b.get_attribute("data-feature") for b in bars] == [c["feature"] for c in contributions]
    for bar, contribution in zip(bars, contributions, strict=True):
        assert bar.size["width"] > 0
        assert bar.size["height"] > 0
        expected = "up" if contribution["contribution"] > 0 else "down"
        assert expected in bar.get_attribute("class").split()
    # Longest bar for the largest contribution (they come sorted by |contribution|).
    widths = [float(b.get_attribute("width")) for b in bars]
    assert widths == sorted(widths, reverse=True)


def _downloaded(path: Path) -> Path:
    deadline = time.monotonic() + WAIT
    while not path.is_file() or path.with_name(path.name + ".crdownload").exists():
        assert time.monotonic() < deadline, f"{path.name} was not downloaded"
        time.sleep(0.1)
    return path


# An explanation as POST /predict?explain=true gives it: contributions in log-odds, sorted by
# |contribution|, positive toward churn. Added by the page's fetch below to a real answer.
EXPLANATION = {
    "base_value": -1.2,
    "contributions": [
        {"feature": "Contract", "value": "Month-to-month", "contribution": 0.91},
        {"feature": "tenure", "value": 3, "contribution": 0.55},
        {"feature": "OnlineSecurity", "value": "Yes", "contribution": -0.42},
        {"feature": "MonthlyCharges", "value": 89.5, "contribution": 0.2},
        {"feature": "TotalCharges", "value": None, "contribution": -0.05},
    ],
}

WITH_EXPLANATION = """
const explanation = arguments[0];
const fetched = window.fetch.bind(window);
window.fetch = async (url, options) => {
  const response = await fetched(url, options);
  if (!String(url).startsWith("/predict?") || !response.ok) return response;
  const answers = await response.json();
  for (const answer of Object.values(answers)) answer.explanation = explanation;
  return new Response(JSON.stringify(answers), {status: 200, headers: response.headers});
};
"""


def test_reasons_chart_draws_an_explanation_of_the_contract(server, browser):
    """The chart for an answer carrying an explanation (added in the page to a real answer)."""
    from selenium.webdriver.common.by import By

    form = _open_page(browser, server.base)
    browser.execute_script(WITH_EXPLANATION, EXPLANATION)
    record = _customers(form, 1, seed=14)[0]
    shown = _score_form(browser, form, record)
    expected = _predict(server.base, [record])["0"]["probabilities"][form["positive_label"]]
    assert float(shown[:-1]) == pytest.approx(100 * expected, abs=0.05 + 1e-9)
    chart = _visible(browser, "#reasons-chart")
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    contributions = EXPLANATION["contributions"]
    assert [b.get_attribute("data-feature") for b in bars] == [c["feature"] for c in contributions]
    assert [b.get_attribute("class") for b in bars] == [
        "bar up",
        "bar up",
        "bar down",
        "bar up",
        "bar down",
    ]
    widths = [float(b.get_attribute("width")) for b in bars]
    assert widths == sorted(widths, reverse=True)
    assert widths[2] / widths[0] == pytest.approx(0.42 / 0.91, rel=1e-6)
    # Toward churn to the right of the axis, away from churn to the left.
    axis = float(chart.find_element(By.CSS_SELECTOR, "line.axis").get_attribute("x1"))
    for bar, c in zip(bars, contributions, strict=True):
        x = float(bar.get_attribute("x"))
        if c["contribution"] > 0:
            assert x == pytest.approx(axis)
        else:
            assert x + float(bar.get_attribute("width")) == pytest.approx(axis)
        assert bar.size["width"] > 0
    labels = chart.text
    assert "Contract = Month-to-month" in labels
    assert "TotalCharges = missing" in labels
    assert "+0.910" in labels
    assert "-0.420" in labels
    assert "base value is -1.200" in browser.find_element(By.ID, "reasons").text
    assert not browser.find_elements(By.ID, "no-explanation")
