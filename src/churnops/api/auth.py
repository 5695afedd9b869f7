"""HTTP Basic authentication, checked before a request body is read."""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPBasic
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import SecretStr

from churnops.api.metrics import Metrics

CHALLENGE = {"WWW-Authenticate": 'Basic realm="churnops"'}


class FailedAuthThrottle:
    """Counts failed authentications per client address in a moving window (``limits``).

    After ``failures`` failures within ``window`` seconds, every request from that address is
    answered 429 until the oldest failure leaves the window, whatever credentials it carries:
    otherwise the answer would still tell a guesser which password is right.
    """

    def __init__(self, failures: int, window: int) -> None:
        self._item = RateLimitItemPerSecond(failures, window)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._window = window
        # When each client address last failed, oldest first, for as long as that is within the
        # window: an address not in here has no failure the limiter counts, and is let through
        # without asking it (a look-up under its lock on every request).
        self._last_failure: OrderedDict[str, float] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it is not blocked."""
        last = self._last_failure.get(client)
        if last is None:
            return None
        if time.monotonic() - last > self._window:
            self._last_failure.pop(client, None)
            return None
        if self._limiter.test(self._item, client):
            return None
        reset = self._limiter.get_window_stats(self._item, client).reset_time
        return max(1, math.ceil(reset - time.time()))

    def failed(self, client: str) -> None:
        """Record one failed attempt from ``client``."""
        self._limiter.hit(self._item, client)
        now = time.monotonic()
        self._last_failure[client] = now
        self._last_failure.move_to_end(client)
        cutoff = now - self._window
        while self._last_failure:  # forget addresses whose last failure left the window
            address, when = next(iter(self._last_failure.items()))
            if when >= cutoff:
                break
            del self._last_failure[address]


class BasicAuth(HTTPBasic):
    """A route dependency that lets a request through only with the configured credentials.

    Being an ``HTTPBasic`` security scheme puts it in the OpenAPI document, so the docs page
    offers a login. The comparison is churnops' own: on bytes, so any UTF-8 password works,
    and in constant time for user and password both, always, so timing reveals neither which
    part was wrong nor how much of it matched. Failures are throttled per client address.
    """

    def __init__(
        self, user: str, password: SecretStr, throttle: FailedAuthThrottle, metrics: Metrics
    ) -> None:
        super().__init__(scheme_name="HTTPBasic", realm="churnops", auto_error=True)
        self._user = user.encode()
        self._password = password.get_secret_value().encode()
        self._throttle = throttle
        self._metrics = metrics

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        client = request.client.host if request.client else "unknown"
        wait = self._throttle.retry_after(client)
        if wait is not None:
            self._metrics.throttled.inc()
            raise HTTPException(
                429,
                f"too many failed logins from this address; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        given_user, given_password = parse_basic(request.headers.get("authorization"))
        user_ok = secrets.compare_digest(given_user, self._user)
        password_ok = secrets.compare_digest(given_password, self._password)
        if not (user_ok and password_ok):
            self._throttle.failed(client)
            raise HTTPException(401, "missing or wrong credentials", headers=CHALLENGE)


async def no_authentication(request: Request) -> None:
    """The dependency used when the server runs without authentication."""


def authenticator(
    credentials: tuple[str, SecretStr] | None, throttle: FailedAuthThrottle, metrics: Metrics
) -> Callable[..., Awaitable[None]]:
    """The authentication dependency for ``credentials``, or none when they are ``None``."""
    if credentials is None:
        return no_authentication
    return BasicAuth(*credentials, throttle, metrics)


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
