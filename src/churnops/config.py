"""Typed settings of the service, read from the environment when asked (never at import).

Every field can be set by an environment variable ``CHURN_<FIELD>`` (``CHURN_MODEL``,
``CHURN_USER``, ``CHURN_PASSWORD``…). The port is ``CHURN_PORT``, else ``PORT`` (which Cloud Run
sets), else 8080; ``churnops serve --port`` overrides both. Credentials may come from mounted
secret files instead: ``CHURN_USER_FILE`` / ``CHURN_PASSWORD_FILE``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from churnops.errors import ConfigError

# No "trace": at that level uvicorn logs each request's headers, credentials included.
LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseSettings):
    """Configuration of ``churnops serve`` and the API."""

    model_config = SettingsConfigDict(env_prefix="CHURN_", extra="ignore", populate_by_name=True)

    model: str = Field(".churnops/models/demo", description="Model artifact directory.")
    host: str = "0.0.0.0"  # noqa: S104  a container must listen beyond loopback
    port: int = Field(8080, validation_alias=AliasChoices("CHURN_PORT", "PORT"))
    workers: int = 1
    user: str | None = None
    password: SecretStr | None = None
    user_file: Path | None = None
    password_file: Path | None = None
    no_auth: bool = False
    max_records: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    log_level: LogLevel = "info"
    home: Path = Path(".churnops")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def credentials(self) -> tuple[str, SecretStr] | None:
        """Return (user, password) from the environment or secret files, or None if unset.

        Raises
        ------
        ConfigError
            A value is given twice (variable and file), a file is unreadable or empty, or only
            one of user and password is set.
        """
        user = _one_of("user", self.user, self.user_file)
        password = _one_of(
            "password",
            self.password.get_secret_value() if self.password else None,
            self.password_file,
        )
        if user is None and password is None:
            return None
        if user is None or password is None:
            missing = "CHURN_USER" if user is None else "CHURN_PASSWORD"
            raise ConfigError(
                f"{missing} (or {missing}_FILE) is not set; set both user and password"
            )
        return user, SecretStr(password)


def _one_of(name: str, value: str | None, file: Path | None) -> str | None:
    variable = f"CHURN_{name.upper()}"
    if value is not None and file is not None:
        raise ConfigError(f"both {variable} and {variable}_FILE are set; use one")
    if file is None:
        return value or None
    try:
        text = file.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{variable}_FILE {file}: cannot read ({exc.strerror})") from exc
    if not text:
        raise ConfigError(f"{variable}_FILE {file} is empty")
    return text


def read_settings() -> Settings:
    """Read the settings from the environment now.

    Raises
    ------
    ConfigError
        A variable holds an invalid value; the message names the variable (not the value).
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "?"
            if name in ("PORT", "CHURN_PORT"):
                variable = "CHURN_PORT (or PORT)"
            else:
                variable = name if name.startswith("CHURN_") else f"CHURN_{name}"
            problems.append(f"{variable}: {error['msg']}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once on first use."""
    return read_settings()
