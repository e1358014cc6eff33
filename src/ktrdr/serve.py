"""Process entry points for the API and workers: telemetry once, then uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from ktrdr.config import ApiSettings, WorkerSettings
from ktrdr.constants import API_SERVICE_NAME, WORKER_SERVICE_PREFIX


def serve_api(settings: ApiSettings) -> None:
    from ktrdr.api.app import create_app
    from ktrdr.telemetry.logs import configure_logging
    from ktrdr.telemetry.setup import (
        instrument_app,
        instrument_httpx,
        setup_telemetry,
        shutdown_with_app,
    )

    configure_logging(API_SERVICE_NAME, settings.log_level)
    handle = setup_telemetry(
        API_SERVICE_NAME,
        instance_id=f"{settings.host}:{settings.port}",
        otlp_endpoint=settings.otlp_endpoint,
    )
    instrument_httpx()
    app = create_app(settings)
    instrument_app(app)
    shutdown_with_app(app, handle)
    try:
        _run(app, settings.host, settings.port, limit_concurrency=settings.max_connections)
    finally:
        handle.shutdown()  # when uvicorn returns normally; a signal ends in the lifespan


def serve_worker(settings: WorkerSettings) -> None:
    from ktrdr.telemetry.logs import configure_logging
    from ktrdr.telemetry.setup import (
        instrument_app,
        instrument_httpx,
        setup_telemetry,
        shutdown_with_app,
    )
    from ktrdr.worker.app import create_worker_app, resolve_kinds

    kinds = resolve_kinds(settings.kinds)
    # One stable service name per worker kind (not per random id); the id is an attribute.
    service = f"{WORKER_SERVICE_PREFIX}-{kinds[0].value if len(kinds) == 1 else 'general'}"
    worker_id = settings.resolved_worker_id()
    configure_logging(service, settings.log_level)
    handle = setup_telemetry(
        service,
        instance_id=worker_id,
        attributes={"worker.id": worker_id, "worker.kinds": ",".join(k.value for k in kinds)},
        otlp_endpoint=settings.otlp_endpoint,
    )
    instrument_httpx()
    app = create_worker_app(settings)
    instrument_app(app)
    shutdown_with_app(app, handle)
    logging.getLogger(__name__).info("worker %s serving %s", worker_id, [k.value for k in kinds])
    try:
        _run(app, settings.host, settings.port)
    finally:
        handle.shutdown()  # when uvicorn returns normally; a signal ends in the lifespan


def _run(app: FastAPI, host: str, port: int, *, limit_concurrency: int | None = None) -> None:
    # reset_contextvars: every request starts from an empty context. Without it, on
    # asyncio a request whose body exceeds uvicorn's 64 KiB read buffer (a worker's final
    # report with trades and equity curve) leaves its server span current on the
    # keep-alive connection, and the next untraced request there (a heartbeat) joins that
    # operation's trace (CPython #140947; the flag exists since uvicorn 0.45).
    from ktrdr.http_protocol import CappedHttpToolsProtocol

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        reset_contextvars=True,
        # httptools (llhttp, C) and uvloop: h11 and the asyncio loop were a third of the
        # API's CPU per zero-work operation (bench_platform profile). The subclass keeps
        # h11's cap of 16 KiB on a request's head, which llhttp alone does not have.
        # Slow or greedy clients: an idle keep-alive connection closes after 5 s, and
        # past `limit_concurrency` connections + requests uvicorn answers 503 instead of
        # running out of file descriptors. Bodies are bounded in size and time by the
        # API's RequestLimits middleware.
        http=CappedHttpToolsProtocol,
        loop="auto",  # uvloop where installed (not on Windows)
        timeout_keep_alive=5,
        limit_concurrency=limit_concurrency,
    )
