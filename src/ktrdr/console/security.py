"""Cross-site request forgery guard and the console's security headers.

A browser attaches `Origin` (and `Sec-Fetch-Site`) to every state-changing request; a
page on another site that posts to the API (a hidden form aimed at
`POST /api/v1/operations/{id}/cancel`) is refused here, before any route runs. Workers,
the CLI and scripts send no `Origin` and are not affected. Together with API keys sent in
a header (which another site's form cannot set), this makes the console's actions CSRF-safe.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Pages load scripts only from the API's own origin (no inline script: a string that
# slipped past escaping still could not run). Plotly sets inline styles, hence
# 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cross_site_reason(scope: Scope) -> str | None:
    """Why this request is a cross-site write, or None if it is not one."""
    if scope["type"] != "http" or scope["method"] in _SAFE_METHODS:
        return None
    if _header(scope, b"sec-fetch-site") == "cross-site":
        return "the browser marked it cross-site"
    origin = _header(scope, b"origin")
    if origin is None:
        return None  # not sent by a browser page (CLI, worker, script)
    host = _header(scope, b"host")
    if origin == "null" or urlsplit(origin).netloc != host:
        return f"origin {origin} is not this server ({host})"
    return None


class SameOriginWrites:
    """Pure ASGI middleware: 403 for state-changing requests from another site."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = cross_site_reason(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"detail": f"cross-site request refused ({reason}); use the console or the CLI"}
        ).encode()
        start: Message = {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body})
