"""The ceiling: a bare ASGI app that reads the request body and returns a fixed JSON body.

Served by the same uvicorn as churnops (``uvicorn ceiling_app:app``) in ``bench/serving.py``;
no framework, no auth, no model. What uvicorn and the machine can carry at most.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"0":{"prediction":"No","probability":0.9}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
