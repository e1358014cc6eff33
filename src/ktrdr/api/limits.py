"""Request limits the backend enforces before any route runs: body size and body time.

A body past `max_body_bytes` is a 413 saying what the limit is and how to stay under it
- at once when the declared Content-Length is too big, else as soon as the bytes read
pass it (chunked uploads), so the API never buffers more than the limit. A body that
does not arrive within `body_timeout_s` (a client trickling bytes to hold a connection
and a thread) is a 408. Pure ASGI: nothing is read or copied on the way.
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_detail(max_bytes: int) -> str:
    return (
        f"request body is larger than the API's limit of {max_bytes:,} bytes "
        f"(KTRDR_MAX_BODY_BYTES); send less - e.g. import a long CSV in parts with "
        f"`ktrdr data import --merge` - or raise the limit on the API"
    )


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout_s: float):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            response = JSONResponse(
                {"detail": too_large_detail(self.max_body_bytes)},
                status_code=413,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0
        body_done = False
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later receives wait for a disconnect: not the client's body
                return await receive()
            try:
                # timeout_at, not wait_for: wait_for wraps every receive in a new task
                # (most bodies are already buffered and answer at once).
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body did not arrive within {self.body_timeout_s:g} s "
                    "(KTRDR_BODY_TIMEOUT_S); send it at once",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body, so
                    # the client gets the JSON 413 from the error handlers.
                    raise HTTPException(
                        413, too_large_detail(self.max_body_bytes), headers={"Connection": "close"}
                    )
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses a malformed length before we get here
    return None
