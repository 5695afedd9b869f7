#!/usr/bin/env bash
# pip-audit of the dependencies pinned in pyproject.toml (base, train and dev), run by `make lint`.
#
# Offline-safe and bounded: when the advisory database cannot be reached (no network, DNS
# failure, no answer within AUDIT_TIMEOUT seconds, or a PyPI mirror without per-release data so
# that nothing could be audited) it prints one line and succeeds; a known vulnerability fails.
#
# Environment: BIN (default .venv/bin), PIP_AUDIT (default $BIN/pip-audit), AUDIT_TIMEOUT
# (whole run, default 60 s), AUDIT_SERVICE (pypi or osv, default pypi).
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
PYTHON=${PYTHON_BIN:-$BIN/python}
PIP_AUDIT=${PIP_AUDIT:-$BIN/pip-audit}
AUDIT_TIMEOUT=${AUDIT_TIMEOUT:-60}
AUDIT_SERVICE=${AUDIT_SERVICE:-pypi}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every pin of the project, extras included: exactly the versions `make install` asks for.
"$PYTHON" - >"$work/requirements.txt" <<'EOF' || exit 1
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
pins = list(project["dependencies"])
for extra in project.get("optional-dependencies", {}).values():
    pins += extra
for pin in sorted(set(pins)):
    print(pin)
EOF

started=$(date +%s)
# --no-deps --disable-pip: audit the pins as written, no resolver, no virtualenv, no index.
# --timeout bounds each request; `timeout` bounds the whole run so it can never hang.
timeout --kill-after=5 "$AUDIT_TIMEOUT" "$PIP_AUDIT" \
  --requirement "$work/requirements.txt" --no-deps --disable-pip \
  --vulnerability-service "$AUDIT_SERVICE" --timeout 10 --progress-spinner off \
  --format json --output "$work/audit.json" >"$work/log" 2>&1
status=$?
seconds=$(($(date +%s) - started))

STATUS=$status SECONDS_TAKEN=$seconds TIMEOUT=$AUDIT_TIMEOUT "$PYTHON" - "$work" <<'EOF'
import json
import os
import re
import sys
from pathlib import Path

work = Path(sys.argv[1])
status, seconds = int(os.environ["STATUS"]), os.environ["SECONDS_TAKEN"]
SKIPPED = "pip-audit skipped: advisory database unreachable"
NETWORK = re.compile(
    r"ConnectionError|NameResolution|Max retries exceeded|timed out|Temporary failure|"
    r"Network is unreachable|ProxyError|Connection refused|SSLError|ReadTimeout",
)
log = (work / "log").read_text(errors="replace") if (work / "log").exists() else ""

if status in (124, 137):
    print(f"{SKIPPED} (no answer within {os.environ['TIMEOUT']} s)")
    sys.exit(0)

report = work / "audit.json"
if not report.exists() or not report.read_text().strip():
    if NETWORK.search(log):
        reason = NETWORK.search(log).group(0)
        print(f"{SKIPPED} ({reason})")
        sys.exit(0)
    print(f"pip-audit failed (exit {status}):", file=sys.stderr)
    print("\n".join(log.strip().splitlines()[-5:]), file=sys.stderr)
    sys.exit(status or 1)

dependencies = json.loads(report.read_text()).get("dependencies", [])
vulnerable = [d for d in dependencies if d.get("vulns")]
skipped = [d for d in dependencies if d.get("skip_reason")]
if vulnerable:
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
            aliases = ", ".join(vuln.get("aliases") or [])
            print(
                f"{dep['name']}=={dep.get('version', '?')}: {vuln['id']}"
                + (f" ({aliases})" if aliases else "")
                + f"; fixed in: {fixed}",
                file=sys.stderr,
            )
    count = sum(len(d["vulns"]) for d in vulnerable)
    print(
        f"pip-audit: {count} known vulnerabilities in {len(vulnerable)} pinned dependencies",
        file=sys.stderr,
    )
    sys.exit(1)
if dependencies and len(skipped) == len(dependencies):
    # Every lookup came back "not found": an index without release data, not an audit.
    print(f"{SKIPPED} (no pinned release found there; nothing was audited)")
    sys.exit(0)
if status != 0:
    print(f"pip-audit failed (exit {status}):", file=sys.stderr)
    print("\n".join(log.strip().splitlines()[-5:]), file=sys.stderr)
    sys.exit(status)
audited = len(dependencies) - len(skipped)
note = f"; not audited: {', '.join(d['name'] for d in skipped)}" if skipped else ""
print(f"pip-audit: {audited} pinned dependencies, no known vulnerabilities ({seconds} s){note}")
EOF
