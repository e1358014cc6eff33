"""CLI spans (`cli.<command>`), set up only when an OTLP endpoint is configured, so a
plain `ktrdr --help` or `ktrdr ops list` never loads the telemetry SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ktrdr.constants import CLI_SERVICE_NAME

_ENDPOINT_VARS = (
    "KTRDR_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def tracing_configured() -> bool:
    return any(os.environ.get(name) for name in _ENDPOINT_VARS)


@contextmanager
def cli_span(command: str, **attributes: Any) -> Iterator[Any]:
    """A root span for one CLI command; yields the span (or None when tracing is off)."""
    if not tracing_configured():
        yield None
        return
    from opentelemetry import trace

    from ktrdr.telemetry.setup import setup_telemetry

    handle = setup_telemetry(CLI_SERVICE_NAME, instance_id=f"pid-{os.getpid()}")
    tracer = trace.get_tracer("ktrdr.cli")
    try:
        with tracer.start_as_current_span(f"cli.{command}", attributes=attributes) as span:
            yield span
    finally:
        handle.shutdown(timeout_s=1.0)  # a CLI must not hang on a dead collector
