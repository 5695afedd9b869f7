"""Helpers shared by the API tests."""

from __future__ import annotations

import json
from pathlib import Path

from churnops.config import Settings

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
AUTH = ("analyst", "s3cret-pass-2026")


def payload(name: str) -> list[dict]:
    return json.loads((TESTDATA / name).read_text())


def make_settings(model: Path, **overrides) -> Settings:
    # Many tests share one client address; throttling has tests of its own.
    values = {
        "model": str(model),
        "user": AUTH[0],
        "password": AUTH[1],
        "auth_failures": 10_000,
        **overrides,
    }
    return Settings(**values)
