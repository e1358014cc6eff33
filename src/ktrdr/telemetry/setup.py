"""OpenTelemetry SDK configuration, once per process (API, each worker, CLI).

Core code creates spans with the plain API (``trace.get_tracer(...)``); this module only
installs the providers behind it:

* traces: a real ``TracerProvider`` always (so trace ids exist for logs, exemplars and
  ``traceparent`` even with no collector), exporting over OTLP/HTTP only when an endpoint
  is configured, to stderr with ``console=True``, otherwise nowhere;
* metrics: a ``MeterProvider`` read by the OTel ``PrometheusMetricReader``, so the HTTP
  instruments land in prometheus_client's default ``REGISTRY`` next to ``process_*``,
  ``python_gc_*``, ``python_info`` and ``target_info``.

The OTLP exporter runs on the batch processor's thread with a short timeout, so a missing
collector never slows request handling; its repeated failure logs are rate-limited.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

import ktrdr
from ktrdr.telemetry.logs import configure_logging

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

__all__ = [
    "TelemetryHandle",
    "configure_logging",
    "instrument_app",
    "instrument_httpx",
    "resolve_traces_endpoint",
    "setup_telemetry",
    "shutdown_with_app",
]

logger = logging.getLogger(__name__)

# Seconds per export attempt (retries included) when no OTEL_*_TIMEOUT is set. The SDK
# default (10 s) would hold the exporter thread and delay shutdown far too long.
DEFAULT_EXPORT_TIMEOUT_S = 2.0
# Scrapes every few seconds would otherwise flood Jaeger with "GET /metrics" traces.
# Anchored so that e.g. /api/v1/operations/{id}/metrics stays traced.
DEFAULT_EXCLUDED_URLS = r"//[^/]+/metrics(\?.*)?$"
# Loggers that repeat the same failure for every batch while the collector is down.
_NOISY_EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.sdk._shared_internal",
)
_EXPORT_LOG_INTERVAL_S = 60.0


@dataclass
class TelemetryHandle:
    """What ``setup_telemetry`` installed; call :meth:`shutdown` at process exit."""

    service_name: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    traces_endpoint: str | None
    span_exporters: list[SpanExporter] = field(default_factory=list, repr=False)
    _shutdown_done: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush pending spans for at most about ``timeout_s``, then stop. Idempotent."""
        with self._lock:
            if self._shutdown_done:
                return
            self._shutdown_done = True
        # The SDK's force_flush ignores its timeout (it exports every queued batch, each
        # with retries), so bound it from outside with a helper thread.
        flusher = threading.Thread(
            target=self.tracer_provider.force_flush, name="ktrdr-span-flush", daemon=True
        )
        flusher.start()
        flusher.join(timeout_s)
        if flusher.is_alive():
            # Collector unreachable: stopping the exporter aborts its retry back-off and
            # makes the remaining batches fail at once instead of each waiting again.
            logger.warning("span flush exceeded %.1f s; dropping unexported spans", timeout_s)
            for exporter in self.span_exporters:
                exporter.shutdown()
            flusher.join(DEFAULT_EXPORT_TIMEOUT_S)
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown(int(timeout_s * 1000))


_handle: TelemetryHandle | None = None


def resolve_traces_endpoint(otlp_endpoint: str | None = None) -> str | None:
    """Full OTLP/HTTP traces URL from the argument or environment; None when unset.

    Order: argument, ``KTRDR_OTLP_ENDPOINT`` (base URL), ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
    (full URL, used as is), ``OTEL_EXPORTER_OTLP_ENDPOINT`` (base URL).
    """
    base = otlp_endpoint or os.environ.get("KTRDR_OTLP_ENDPOINT")
    if not base:
        if full := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            return full
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return None
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def setup_telemetry(
    service_name: str,
    *,
    instance_id: str,
    attributes: dict[str, str] | None = None,
    otlp_endpoint: str | None = None,
    console: bool = False,
) -> TelemetryHandle:
    """Install global tracer and meter providers for this process.

    Call once per process entry point; OpenTelemetry allows global providers to be set
    only once, so a second call logs a warning and returns the first handle.
    ``service_name`` is stable per process kind (``ktrdr-api``, ``ktrdr-worker-backtesting``);
    ``instance_id`` and ``attributes`` (``worker.id``, ``worker.kind``) tell instances apart.
    """
    global _handle
    if _handle is not None:
        logger.warning(
            "setup_telemetry(%r) called again; keeping %r", service_name, _handle.service_name
        )
        return _handle
    _keep_contract_http_metric_names()
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": ktrdr.__version__,
            "service.instance.id": instance_id,
            "deployment.environment": os.environ.get("KTRDR_ENVIRONMENT", "local"),
            **(attributes or {}),
        }
    )
    endpoint = resolve_traces_endpoint(otlp_endpoint)
    # shutdown_on_exit=False: our own atexit hook below runs the idempotent handle.shutdown.
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    exporters: list[SpanExporter] = []
    if endpoint:
        exporters.append(_otlp_exporter(endpoint))
        _rate_limit_export_logs()
    elif console:
        exporters.append(ConsoleSpanExporter(out=sys.stderr))
    for exporter in exporters:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _handle = TelemetryHandle(service_name, tracer_provider, meter_provider, endpoint, exporters)
    atexit.register(_handle.shutdown)
    logger.debug("telemetry ready: service=%s traces=%s", service_name, endpoint or "off")
    return _handle


def _otlp_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    explicit_timeout = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    )
    timeout_s = None if explicit_timeout else DEFAULT_EXPORT_TIMEOUT_S
    return OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)


def _keep_contract_http_metric_names() -> None:
    """Keep the contract's ``http_server_duration_milliseconds`` & co. exposed.

    The instrumentations (0.66b2) emit those old-semconv instruments by default. An
    ``OTEL_SEMCONV_STABILITY_OPT_IN=http`` would replace them with the new
    ``http_server_request_duration_seconds`` names and silently break dashboards, so
    ``http`` is widened to ``http/dup`` (both sets). Must run before any instrumentor
    initialises, since the mode is read once per process.
    """
    raw = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    modes = {m.strip() for m in raw.split(",") if m.strip()}
    if "http" in modes:
        modes = (modes - {"http"}) | {"http/dup"}
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = ",".join(sorted(modes))
        logger.warning("OTEL_SEMCONV_STABILITY_OPT_IN=http widened to http/dup (contract names)")


class _RateLimitFilter(logging.Filter):
    """Let one record through per interval; say how many were dropped meanwhile."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._next_allowed = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next_allowed:
                self._suppressed += 1
                return False
            self._next_allowed = now + self._interval_s
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar messages suppressed)"
        return True


def _rate_limit_export_logs() -> None:
    for name in _NOISY_EXPORT_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _RateLimitFilter) for f in target.filters):
            target.addFilter(_RateLimitFilter(_EXPORT_LOG_INTERVAL_S))


# For FastAPI(telemetry=...): its own (newer) tracing, metrics and logs off. The spans and
# the contract's http_server_* metrics come from the OpenTelemetry instrumentation below;
# with it installed FastAPI's layer recorded nothing, yet still wrapped every request and
# endpoint (a profile of a dispatch burst showed it on every stack).
FASTAPI_TELEMETRY_OFF: dict[str, Any] = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def instrument_app(
    app: FastAPI,
    *,
    excluded_urls: str | None = DEFAULT_EXCLUDED_URLS,
    registry: CollectorRegistry | None = None,
) -> None:
    """Server spans, ``http_server_*`` metrics and ``ktrdr_http_server_errors_total``.

    Call before the app serves its first request. Metric label ``http_target`` carries the
    route template (``/api/v1/operations/{operation_id}``), never the raw path, so
    cardinality stays bounded. ``excluded_urls`` (comma-separated regexes on the full URL)
    defaults to skipping ``/metrics`` scrapes. ``registry`` (default: prometheus_client's
    global one, where the OTel reader puts the HTTP metrics too) gets the error counter.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from prometheus_client import REGISTRY

    from ktrdr.telemetry.http_metrics import ErrorCountingMiddleware, HttpErrorMetrics
    from ktrdr.telemetry.span_names import use_fast_span_details

    _keep_contract_http_metric_names()
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=excluded_urls,
        # The per-message ASGI send/receive spans double span volume and say nothing new.
        exclude_spans=["receive", "send"],
    )
    use_fast_span_details(app)
    # Inside the OTel middleware (user middlewares are wrapped by it), so it runs first
    # on the way out and the metric label sees the full template.
    app.add_middleware(_FullRouteTemplateMiddleware)
    app.add_middleware(ErrorCountingMiddleware, metrics=HttpErrorMetrics(registry or REGISTRY))


class _FullRouteTemplateMiddleware:
    """Put the full route template in ``scope["route"]`` for the ``http_target`` label.

    FastAPI >= 0.137 nests included routers and leaves the *router's* route in
    ``scope["route"]``, whose ``path_format`` lacks the ``include_router(prefix=...)``
    part; the ASGI instrumentation labels metrics with that, so the API's routes showed
    as ``/operations/{operation_id}`` instead of ``/api/v1/operations/{operation_id}``.
    After the request, swap in FastAPI's ``RouteContext`` (full ``path_format``, every
    other attribute delegated to the route).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._contexts: dict[int, Any] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route") if scope.get("type") == "http" else None
            if route is not None:
                context = self._route_contexts(scope.get("app")).get(id(route))
                if context is not None:
                    scope["route"] = context

    def _route_contexts(self, app: Any) -> dict[int, Any]:
        if self._contexts is None:  # routes are fixed once the app serves requests
            try:
                from fastapi.routing import iter_route_contexts
            except ImportError:  # older FastAPI: routes are flat, templates already full
                self._contexts = {}
                return self._contexts
            self._contexts = {
                id(ctx.original_route): ctx
                for ctx in iter_route_contexts(getattr(app, "routes", []))
                if ctx.path_format
                and ctx.path_format != getattr(ctx.original_route, "path_format", None)
            }
        return self._contexts


def shutdown_with_app(app: FastAPI, handle: TelemetryHandle) -> None:
    """Flush and stop ``handle`` at the end of the app's own lifespan shutdown.

    uvicorn re-raises a captured SIGTERM/SIGINT after its graceful shutdown, so neither a
    ``finally:`` around ``uvicorn.run`` nor an atexit hook ever runs: the spans still in
    the batch processor (up to 5 s of them: a run's last phases, a cancel) were lost.
    The lifespan's shutdown is the last code that surely runs; it wraps the app's own
    lifespan, so spans of the app's shutdown work (final reports, deregistering) go too.
    """
    import asyncio
    import contextlib

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(served: Any) -> Any:
        try:
            async with inner(served) as state:
                yield state
        finally:
            await asyncio.to_thread(handle.shutdown)

    app.router.lifespan_context = lifespan


def instrument_httpx(client: httpx.Client | httpx.AsyncClient | None = None) -> None:
    """Client spans, W3C ``traceparent`` and ``http_client_duration_milliseconds``.

    Without ``client``: every httpx client in the process, sync and async, including
    those created earlier. With ``client``: only that one.
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    _keep_contract_http_metric_names()
    if client is not None:
        HTTPXClientInstrumentor.instrument_client(client)
        return
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
