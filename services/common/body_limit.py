"""Refuse oversized request bodies before they are read into memory or parsed."""

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the body is larger than {limit} bytes")


class BodySizeLimit:
    """ASGI middleware: at most ``limit`` bytes per request body, ``by_path`` overriding it.

    A declared Content-Length over the limit is refused at once; a body sent without one is
    counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, limit: int, by_path: dict[str, int]) -> None:
        self.app = app
        self.limit = limit
        self.by_path = by_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(limit, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body parsing unchanged.
                    raise _too_large(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _refuse(limit: int, send: Send) -> None:
    body = json.dumps({"detail": [{"field": "body", "reason": _too_large(limit).detail}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
