"""Structured logs: one JSON object per line on stderr, correlated with traces.

Every line carries the current span's ``trace_id``/``span_id`` (so a log line leads to its
trace in Jaeger) and the ``operation_id`` when one is known, taken from
``extra={"operation_id": ...}`` or from :data:`ktrdr.telemetry.context.operation_id_var`.
Only the OpenTelemetry *API* is used here: the SDK is not needed to read the current span.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from ktrdr.telemetry.context import operation_id_var

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
# Marks the handler we install so a second call replaces it instead of doubling output.
_HANDLER_MARK = "_ktrdr_telemetry_handler"


class TraceContextFilter(logging.Filter):
    """Adds ``service``, ``trace_id``, ``span_id`` and ``operation_id`` to each record."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service_name
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else None
        # An explicit extra= wins over the ambient contextvar.
        if getattr(record, "operation_id", None) is None:
            record.operation_id = operation_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record (already enriched by :class:`TraceContextFilter`) as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": getattr(record, "service", None),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_ATTRS and key not in entry:
                entry[key] = value
        if entry.get("operation_id") is None:
            entry.pop("operation_id", None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str: an odd extra value must never make a log call raise.
        return jsonlib.dumps(entry, default=str)


_TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [%(service)s trace=%(trace_id)s "
    "op=%(operation_id)s] %(message)s"
)


def configure_logging(service_name: str, level: int | str = "INFO", json: bool = True) -> None:
    """Send the root logger's output to stderr as JSON lines (or readable text).

    Call once at process start, after ``setup_telemetry``; calling again replaces the
    handler rather than adding a second one.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContextFilter(service_name))
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(_TEXT_FORMAT))
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx logs every request at INFO; worker heartbeats would bury everything else.
    httpx_logger = logging.getLogger("httpx")
    if httpx_logger.level == logging.NOTSET:
        httpx_logger.setLevel(logging.WARNING)
