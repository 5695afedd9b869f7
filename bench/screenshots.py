"""Screenshots of the scoring page and the report, taken from a real server → docs/img/.

Usage::

    .venv/bin/python bench/screenshots.py [--model DIR] [--data CSV] [--out docs/img]

``make screenshots`` runs it with Debian's chromium and chromedriver (``browser_env`` of
``../shared/ci/services-env.sh``); elsewhere set ``CHROME_BIN`` and ``CHROMEDRIVER``. Without
``--model`` it trains a small model (LightGBM, a few trials) into ``.churnops/models/screenshots``
unless one is there, on ``--data`` (default: the shared Telco file, else synthetic customers).
It then starts ``churnops serve`` on 127.0.0.1, opens ``/ui`` in headless Chromium, scores one
customer and a file of customers, and saves ``ui.png``; then ``report.png`` of ``/report`` when
the server has one (a 404 is reported and that screenshot skipped).
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import free_port  # bench/serving.py

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TELCO = REPO.parent / "shared" / "data" / "telco-churn-train.csv"
DEFAULT_MODEL = REPO / ".churnops" / "models" / "screenshots"
# The chapter's customer: new, month-to-month, electronic check (values set when the form has them).
CUSTOMER = json.loads((REPO / "tests" / "testdata" / "chapter_request.json").read_text())[0]
UPLOAD_ROWS = 200
WAIT = 30


def train_model(data: Path | None, out: Path) -> Path:
    command = [str(BIN / "churnops"), "train", "--max-iter", "8", "--estimators", "lgbm"]
    command += ["--out", str(out)]
    if data is not None:
        command += ["--data", str(data)]
    print("training:", " ".join(command[1:]))
    subprocess.run(command, check=True)
    return out


def upload_file(data: Path | None, folder: Path) -> Path:
    """A CSV of customers to upload: the first rows of ``data``, else synthetic ones."""
    path = folder / "customers.csv"
    if data is None:
        from churnops.data.sample import generate_customers

        generate_customers(UPLOAD_ROWS, seed=1).to_csv(path, index=False)
        return path
    with data.open(newline="") as source, path.open("w", newline="") as out:
        reader = csv.reader(source)
        writer = csv.writer(out)
        for n, row in enumerate(reader):
            if n > UPLOAD_ROWS:
                break
            writer.writerow(row)
    return path


def start_server(
    model: Path, auth: tuple[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(CHURN_USER=auth[0], CHURN_PASSWORD=auth[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "churnops"), "serve", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--no-store"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"server did not become ready:\n{log.read_text()}")


def open_browser(auth: tuple[str, str], downloads: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = os.environ.get("CHROME_BIN") or shutil.which("chromium")
    driver_path = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not binary or not driver_path:
        raise SystemExit(
            "no browser: set CHROME_BIN and CHROMEDRIVER "
            "(source ../shared/ci/services-env.sh && browser_env)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1200,900", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    token = base64.b64encode(":".join(auth).encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
    )
    return driver


def wait_for(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def full_page_png(driver: Any, path: Path) -> None:
    """The whole page, beyond the window's height."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def fill_customer(driver: Any, form: dict[str, Any]) -> None:
    """Set the chapter customer's values on the fields the form has, within their bounds."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for feature in form["features"]:
        value = CUSTOMER.get(feature["name"])
        if value is None:
            continue
        field = driver.find_element(By.ID, f"f-{feature['name']}")
        if feature["kind"] == "categorical":
            if str(value) in feature["categories"]:
                Select(field).select_by_value(str(value))
        elif feature["minimum"] <= float(value) <= feature["maximum"]:
            field.clear()
            field.send_keys(str(value))


def screenshot_page(driver: Any, base: str, auth: tuple[str, str], upload: Path, out: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(f"{base}/ui")
    wait_for(driver, ec.element_to_be_clickable((By.ID, "score")))
    form = httpx.get(f"{base}/ui/form.json", auth=auth, timeout=10).json()
    fill_customer(driver, form)
    driver.find_element(By.ID, "score").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "probability").text)
    driver.find_element(By.ID, "file").send_keys(str(upload))
    driver.find_element(By.ID, "upload-button").click()
    wait_for(driver, ec.visibility_of_element_located((By.ID, "download")))
    print(
        f"page: churn probability {driver.find_element(By.ID, 'probability').text}; "
        f"{driver.find_element(By.ID, 'upload-status').text}"
    )
    full_page_png(driver, out / "ui.png")


def screenshot_report(driver: Any, base: str, auth: tuple[str, str], out: Path) -> None:
    status = httpx.get(f"{base}/report", auth=auth, timeout=60).status_code
    if status == 404:
        print(f"no /report on this server (404): {out / 'report.png'} not written")
        return
    if status != 200:
        raise SystemExit(f"/report answered {status}")
    driver.get(f"{base}/report")
    wait_for(
        driver,
        lambda d: d.execute_script("return Array.from(document.images).every((i) => i.complete);"),
    )
    full_page_png(driver, out / "report.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", type=Path, help="artifact directory (default: train one)")
    parser.add_argument("--data", type=Path, help="CSV to train on and upload (default: Telco)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()
    data = args.data or (TELCO if TELCO.is_file() else None)
    model = args.model or DEFAULT_MODEL
    if not (model / "manifest.json").is_file():
        if args.model:
            raise SystemExit(f"no model in {model}")
        train_model(data, model)
    auth = ("screenshots", secrets.token_urlsafe(18))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        upload = upload_file(data, folder)
        process, base = start_server(model, auth, folder / "server.log")
        driver = None
        try:
            driver = open_browser(auth, folder)
            screenshot_page(driver, base, auth, upload, args.out)
            screenshot_report(driver, base, auth, args.out)
        finally:
            if driver is not None:
                driver.quit()
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
