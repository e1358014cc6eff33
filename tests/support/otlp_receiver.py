"""In-test OTLP/HTTP trace receiver.

It stands in for Jaeger (or an OpenTelemetry Collector), which cannot run here: processes
under test export real OTLP/HTTP protobuf to it and tests assert on what arrived, so the
whole path (SDK -> batch processor -> OTLP exporter -> HTTP) is exercised.

    receiver = OtlpReceiver()
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    ...
    spans = receiver.wait_for(lambda ss: any(s.name == "backtest.simulation" for s in ss))
    receiver.close()
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, flattened for assertions. Ids are lowercase hex."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service_name: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    # OTLP StatusCode: 0 unset, 1 ok, 2 error.
    status_code: int = 0
    resource: dict[str, Any] = field(default_factory=dict)
    # (name, attributes) of each span event; (trace_id, span_id) of each link.
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def _decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        service_name=resource.get("service.name"),
                        attributes={kv.key: _value(kv.value) for kv in span.attributes},
                        status_code=int(span.status.code),
                        resource=resource,
                        events=[
                            (e.name, {kv.key: _value(kv.value) for kv in e.attributes})
                            for e in span.events
                        ],
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    )
                )
    return spans


class OtlpReceiver:
    """Tiny threaded HTTP server accepting ``POST /v1/traces`` on a free local port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._spans: list[ReceivedSpan] = []
        self._cond = threading.Condition()
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                try:
                    spans = _decode(body)
                except Exception:
                    self.send_error(400, "not an ExportTraceServiceRequest")
                    return
                receiver._add(spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``KTRDR_OTLP_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._cond:
            self._spans.extend(spans)
            self.requests += 1
            self._cond.notify_all()

    def spans(self) -> list[ReceivedSpan]:
        """Everything received so far (a copy)."""
        with self._cond:
            return list(self._spans)

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout_s: float = 10.0
    ) -> list[ReceivedSpan]:
        """Block until ``predicate(spans)`` is true; return the spans or raise TimeoutError."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(list(self._spans)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = sorted({s.name for s in self._spans})
                    raise TimeoutError(
                        f"spans not received within {timeout_s} s; got {len(self._spans)}: {names}"
                    )
                self._cond.wait(remaining)
            return list(self._spans)

    def clear(self) -> None:
        with self._cond:
            self._spans.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
