"""/report in a real browser: every plot of the report renders."""

from __future__ import annotations

import httpx
import pytest

from ..api.support import AUTH
from .conftest import statuses

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_every_plot_of_the_report_renders(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    answer = httpx.get(f"{server.base}/report", auth=AUTH, timeout=30)
    if answer.status_code == 404:
        pytest.skip("this server has no /report (404): the check runs once it serves one")
    assert answer.status_code == 200, answer.text[:200]
    browser.get(f"{server.base}/report")
    assert statuses(browser)[f"{server.base}/report"] == 200
    # Every image loaded (or failed) before sizes are read.
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return Array.from(document.images).every((i) => i.complete);")
    )
    figures = browser.find_elements(By.CSS_SELECTOR, "figure.plot")
    assert figures, "the report has no figure.plot"
    for n, figure in enumerate(figures):
        where = f"figure.plot #{n} ({figure.text[:60]!r})"
        drawings = figure.find_elements(By.CSS_SELECTOR, "svg, img")
        assert drawings, f"{where} holds neither an <svg> nor an <img>"
        for drawing in drawings:
            assert drawing.size["width"] > 0, where
            assert drawing.size["height"] > 0, where
            if drawing.tag_name == "img":
                natural = browser.execute_script("return arguments[0].naturalWidth;", drawing)
                assert natural > 0, f"{where}: the image did not load"
