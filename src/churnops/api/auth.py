"""HTTP Basic authentication, checked before a request body is read."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPBasic
from pydantic import SecretStr

CHALLENGE = {"WWW-Authenticate": 'Basic realm="churnops"'}


class BasicAuth(HTTPBasic):
    """A route dependency that lets a request through only with the configured credentials.

    Being an ``HTTPBasic`` security scheme puts it in the OpenAPI document, so the docs page
    offers a login. The comparison is churnops' own: on bytes, so any UTF-8 password works,
    and in constant time for user and password both, always, so timing reveals neither which
    part was wrong nor how much of it matched.
    """

    def __init__(self, user: str, password: SecretStr) -> None:
        super().__init__(scheme_name="HTTPBasic", realm="churnops", auto_error=True)
        self._user = user.encode()
        self._password = password.get_secret_value().encode()

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        given_user, given_password = parse_basic(request.headers.get("authorization"))
        user_ok = secrets.compare_digest(given_user, self._user)
        password_ok = secrets.compare_digest(given_password, self._password)
        if not (user_ok and password_ok):
            raise HTTPException(401, "missing or wrong credentials", headers=CHALLENGE)


async def no_authentication() -> None:
    """The dependency used when the server runs without authentication."""


def authenticator(credentials: tuple[str, SecretStr] | None) -> Callable[..., Awaitable[None]]:
    """The authentication dependency for ``credentials``, or none when they are ``None``."""
    if credentials is None:
        return no_authentication
    return BasicAuth(*credentials)


def parse_basic(header: str | None) -> tuple[bytes, bytes]:
    """User and password of a Basic ``Authorization`` header; empty when absent or malformed."""
    if not header or header[:6].lower() != "basic ":
        return b"", b""
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return b"", b""
    user, _, password = decoded.partition(b":")
    return user, password
