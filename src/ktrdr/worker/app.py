"""The worker's HTTP surface: start (one route per job kind), cancel, health, metrics."""

from __future__ import annotations

import contextlib
import importlib
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field

from ktrdr import __version__
from ktrdr.config import WorkerSettings
from ktrdr.http_errors import install_error_handlers
from ktrdr.jobs.data_download import Provider
from ktrdr.jobs.specs import get_spec, types_run_by
from ktrdr.operations.model import OperationType
from ktrdr.telemetry.metrics import JobMetrics
from ktrdr.telemetry.metrics_endpoint import render_metrics
from ktrdr.telemetry.setup import FASTAPI_TELEMETRY_OFF
from ktrdr.worker.backend_client import BackendClient
from ktrdr.worker.runners import PHASES, RUNNERS, missing_extra
from ktrdr.worker.runners.stores import configure_bars_cache
from ktrdr.worker.runtime import ShuttingDown, StartRequest, WorkerBusy, WorkerRuntime
from ktrdr.worker.warmup import start_warming


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation_id: str = Field(min_length=1, max_length=64)
    type: OperationType
    params: dict[str, Any]
    attempt: int = Field(ge=1)
    traceparent: str | None = None


def resolve_kinds(requested: list[OperationType]) -> list[OperationType]:
    """The kinds asked for, or every kind this install can run; refuse ones it cannot."""
    # Kinds are what a worker offers; chunk types ride on one (a sweep chunk on backtesting).
    offered = [k for k in RUNNERS if get_spec(k).worker_kind == k]
    available = [k for k in offered if missing_extra(k) is None]
    if not requested:
        return available
    for kind in requested:
        if kind in offered and (how := missing_extra(kind)) is not None:
            raise ValueError(f"this worker cannot run {how}")
    missing = [k.value for k in requested if k not in offered]
    if missing:
        names = ", ".join(k.value for k in available)
        raise ValueError(f"this worker cannot run {', '.join(missing)}; it can run: {names}")
    return list(dict.fromkeys(requested))


# The routes and their dependencies are `async def`: none waits on anything (a start
# takes the job slot's lock and starts the job's thread), and a plain `def` would cost a
# thread-pool hop each on the dispatch path of every operation.
async def _runtime(request: Request) -> WorkerRuntime:
    runtime: WorkerRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[WorkerRuntime, Depends(_runtime)]


async def _backend_only(request: Request) -> None:
    """Only the backend (holder of the shared token) may start or cancel jobs."""
    token = request.app.state.settings.api_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given, token):
        raise HTTPException(401, "only the KTRDR backend may start or cancel jobs here")


async def start_job(body: StartBody, runtime: RuntimeDep, response: Response) -> dict[str, Any]:
    """Take a job from the backend (202), or refuse: 409 busy, 503 shutting down."""
    request = StartRequest(
        body.operation_id, body.type, body.params, body.attempt, body.traceparent
    )
    try:
        accepted = runtime.start_job(request)
    except WorkerBusy as exc:
        raise HTTPException(409, str(exc)) from exc
    except ShuttingDown as exc:
        raise HTTPException(503, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    response.status_code = 202
    return {"operation_id": body.operation_id, "accepted": accepted}


async def cancel_job(operation_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Ask the running job to stop at its next checkpoint."""
    if not runtime.cancel_current(operation_id, reason="cancelled by user"):
        raise HTTPException(404, f"operation {operation_id} is not running on this worker")
    return {"operation_id": operation_id, "cancelling": True}


def preload_libraries(kinds: Iterable[OperationType]) -> None:
    """Import what the worker's jobs need before it registers. Importing PyTorch costs
    seconds of CPU; done inside the first training job it starved the heartbeat thread
    on a loaded machine until the backend declared the worker lost and ran the job again."""
    if OperationType.TRAINING in kinds and missing_extra(OperationType.TRAINING) is None:
        importlib.import_module("torch")
    if OperationType.BACKTESTING in kinds:
        start_warming()  # compiled kernels: in the background, registration goes on


def create_worker_app(
    settings: WorkerSettings, *, registry: CollectorRegistry = REGISTRY
) -> FastAPI:
    worker_id = settings.resolved_worker_id()
    configure_bars_cache(settings.bars_cache_mb)
    kinds = resolve_kinds(settings.kinds)
    metrics = JobMetrics(registry=registry)
    job_types = types_run_by(kinds)
    for job_type in job_types:
        metrics.declare_phases(job_type.value, PHASES[job_type])
    if OperationType.DATA_DOWNLOAD in kinds:
        metrics.declare_providers(p.value for p in Provider)
    preload_libraries(kinds)
    runtime = WorkerRuntime(
        backend=BackendClient(settings.api_url, worker_id, settings.api_token),
        kinds=kinds,
        url=settings.resolved_worker_url(),
        heartbeat_interval_s=settings.heartbeat_interval_s,
        data_home=str(settings.data_home),
        metrics=metrics,
        threads=settings.backtest_threads,
        artifacts=settings.artifact_store(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            # SIGTERM lands here (uvicorn): finish or interrupt the job, report, deregister.
            runtime.shutdown(settings.shutdown_grace_s)

    app = FastAPI(
        title=f"ktrdr-worker ({worker_id})",
        version=__version__,
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY_OFF,  # type: ignore[arg-type]
    )
    app.state.runtime = runtime
    app.state.settings = settings
    install_error_handlers(app)
    backend_only = [Depends(_backend_only)]
    for job_type in job_types:
        app.add_api_route(
            get_spec(job_type).worker_start_path,
            start_job,
            methods=["POST"],
            status_code=202,
            dependencies=backend_only,
            summary=f"Start a {job_type.value} job (backend only)",
        )
    app.add_api_route(
        "/operations/{operation_id}/cancel", cancel_job, methods=["POST"], dependencies=backend_only
    )

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Worker identity, registration and what it runs now."""
        return {
            "status": "ok",
            "worker_id": worker_id,
            "kinds": [k.value for k in kinds],
            "registered": runtime.registered,
            "current_operation_id": runtime.current_operation_id(),
            "version": __version__,
        }

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        body, content_type = render_metrics(request.headers.get("accept"), registry)
        return Response(body, media_type=content_type)

    return app
