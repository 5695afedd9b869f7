"""Reading a ``/predict`` body: size, time and record limits enforced while it is read and parsed.

Nothing here holds more memory than the limits allow: the body is counted as it streams in, and
a large body is parsed one array element at a time, so neither ``[[], [], …]`` nor a million
records become a million Python objects before the record limit applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from churnops.errors import ChurnopsError, LimitError, RecordError

# Bodies up to this size are parsed whole by orjson (fast; at most a few thousand values, so the
# memory is bounded by the size); larger ones element by element.
WHOLE_PARSE_BYTES = 32 * 1024

_SPACE = re.compile(r"[ \t\n\r]*")


class BadRequestError(ChurnopsError):
    """The request body cannot be read as the API expects (not JSON, not an array…)."""


class UnsupportedMediaTypeError(ChurnopsError):
    """The request declares a body that is not JSON."""


class RequestTimeoutError(ChurnopsError):
    """The client sent its body too slowly."""


class ClientGoneError(ChurnopsError):
    """The client closed the connection before its request was read (logged as 499)."""


class ServerBusyError(ChurnopsError):
    """Too many body bytes are held by requests in flight; the client should retry (503)."""


class BodyBudget:
    """The bytes of request bodies all requests of this worker may hold at once.

    Each request holds what it has received until its answer is sent, so twelve 10 MiB bodies
    at once cost at most ``limit`` bytes of memory, not 120 MiB: the request that would pass the
    limit gets 503 and ``Retry-After``. Bytes are counted as they arrive, so a slow client holds
    only what it has sent. One event loop per worker: no lock is needed.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[BodyHold]:
        """A hold released, whatever happens, when the block ends."""
        hold = BodyHold(self)
        try:
            yield hold
        finally:
            self.held -= hold.taken


class BodyHold:
    """One request's share of a :class:`BodyBudget`."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.taken = 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes; raise ServerBusyError when the budget would be passed."""
        budget = self.budget
        if budget.held + size > budget.limit:
            raise ServerBusyError(
                f"the server holds {budget.held} bytes of request bodies already (limit "
                f"{budget.limit}); retry shortly"
            )
        budget.held += size
        self.taken += size


def check_content_type(request: Request) -> None:
    """Refuse a body declared as anything but JSON; a missing Content-Type is taken as JSON."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        shown = declared[:60].encode("ascii", "replace").decode()
        raise UnsupportedMediaTypeError(
            f"Content-Type {shown!r} is not JSON: send Content-Type: application/json"
        )


CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})


def check_csv_content_type(request: Request) -> None:
    """Refuse a body declared as anything but CSV; a missing Content-Type is taken as CSV."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media not in CSV_MEDIA_TYPES:
        shown = declared[:60].encode("ascii", "replace").decode()
        raise UnsupportedMediaTypeError(
            f"Content-Type {shown!r} is not CSV: send the file itself as the body with "
            "Content-Type: text/csv (e.g. curl --data-binary @customers.csv)"
        )


async def read_body(
    request: Request, limit: int, timeout: float, hold: BodyHold | None = None
) -> bytearray:
    """The whole body, at most ``limit`` bytes, read within ``timeout`` seconds.

    Raises
    ------
    LimitError
        The declared or the streamed size exceeds ``limit``.
    RequestTimeoutError
        The body did not arrive in time (a slow client holds a connection, not the server).
    ClientGoneError
        The client disconnected mid-body.
    ServerBusyError
        ``hold``'s budget is spent by other requests.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LimitError(
            f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes"
        )
    body = bytearray()  # grown in place: no second copy of a large body
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                if len(body) + len(chunk) > limit:  # counted on the stream, not trusted
                    raise LimitError(f"request body exceeds the limit of {limit} bytes")
                if hold is not None:
                    hold.take(len(chunk))
                body += chunk
    except TimeoutError:
        raise RequestTimeoutError(
            f"request body not received within {timeout:g} seconds ({len(body)} bytes arrived)"
        ) from None
    except ClientDisconnect:
        raise ClientGoneError("client disconnected before sending the whole body") from None
    return body


def parse_records(
    body: bytes | bytearray, max_records: int, whole_parse_bytes: int = WHOLE_PARSE_BYTES
) -> list[Any]:
    """Parse a JSON array of customer objects, refusing more than ``max_records`` as it goes.

    Bodies up to ``whole_parse_bytes`` are parsed whole by orjson, larger ones element by element
    (slower, but the memory of a hostile body such as ``[[],[],…]`` is counted as it grows). A
    caller that parses at most a few bodies at once may raise the bound.

    Raises
    ------
    BadRequestError
        Not JSON, or not an array.
    LimitError
        More than ``max_records`` elements.
    RecordError
        An element is not an object (named by its position).
    """
    if not body or body.isspace():
        raise BadRequestError("empty body: send a JSON array of customer objects")
    if len(body) <= whole_parse_bytes:
        try:
            records = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequestError(f"body is not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise BadRequestError(
                "expected a JSON array of customer objects, got a JSON " + json_kind(records)
            )
        if len(records) > max_records:
            raise LimitError(
                f"{len(records)} records exceed the limit of {max_records} per request"
            )
        return records
    return _parse_incrementally(body, max_records)


def _parse_incrementally(body: bytes | bytearray, max_records: int) -> list[Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"body is not valid JSON: not UTF-8 at byte {exc.start}") from None
    decoder = json.JSONDecoder(parse_constant=_no_constant)
    position = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    if text[position : position + 1] != "[":
        raise BadRequestError(
            "expected a JSON array of customer objects; the body does not start with '['"
        )
    position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]
    records: list[Any] = []
    if text[position : position + 1] == "]":
        position += 1
    else:
        while True:
            try:
                value, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                raise BadRequestError(f"body is not valid JSON: {exc}") from None
            except (RecursionError, ValueError) as exc:  # deep nesting, huge integers, NaN
                raise BadRequestError(f"body is not valid JSON: {exc}") from None
            if not isinstance(value, dict):
                raise RecordError(
                    [
                        {
                            "record": len(records),
                            "field": None,
                            "problem": f"expected an object, got a JSON {json_kind(value)}",
                        }
                    ]
                )
            records.append(value)
            if len(records) > max_records:
                raise LimitError(f"more than {max_records} records: the limit per request")
            position = _SPACE.match(text, position).end()  # type: ignore[union-attr]
            separator = text[position : position + 1]
            if separator == ",":
                position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]
            elif separator == "]":
                position += 1
                break
            else:
                raise BadRequestError(
                    f"body is not valid JSON: expected ',' or ']' at character {position}"
                )
    if _SPACE.match(text, position).end() != len(text):  # type: ignore[union-attr]
        raise BadRequestError("body is not valid JSON: extra data after the array")
    return records


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_kind(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), "number"
    )
