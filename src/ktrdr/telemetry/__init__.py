"""Telemetry: OpenTelemetry SDK set-up, Prometheus metrics, JSON logs.

Wiring, per process entry point (API, each worker; the CLI only when an endpoint is set):

    configure_logging(service, level)                  # ktrdr.telemetry.logs
    handle = setup_telemetry(service, instance_id=...)  # ktrdr.telemetry.setup
    instrument_httpx()
    app = create_app(...); instrument_app(app)         # before the first request
    ...                                                 # serve; GET /metrics -> render_metrics
    handle.shutdown()                                   # flush spans at exit

Submodules are imported explicitly rather than re-exported here, so that importing the
light parts (metrics, metrics_endpoint, context, logs) never pulls in the OpenTelemetry
SDK: only ``ktrdr.telemetry.setup`` does.
"""
