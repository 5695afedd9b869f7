"""Headless Chromium driven by Selenium against a real `churnops serve` on 127.0.0.1.

The browser is Debian's ``chromium`` with its ``chromedriver``, named by ``CHROME_BIN`` and
``CHROMEDRIVER`` (``source ../shared/ci/services-env.sh && browser_env``); without them the tests
skip. Selenium's driver manager never runs: both paths are passed explicitly.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..api.servers import Server, _env, serving
from ..api.support import AUTH


def _browser_paths() -> tuple[str, str]:
    binary, driver = os.environ.get("CHROME_BIN"), os.environ.get("CHROMEDRIVER")
    if not binary or not driver:
        pytest.skip(
            "CHROME_BIN and CHROMEDRIVER are not set "
            "(source ../shared/ci/services-env.sh && browser_env)"
        )
    for path in (binary, driver):
        if not Path(path).is_file():
            pytest.skip(
                f"{path} does not exist (source ../shared/ci/services-env.sh && browser_env)"
            )
    return binary, driver


def open_browser(downloads: Path, credentials: tuple[str, str] | None) -> Any:
    """A headless Chromium; with ``credentials``, every request carries Basic auth."""
    binary, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1400", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    # The network events the browser saw (statuses of the page and its requests).
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    if credentials is not None:
        # Basic auth the way a logged-in browser sends it: on every request of the page,
        # fetch() calls included.
        token = base64.b64encode(":".join(credentials).encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
        )
    return driver


def statuses(driver: Any) -> dict[str, int]:
    """The HTTP status of each URL the browser received a response for (latest wins)."""
    seen: dict[str, int] = {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            seen[response["url"]] = response["status"]
    return seen


@pytest.fixture(scope="package")
def server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Server]:
    """`churnops serve` of the synthetic model, with the tests' credentials."""
    _browser_paths()  # no model trained, no server started, without a browser to drive it
    model = request.getfixturevalue("synthetic_model")[1].path
    tmp = tmp_path_factory.mktemp("ui-server")
    env = _env(CHURN_USER=AUTH[0], CHURN_PASSWORD=AUTH[1], CHURN_AUTH_FAILURES="10000")
    args = ["--model", str(model), "--host", "127.0.0.1", "--no-store"]
    with serving(args, env, tmp / "log") as running:
        yield running


@pytest.fixture
def downloads(tmp_path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(downloads) -> Iterator[Any]:
    """A browser that sends the server's credentials."""
    driver = open_browser(downloads, AUTH)
    try:
        yield driver
    finally:
        driver.quit()
