"""``ktrdr_http_server_errors_total``: 4xx/5xx responses by status code, born at 0.

The auto-instrumented ``http_server_duration_milliseconds`` histogram creates a series at
the first request of each (route, method, status) combination, i.e. with the value 1,
and Prometheus cannot see that first increment: after 23 client errors the "4xx error
rate" panel read 0. Its label combinations are not knowable in advance (route templates x
methods x codes), so the error panels read this counter instead, whose every series (one
per standard 4xx/5xx code, no route label: bounded) exists at 0 from process start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter

ERROR_STATUS_CODES: tuple[int, ...] = tuple(s.value for s in HTTPStatus if s.value >= 400)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HttpErrorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.errors = Counter(
            "ktrdr_http_server_errors_total",
            "HTTP responses with a 4xx or 5xx status, by code (every standard code from 0).",
            ["status_code"],
            registry=registry,
        )
        for code in ERROR_STATUS_CODES:
            self.errors.labels(str(code))

    def observe(self, status: int) -> None:
        if status >= 400:
            self.errors.labels(str(status)).inc()


class ErrorCountingMiddleware:
    """Pure ASGI middleware: counts the status of every HTTP response that is an error."""

    def __init__(self, app: ASGIApp, metrics: HttpErrorMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        answered = False

        async def counting_send(message: Message) -> None:
            nonlocal answered
            if message.get("type") == "http.response.start":
                answered = True
                self.metrics.observe(int(message.get("status", 0)))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            # An unhandled error that never started a response goes out as a 500.
            if not answered:
                self.metrics.observe(500)
            raise
