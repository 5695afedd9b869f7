"""uvicorn, with the limits a service facing untrusted clients needs before the app runs.

uvicorn closes idle keep-alive connections and caps concurrency, but it has no deadline for a
request's headers and no cap on their size with its fast (httptools) parser: a client that
connects and sends nothing, or sends a header one byte every few seconds, or a 100 MB header,
holds a socket and memory for as long as it likes. :class:`GuardedHttpToolsProtocol` adds both
to uvicorn's own protocol, so the measured fast path stays: every connection must deliver its
request headers within ``header_timeout`` seconds of connecting (or of its previous response)
and in at most ``max_header_bytes``; otherwise it gets 408 or 431 and is closed. The body has
its own deadline in the app (:func:`churnops.api.body.read_body`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from churnops.config import Settings

log = logging.getLogger("churnops.api")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a header size limit."""

    def __init__(
        self, *args: Any, header_timeout: float, max_header_bytes: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self._header_bytes = 0
        self._reading_headers = True
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
            if self._header_deadline is None:  # a new request on a kept-alive connection
                self._header_deadline = self.loop.call_later(
                    self.header_timeout, self._headers_too_slow
                )
        super().data_received(data)
        # Checked after parsing, so a body that came in the same packet as the headers does not
        # count; while the headers are incomplete, at most one read (256 KiB) passes the limit.
        if self._reading_headers and self._header_bytes > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._cancel_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Ready for the next request on this connection: its headers are awaited again once its
        # first byte arrives (until then uvicorn's keep-alive timeout applies).
        self._reading_headers = True
        self._header_bytes = 0

    def _await_headers(self) -> None:
        self._reading_headers = True
        self._header_bytes = 0
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._reading_headers and not self.transport.is_closing():
            self._refuse(408, "Request Timeout")

    def _refuse(self, status: int, reason: str) -> None:
        if self.transport.is_closing():
            return
        self._reading_headers = False
        self._cancel_header_deadline()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        log.warning(f"closed connection from {client}: {status} {reason}")
        body = reason.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason.encode(), len(body), body)
        )
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` / ``uvicorn.Config`` that enforce the limits."""
    return {
        "http": functools.partial(
            GuardedHttpToolsProtocol,
            header_timeout=settings.header_timeout,
            max_header_bytes=settings.max_header_bytes,
        ),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_connections,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "server_header": False,
    }
