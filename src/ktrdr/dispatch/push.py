"""The dispatcher's pushes to workers: a lean HTTP/1.1 client on kept-alive connections.

A push through httpx and its OpenTelemetry instrumentation cost the API about 1 ms of
CPU (a third of it the instrumentation), on the path of every operation and in the same
process that answers every other request. This writes the request itself on a
connection kept per worker, and keeps what the instrumentation gave: one CLIENT span per
push whose context goes in ``traceparent`` (the worker's server span joins the trace),
and the ``http.client.duration`` histogram (ms, the instrumentation's name, unit,
description and attributes: one ``http_client_duration_milliseconds`` family with the
API's other client calls). Failures are httpx's exceptions, so the dispatcher handles
both alike.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httpx
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_tracer = trace.get_tracer("ktrdr.dispatch.push")
_propagator = TraceContextTextMapPropagator()
# Reused only while well inside the server's keep-alive timeout (uvicorn closes an idle
# connection after 5 s): a connection it closed meanwhile would fail a dispatch.
_IDLE_REUSE_S = 2.0
_MAX_HEAD = 64 * 1024


class WorkerPush:
    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._idle: dict[tuple[str, int], list[tuple[float, _Conn]]] = {}
        meter = metrics.get_meter("ktrdr.dispatch")
        self._duration = meter.create_histogram(
            "http.client.duration",
            unit="ms",
            description="measures the duration of the outbound HTTP request",
        )

    async def post_json(self, url: str, content: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``content`` (JSON text); the status and body of a 2xx, else HTTPStatusError."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"only plain http:// worker URLs: {url}")
        host, port = parts.hostname, parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        attrs: dict[str, str | int] = {"http.method": "POST", "http.scheme": "http",
                                       "http.host": host, "net.peer.name": host,
                                       "net.peer.port": port, "http.flavor": "1.1"}  # fmt: skip
        with _tracer.start_as_current_span(
            "POST", kind=SpanKind.CLIENT, attributes={"http.method": "POST", "http.url": url}
        ) as span:
            carrier: dict[str, str] = {}
            _propagator.inject(carrier)
            body = content.encode()
            head = [f"POST {path} HTTP/1.1", f"host: {parts.netloc}",
                    f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items()),
                    *(f"{k}: {v}" for k, v in carrier.items())]  # fmt: skip
            request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_s):
                    status, reply = await self._exchange(host, port, request)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(f"no answer from {url} in {self.timeout_s}s") from exc
            span.set_attribute("http.status_code", status)
            if status >= 400:
                span.set_status(trace.StatusCode.ERROR)
            attrs["http.status_code"] = status
            self._duration.record(
                max(round((time.perf_counter() - started) * 1000), 0), attributes=attrs
            )
        if not 200 <= status < 300:
            req = httpx.Request("POST", url)
            response = httpx.Response(status, content=reply, request=req)
            raise httpx.HTTPStatusError(f"HTTP {status} from {url}", request=req, response=response)
        return status, reply

    async def _exchange(self, host: str, port: int, request: bytes) -> tuple[int, bytes]:
        conn = self._take(host, port)
        if conn is None:
            try:
                conn = _Conn(*await asyncio.open_connection(host, port))
            except OSError as exc:
                raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        try:
            status, reply, keep = await conn.exchange(request)
        except BaseException:
            conn.close()  # a half-read answer (or a cancel) leaves the connection unusable
            raise
        if keep:
            self._idle.setdefault((host, port), []).append((time.monotonic(), conn))
        else:
            conn.close()
        return status, reply

    def _take(self, host: str, port: int) -> _Conn | None:
        idle = self._idle.get((host, port), [])
        now = time.monotonic()
        while idle:
            since, conn = idle.pop()
            if now - since < _IDLE_REUSE_S and conn.usable():
                return conn
            conn.close()
        return None

    def close(self) -> None:
        for idle in self._idle.values():
            for _, conn in idle:
                conn.close()
        self._idle.clear()


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        # Closed by the server (an end of stream already read) or by us.
        return not (self.reader.at_eof() or self.writer.is_closing())

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        try:
            self.writer.write(request)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise httpx.RemoteProtocolError(f"incomplete answer: {exc}") from exc
        except OSError as exc:
            raise httpx.WriteError(f"{type(exc).__name__}: {exc}") from exc
        if len(head) > _MAX_HEAD:
            raise httpx.RemoteProtocolError("answer head too large")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        try:
            status = int(rest[:3])
        except ValueError as exc:
            raise httpx.RemoteProtocolError(f"bad status line {lines[0]!r}") from exc
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip().lower()
        keep = version == "HTTP/1.1" and fields.get("connection") != "close"
        try:
            if fields.get("transfer-encoding") == "chunked":
                body = await self._chunked()
            elif "content-length" in fields:
                body = await self.reader.readexactly(int(fields["content-length"]))
            else:  # delimited by the end of the connection
                body, keep = await self.reader.read(), False
        except (asyncio.IncompleteReadError, ValueError) as exc:
            raise httpx.RemoteProtocolError(f"incomplete answer body: {exc}") from exc
        return status, body, keep

    async def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])

    def close(self) -> None:
        self.writer.close()
