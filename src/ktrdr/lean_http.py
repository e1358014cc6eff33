"""Lean HTTP/1.1 for the two calls on the path of every operation: the backend's push of
new work to a worker (ktrdr.dispatch.push, asyncio) and the worker's final report
(``SyncClient``).

httpx with its OpenTelemetry instrumentation cost about 1 ms of CPU per call, a third of
it the instrumentation. These write the request bytes themselves on a kept-alive
connection, and keep what the instrumentation gave: one CLIENT span per call whose
context goes in ``traceparent`` (the server's span joins the trace), and the
``http.client.duration`` histogram (ms; the instrumentation's name, unit, description and
attributes: one ``http_client_duration_milliseconds`` family with the process's other
calls). Failures are httpx's exceptions, so callers handle both clients alike.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import IO
from urllib.parse import SplitResult, urlsplit

import httpx
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_tracer = trace.get_tracer("ktrdr.lean_http")
_propagator = TraceContextTextMapPropagator()
# Reused only while well inside the server's keep-alive timeout (uvicorn closes an idle
# connection after 5 s): a connection it closed meanwhile would fail the call.
IDLE_REUSE_S = 2.0
MAX_HEAD = 64 * 1024


class Target:
    """Where a URL points: host, port, the request target, the Host header."""

    def __init__(self, url: str):
        parts: SplitResult = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"only plain http:// URLs: {url}")
        self.url = url
        self.host, self.port = parts.hostname, parts.port or 80
        self.netloc = parts.netloc
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class Call:
    """One call's span, traceparent and duration metric (see the module docstring)."""

    _duration = metrics.get_meter("ktrdr.lean_http").create_histogram(
        "http.client.duration",
        unit="ms",
        description="measures the duration of the outbound HTTP request",
    )

    def __init__(self, target: Target, body: bytes, headers: dict[str, str]):
        self.target = target
        self.body = body
        self.headers = headers
        self.status = 0

    @contextlib.contextmanager
    def traced(self) -> Iterator[bytes]:
        """The request's bytes, inside the call's span; set ``status`` before leaving."""
        t = self.target
        with _tracer.start_as_current_span(
            "POST", kind=SpanKind.CLIENT, attributes={"http.method": "POST", "http.url": t.url}
        ) as span:
            carrier: dict[str, str] = {}
            _propagator.inject(carrier)
            fields = {"host": t.netloc, "content-length": str(len(self.body)), **self.headers}
            lines = [f"POST {t.path} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in (*fields.items(), *carrier.items())]
            started = time.perf_counter()
            yield ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body
            span.set_attribute("http.status_code", self.status)
            if self.status >= 400:
                span.set_status(trace.StatusCode.ERROR)
            attrs: dict[str, str | int] = {
                "http.method": "POST",
                "http.scheme": "http",
                "http.host": t.host,
                "net.peer.name": t.host,
                "net.peer.port": t.port,
                "http.flavor": "1.1",
                "http.status_code": self.status,
            }
            elapsed_ms = round((time.perf_counter() - started) * 1000)
            self._duration.record(max(elapsed_ms, 0), attributes=attrs)


def parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, lower-cased header fields, and whether the connection may be kept."""
    if len(head) > MAX_HEAD:
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
    return status, fields, version == "HTTP/1.1" and fields.get("connection") != "close"


def status_error(url: str, status: int, body: bytes) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", url)
    response = httpx.Response(status, content=body, request=request)
    return httpx.HTTPStatusError(f"HTTP {status} from {url}", request=request, response=response)


class SyncClient:
    """Blocking POSTs on one kept-alive connection per host; one call at a time."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, int], tuple[float, socket.socket, IO[bytes]]] = {}

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Any status with its body (the caller decides what each means)."""
        target = Target(url)
        call = Call(target, body, headers)
        with self._lock, call.traced() as request:
            sock, stream, reused = self._connection(target)
            try:
                status, reply, keep = _exchange(sock, stream, request)
            except httpx.TransportError:
                sock.close()
                if not reused:
                    raise
                # Closed by the server as we reused it: once more on a new connection
                # (the calls this client makes may be repeated: a repeated report is a no-op).
                sock, stream, _ = self._connection(target)
                try:
                    status, reply, keep = _exchange(sock, stream, request)
                except BaseException:
                    sock.close()
                    raise
            except BaseException:
                sock.close()
                raise
            if keep:
                self._idle[(target.host, target.port)] = (time.monotonic(), sock, stream)
            else:
                sock.close()
            call.status = status
        return status, reply

    def _connection(self, target: Target) -> tuple[socket.socket, IO[bytes], bool]:
        idle = self._idle.pop((target.host, target.port), None)
        if idle is not None:
            since, sock, stream = idle
            # Readable while idle: the server closed it (or sent what nobody asked for).
            if time.monotonic() - since < IDLE_REUSE_S and not select.select([sock], [], [], 0)[0]:
                return sock, stream, True
            sock.close()
        try:
            sock = socket.create_connection((target.host, target.port), self.timeout_s)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, sock.makefile("rb"), False

    def close(self) -> None:
        with self._lock:
            for _, sock, _ in self._idle.values():
                sock.close()
            self._idle.clear()


def _exchange(sock: socket.socket, stream: IO[bytes], request: bytes) -> tuple[int, bytes, bool]:
    try:
        sock.sendall(request)
    except TimeoutError as exc:
        raise httpx.WriteTimeout(str(exc)) from exc
    except OSError as exc:
        raise httpx.WriteError(f"{type(exc).__name__}: {exc}") from exc
    try:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = stream.readline(MAX_HEAD + 1)
            if not line or len(head) > MAX_HEAD:
                raise httpx.RemoteProtocolError("the server closed without a full answer")
            head += line
        status, fields, keep = parse_head(head)
        if fields.get("transfer-encoding") == "chunked":
            chunks = []
            while size := int(stream.readline().split(b";")[0], 16):
                chunks.append(_exactly(stream, size))
                _exactly(stream, 2)
            stream.readline()
            body = b"".join(chunks)
        elif "content-length" in fields:
            body = _exactly(stream, int(fields["content-length"]))
        else:  # delimited by the end of the connection
            body, keep = stream.read(), False
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc)) from exc
    except ValueError as exc:
        raise httpx.RemoteProtocolError(f"bad answer: {exc}") from exc
    except OSError as exc:
        raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
    return status, body, keep


def _exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise httpx.RemoteProtocolError("the server closed in the middle of the answer")
    return data
