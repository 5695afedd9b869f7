"""Typed settings of the service, read from the environment when asked (never at import).

Every field can be set by an environment variable ``CHURN_<FIELD>`` (``CHURN_MODEL``,
``CHURN_USER``, ``CHURN_PASSWORD``…). The port is ``CHURN_PORT``, else ``PORT`` (which Cloud Run
sets), else 8080; ``churnops serve --port`` overrides both. Credentials may come from mounted
secret files instead: ``CHURN_USER_FILE`` / ``CHURN_PASSWORD_FILE``. A ``.env`` file in the
working directory may hold any of these variables (``NAME=value`` lines); a variable set in the
environment wins over the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from churnops.errors import ConfigError

# No "trace": at that level uvicorn logs each request's headers, credentials included.
LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseSettings):
    """Configuration of ``churnops serve`` and the API."""

    # A .env file in the working directory supplies the same variables; the environment wins.
    model_config = SettingsConfigDict(
        env_prefix="CHURN_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    model: str = Field(".churnops/models/demo", description="Model artifact directory.")
    host: str = "0.0.0.0"  # noqa: S104  a container must listen beyond loopback
    port: int = Field(8080, ge=1, le=65535, validation_alias=AliasChoices("CHURN_PORT", "PORT"))
    workers: int = Field(1, ge=1)
    user: str | None = None
    password: SecretStr | None = None
    user_file: Path | None = None
    password_file: Path | None = None
    no_auth: bool = False
    # A weak password is refused at start-up unless dev is set (then a loud warning).
    dev: bool = False
    max_records: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # Body bytes all requests of a worker may hold at once (at least max_body_bytes); past it,
    # 503 with Retry-After.
    max_bodies_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    # Limits in front of the app (see docs/reliability.md): a connection must finish sending its
    # request headers within header_timeout seconds of connecting (or of its previous response),
    # in at most max_header_bytes; a body must arrive within body_timeout seconds; an idle
    # keep-alive connection is closed after keep_alive_timeout; beyond max_connections open
    # connections new requests get 503.
    header_timeout: float = Field(10.0, gt=0)
    body_timeout: float = Field(30.0, gt=0)
    keep_alive_timeout: int = Field(5, ge=1)
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    max_connections: int = Field(4_096, ge=1)
    # Failed-authentication throttling: after auth_failures wrong attempts from one client
    # address within auth_window seconds, that address gets 429 until the window has passed.
    auth_failures: int = Field(5, ge=1)
    auth_window: int = Field(60, ge=1)
    # Proxies whose X-Forwarded-For names the client (Cloud Run's front end, a load balancer).
    forwarded_allow_ips: str = "127.0.0.1"
    # A registry reference (models:/NAME@ALIAS) is checked for a new version this often;
    # 0 turns following off (SIGHUP and POST /admin/reload still reload).
    model_poll_seconds: float = Field(30.0, ge=0)
    log_level: LogLevel = "info"
    home: Path = Path(".churnops")
    # The prediction log (churnops.monitoring.store): a SQLAlchemy URL (sqlite:///PATH,
    # postgresql://USER:PASSWORD@HOST/DB); default a SQLite file HOME/monitoring.db. At most
    # store_queue records wait in memory for the store (each as its request body: about 0.6 KB a
    # Telco record, so 60 MB at the default); beyond that they are dropped and counted.
    # no_store turns the log off.
    store_url: str | None = None
    store_queue: int = Field(100_000, ge=1)
    no_store: bool = False

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

    def serving_credentials(self) -> tuple[str, SecretStr] | None:
        """The credentials to serve with, after refusing what is unsafe to serve with.

        Raises
        ------
        ConfigError
            No credentials are configured and ``no_auth`` is false, or the password is too
            weak and ``dev`` is false (with ``dev`` it is accepted; the service warns loudly).
        """
        credentials = self.credentials()
        if credentials is None and not self.no_auth:
            raise ConfigError(
                "no credentials: set CHURN_USER and CHURN_PASSWORD (or CHURN_USER_FILE and "
                "CHURN_PASSWORD_FILE), or pass --generate-credentials, or --no-auth"
            )
        weakness = password_weakness(credentials[1].get_secret_value()) if credentials else None
        if weakness is not None and not self.dev:
            raise ConfigError(
                f"{weakness}: choose a stronger password (python -c 'import secrets; "
                "print(secrets.token_urlsafe(18))'), or start with --dev"
            )
        return credentials

    def password_weakness(self) -> str | None:
        """Why the configured password is too weak to serve with, or None when it is fine."""
        credentials = self.credentials()
        if credentials is None:
            return None
        return password_weakness(credentials[1].get_secret_value())


MIN_PASSWORD_LENGTH = 12


def password_weakness(password: str) -> str | None:
    """Why ``password`` is too weak for a service on a network, or None.

    At least :data:`MIN_PASSWORD_LENGTH` characters, not blank and not one character repeated:
    a rule that refuses the obvious mistakes (``a``, a space, ``password``) without pretending to
    measure entropy.
    """
    if not password.strip():
        return "CHURN_PASSWORD is blank"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"CHURN_PASSWORD has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}"
    if len(set(password)) < 4:
        return "CHURN_PASSWORD repeats too few distinct characters"
    return None


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


def read_settings(**overrides: object) -> Settings:
    """Read the settings from the environment now; ``overrides`` (field names) win over it.

    Raises
    ------
    ConfigError
        A variable holds an invalid value; the message names the variable (not the value).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
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
