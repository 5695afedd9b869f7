"""Settings: read when asked, the port, credentials from variables or secret files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from churnops.config import Settings, read_settings
from churnops.errors import ConfigError


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any churnops setting or PORT."""
    for name in list(os.environ):
        if name.startswith("CHURN_") or name == "PORT":
            monkeypatch.delenv(name)
    return monkeypatch


def test_importing_reads_no_setting():
    # A broken value must not break the import, only the reading of settings.
    code = (
        "import churnops.config as c, churnops.api, churnops.cli\n"
        "try:\n    c.Settings()\nexcept Exception as e:\n    print(type(e).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "CHURN_MAX_RECORDS": "many"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "ValidationError"


def test_overrides_win_over_the_environment(env):
    env.setenv("CHURN_MAX_RECORDS", "7")
    env.setenv("CHURN_PORT", "9000")
    settings = read_settings(port=9100)
    assert (settings.port, settings.max_records) == (9100, 7)
    with pytest.raises(ConfigError, match=r"CHURN_PORT \(or PORT\)"):
        read_settings(port=99999)


def test_defaults(env):
    settings = Settings()
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 8080, 1)
    assert settings.max_records == 10_000
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.no_auth is False
    assert settings.credentials() is None


@pytest.mark.parametrize(
    ("variables", "port"),
    [
        ({}, 8080),
        ({"PORT": "9000"}, 9000),
        ({"CHURN_PORT": "9100"}, 9100),
        ({"PORT": "9000", "CHURN_PORT": "9100"}, 9100),
    ],
)
def test_port_is_churn_port_then_port_then_8080(env, variables, port):
    for name, value in variables.items():
        env.setenv(name, value)
    assert Settings().port == port
    assert Settings(port=7000).port == 7000  # an explicit value (the CLI's --port) wins


def test_invalid_values_are_refused(env):
    env.setenv("CHURN_MAX_RECORDS", "0")
    with pytest.raises(ValidationError, match="max_records"):
        Settings()


def test_credentials_from_variables(env):
    env.setenv("CHURN_USER", "analyst")
    env.setenv("CHURN_PASSWORD", "pa:ss wörd")
    credentials = Settings().credentials()
    assert credentials is not None
    assert credentials[0] == "analyst"
    assert credentials[1].get_secret_value() == "pa:ss wörd"
    assert "pa:ss" not in repr(Settings())


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_credentials_from_secret_files_lose_the_trailing_newline(env, tmp_path, ending):
    (tmp_path / "user").write_text("analyst" + ending)
    (tmp_path / "password").write_text("s3cret" + ending)
    env.setenv("CHURN_USER_FILE", str(tmp_path / "user"))
    env.setenv("CHURN_PASSWORD_FILE", str(tmp_path / "password"))
    credentials = Settings().credentials()
    assert credentials is not None
    assert credentials[0] == "analyst"
    assert credentials[1].get_secret_value() == "s3cret"


def test_variable_and_file_together_are_refused(env, tmp_path):
    (tmp_path / "password").write_text("one\n")
    env.setenv("CHURN_USER", "analyst")
    env.setenv("CHURN_PASSWORD", "two")
    env.setenv("CHURN_PASSWORD_FILE", str(tmp_path / "password"))
    with pytest.raises(ConfigError, match="both CHURN_PASSWORD and CHURN_PASSWORD_FILE"):
        Settings().credentials()


def test_unreadable_or_empty_secret_file_is_refused_naming_it(env, tmp_path):
    env.setenv("CHURN_USER", "analyst")
    env.setenv("CHURN_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"CHURN_PASSWORD_FILE .*absent: cannot read"):
        Settings().credentials()
    (tmp_path / "empty").write_text("\n")
    env.setenv("CHURN_PASSWORD_FILE", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=r"CHURN_PASSWORD_FILE .*empty is empty"):
        Settings().credentials()


def test_user_without_password_is_refused(env):
    env.setenv("CHURN_USER", "analyst")
    with pytest.raises(ConfigError, match="CHURN_PASSWORD"):
        Settings().credentials()


def test_log_level_is_case_insensitive_and_never_trace(env):
    env.setenv("CHURN_LOG_LEVEL", "DEBUG")
    assert Settings().log_level == "debug"
    env.setenv("CHURN_LOG_LEVEL", "trace")  # uvicorn would log request headers, credentials too
    with pytest.raises(ValidationError, match="log_level"):
        Settings()


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("CHURN_MAX_RECORDS", "many", "CHURN_MAX_RECORDS"),
        ("PORT", "http", "CHURN_PORT (or PORT)"),
        ("CHURN_NO_AUTH", "perhaps", "CHURN_NO_AUTH"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(env, name, value, named):
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=r"^invalid setting ") as raised:
        read_settings()
    assert named in str(raised.value)
    assert value not in str(raised.value)  # values may be secrets; the message names the variable
