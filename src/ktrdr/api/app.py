"""The backend application: wiring of store, services, dispatcher and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry

from ktrdr import __version__
from ktrdr.api.auth import Keyring
from ktrdr.api.docs import install_offline_docs
from ktrdr.api.errors import install_error_handlers
from ktrdr.api.limits import RequestLimits
from ktrdr.api.routers import campaigns, data, health, operations, starts, workers
from ktrdr.api.state_reader import StoreStateReader
from ktrdr.campaigns.driver import CampaignDriver
from ktrdr.config import ApiSettings
from ktrdr.console import mount_console
from ktrdr.constants import API_PREFIX, BARS_DIR
from ktrdr.db.engine import make_engine, upgrade_schema
from ktrdr.dispatch.dispatcher import Dispatcher
from ktrdr.engine.strategy import builtin_strategy_names
from ktrdr.jobs.specs import get_spec
from ktrdr.operations import data_deletion
from ktrdr.operations.model import OperationType
from ktrdr.operations.service import OperationService
from ktrdr.operations.store import Store
from ktrdr.operations.waiters import EndWaiters
from ktrdr.registry.service import WorkerService
from ktrdr.telemetry.metrics import PlatformMetrics
from ktrdr.telemetry.metrics_endpoint import render_metrics
from ktrdr.telemetry.setup import FASTAPI_TELEMETRY_OFF

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings, *, registry: CollectorRegistry = REGISTRY) -> FastAPI:
    metrics = PlatformMetrics(
        registry=registry,
        operation_types=[t.value for t in OperationType],
        # Kinds a worker can offer: not campaign parents or chunk types (they ride on one).
        worker_kinds=[t.value for t in OperationType if get_spec(t).worker_kind == t],
        strategies=builtin_strategy_names(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url())
        await asyncio.to_thread(upgrade_schema, engine)
        store = Store(engine)
        # A deletion a crash interrupted: finish it or undo it before serving the catalog.
        await asyncio.to_thread(data_deletion.recover, store, settings.data_home / BARS_DIR)
        artifacts = settings.artifact_store()
        operations_service = OperationService(
            store, max_attempts=settings.max_attempts, events=metrics, artifacts=artifacts
        )
        await asyncio.to_thread(store.refresh_all_heartbeats, operations_service.clock())
        # Workers that registered before a backend restart do not register again: give
        # their dispatch counters the zero start here.
        for known in await asyncio.to_thread(store.list_workers):
            metrics.worker_registered(known.id, [k.value for k in known.kinds])
        workers_service = WorkerService(
            operations_service,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            dispatch_grace_s=settings.dispatch_grace_s,
        )
        auth = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
        async with httpx.AsyncClient(timeout=settings.dispatch_timeout_s) as client:
            dispatcher = Dispatcher(
                operations_service,
                workers_service,
                client,
                auth_headers=auth,
                poll_s=settings.dispatch_poll_s,
            )
            driver = CampaignDriver(
                operations_service,
                poll_s=settings.dispatch_poll_s,
                events=metrics,
                send_cancel=dispatcher.send_cancel_to,
            )

            operations_service.on_queue_change = dispatcher.wake
            operations_service.on_campaign_change = driver.wake
            waiters = EndWaiters()
            waiters.bind(asyncio.get_running_loop())
            operations_service.on_end = waiters.notify
            app.state.waiters = waiters
            metrics.set_state_reader(StoreStateReader(store))
            app.state.operations = operations_service
            app.state.workers = workers_service
            app.state.dispatcher = dispatcher
            app.state.artifacts = artifacts
            task = asyncio.create_task(dispatcher.run(), name="dispatcher")
            driver_task = asyncio.create_task(driver.run(), name="campaign-driver")
            if not settings.api_token:
                log.warning(
                    "KTRDR_API_TOKEN is not set: any process can register as a worker "
                    "(fine on one machine; set it for anything else)"
                )
            if not app.state.keyring.enabled:
                log.warning(
                    "no user API keys configured (KTRDR_API_KEYS / KTRDR_API_KEYS_FILE): "
                    "anyone who reaches %s:%s can start, cancel and read operations "
                    "(fine on one machine; configure keys for anything else)",
                    settings.host,
                    settings.port,
                )
            log.info("ktrdr-api %s ready, database %s", __version__, engine.url.render_as_string())
            try:
                yield
            finally:
                for running in (task, driver_task):
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
                await dispatcher.close()
                metrics.set_state_reader(None)
                engine.dispose()

    app = FastAPI(
        title="ktrdr-api",
        version=__version__,
        description="KTRDR backend: queues backtests, training runs and data downloads "
        "and hands them to self-registering workers.",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_offline_docs
        redoc_url=None,
        telemetry=FASTAPI_TELEMETRY_OFF,  # type: ignore[arg-type]
    )
    app.state.settings = settings
    app.state.keyring = Keyring(settings.user_api_keys())
    app.state.started_monotonic = time.monotonic()
    install_error_handlers(app)
    install_offline_docs(app)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    routers = (health.router, workers.router, operations.router, starts.router, data.router,
               campaigns.router)  # fmt: skip
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    mount_console(app)  # the web console at / (pages, live fragments, assets)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        body, content_type = render_metrics(request.headers.get("accept"), registry)
        return Response(body, media_type=content_type)

    return app
