"""A tiny FastAPI app wired exactly as the API and workers wire telemetry.

Run as a subprocess by the tests (and the benchmark), because OpenTelemetry's global
providers can be set only once per process:

    python tests/telemetry/instrumented_app.py --port 8123 [--no-telemetry]

The OTLP endpoint comes from the environment (OTEL_EXPORTER_OTLP_ENDPOINT or
KTRDR_OTLP_ENDPOINT), as in production.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from opentelemetry import trace

from ktrdr.telemetry.context import operation_id_var
from ktrdr.telemetry.logs import configure_logging
from ktrdr.telemetry.metrics_endpoint import render_metrics

SERVICE_NAME = "ktrdr-telemetry-test-app"
logger = logging.getLogger("ktrdr.test_app")
tracer = trace.get_tracer("ktrdr.test_app")


def build_app(port: int, telemetry: bool) -> FastAPI:
    handle = None
    if telemetry:
        from ktrdr.telemetry.setup import instrument_app, instrument_httpx, setup_telemetry

        handle = setup_telemetry(
            SERVICE_NAME,
            instance_id=f"test-app-{port}",
            attributes={"worker.id": f"test-app-{port}", "worker.kind": "test"},
        )
        instrument_httpx()
    # Logs are JSON either way, so the benchmark's on/off difference is OpenTelemetry alone.
    configure_logging(SERVICE_NAME, "INFO")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            app.state.client = client
            yield
        if handle is not None:
            handle.shutdown()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/v1/operations/{operation_id}")
    async def get_operation(operation_id: str) -> dict[str, str]:
        return {"operation_id": operation_id, "status": "running"}

    @app.post("/api/v1/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    @app.get("/api/v1/chain/{operation_id}")
    async def chain(operation_id: str, request: Request) -> dict[str, str | None]:
        """Server span -> internal span -> httpx client span -> server span (same trace)."""
        token = operation_id_var.set(operation_id)
        try:
            with tracer.start_as_current_span("operations.lookup") as span:
                span.set_attribute("operation.id", operation_id)
                logger.info("looking up operation")
                reply = await request.app.state.client.get(f"/api/v1/operations/{operation_id}")
                ctx = span.get_span_context()
                return {
                    "status": str(reply.status_code),
                    "trace_id": format(ctx.trace_id, "032x"),
                    "span_id": format(ctx.span_id, "016x"),
                }
        finally:
            operation_id_var.reset(token)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        body, content_type = render_metrics(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    if telemetry:
        instrument_app(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-telemetry", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("KTRDR_ENVIRONMENT", "test")
    app = build_app(args.port, telemetry=not args.no_telemetry)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
