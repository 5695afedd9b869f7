"""`.ci/audit.sh` (run by `make lint`): fails on a vulnerability, skips with one line offline.

pip-audit is replaced by a stub that plays each answer of the advisory database, so these tests
use no network and take a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "audit.sh"
SKIPPED = "pip-audit skipped: advisory database unreachable"

STUB = """#!{python}
import json, os, sys, time
from pathlib import Path

args = sys.argv[1:]
out = Path(args[args.index("--output") + 1])
requirements = Path(args[args.index("--requirement") + 1]).read_text().split()
Path(os.environ["SEEN"]).write_text("\\n".join(requirements))
mode = os.environ["MODE"]
deps = [{{"name": r.split("==")[0].split("[")[0], "version": r.split("==")[1], "vulns": []}}
        for r in requirements]
if mode == "offline":
    print("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443):"
          " Max retries exceeded (Caused by NameResolutionError)", file=sys.stderr)
    sys.exit(1)
if mode == "hang":
    time.sleep(60)
if mode == "broken":
    print("pip-audit: error: something else went wrong", file=sys.stderr)
    sys.exit(2)
if mode == "vulnerable":
    deps[0]["vulns"] = [{{"id": "PYSEC-2026-1", "fix_versions": ["9.9.9"], "aliases": ["CVE-1"]}}]
if mode == "not found":
    deps = [{{"name": d["name"], "skip_reason": "Dependency not found on PyPI"}} for d in deps]
out.write_text(json.dumps({{"dependencies": deps, "fixes": []}}))
sys.exit(1 if mode == "vulnerable" else 0)
"""


def audit(tmp_path: Path, mode: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    stub = tmp_path / "pip-audit"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PIP_AUDIT": str(stub),
        "PYTHON_BIN": sys.executable,
        "AUDIT_TIMEOUT": str(timeout),
        "MODE": mode,
        "SEEN": str(tmp_path / "seen.txt"),
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


def test_no_vulnerability_passes_and_every_pin_is_audited(tmp_path):
    result = audit(tmp_path, "clean")
    assert result.returncode == 0, result.stderr
    assert "no known vulnerabilities" in result.stdout
    seen = (tmp_path / "seen.txt").read_text().split()
    assert "mlflow==3.17.2" in seen  # the train extra
    assert any(pin.startswith("pip-audit==") for pin in seen)  # the dev extra
    assert any(pin.startswith("fastapi==") for pin in seen)  # the serving dependencies
    assert all("==" in pin for pin in seen)


def test_a_vulnerability_fails_naming_it_and_its_fix(tmp_path):
    result = audit(tmp_path, "vulnerable")
    assert result.returncode == 1
    assert "PYSEC-2026-1" in result.stderr
    assert "fixed in: 9.9.9" in result.stderr


@pytest.mark.parametrize("mode", ["offline", "not found"])
def test_an_unreachable_database_skips_with_one_line(tmp_path, mode):
    result = audit(tmp_path, mode)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(SKIPPED)
    assert len(result.stdout.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr


def test_a_database_that_never_answers_is_cut_off(tmp_path):
    started = time.monotonic()
    result = audit(tmp_path, "hang", timeout=2)
    assert time.monotonic() - started < 20
    assert result.returncode == 0
    assert result.stdout.strip() == f"{SKIPPED} (no answer within 2 s)"


def test_any_other_pip_audit_failure_fails(tmp_path):
    result = audit(tmp_path, "broken")
    assert result.returncode == 2
    assert "something else went wrong" in result.stderr


def test_make_lint_runs_the_audit():
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert ".ci/audit.sh" in lint


def test_the_audit_report_format_is_what_the_script_reads(tmp_path):
    """pip-audit's own JSON for a clean, offline-free run: an empty requirement list."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")
    output = tmp_path / "audit.json"
    pip_audit = Path(sys.executable).parent / "pip-audit"
    if not pip_audit.exists():
        pytest.skip("pip-audit is not installed (dev extra)")
    result = subprocess.run(
        [
            *(str(pip_audit), "-r", str(requirements), "--no-deps", "--disable-pip"),
            *("--progress-spinner", "off", "-f", "json", "-o", str(output)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text())["dependencies"] == []
