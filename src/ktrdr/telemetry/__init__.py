"""Telemetry: OpenTelemetry SDK set-up, Prometheus metrics, JSON logs.

Submodules are imported explicitly (``ktrdr.telemetry.metrics`` ...) rather than
re-exported here, so that importing the light parts (metrics, context, logs) never
pulls in the OpenTelemetry SDK: only ``ktrdr.telemetry.setup`` does.
"""
