"""Operations: create, list, inspect, cancel, and the worker's progress/result reports."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ktrdr.api.auth import (
    Operator,
    Principal,
    ReadAccess,
    WorkerCredential,
    audit,
    authenticate_worker,
)
from ktrdr.api.deps import ArtifactsDep, DispatcherDep, OperationsDep, WorkersDep
from ktrdr.api.params import OperationIdPath, QueryText
from ktrdr.api.responses import operation_json
from ktrdr.api.threads import in_thread
from ktrdr.artifacts.tables import MEDIA_TYPES, TableFormat, render
from ktrdr.bounds import (
    ERROR_MAX,
    IDEMPOTENCY_KEY_MAX,
    INT32_MAX,
    INT64_MAX,
    RequestModel,
    WorkerId,
)
from ktrdr.constants import IDEMPOTENCY_HEADER
from ktrdr.operations.curve import MAX_EPOCHS_PER_REPORT, EpochMetrics, TrainingCurve
from ktrdr.operations.history import OperationEvent
from ktrdr.operations.model import OperationStatus, OperationType, Outcome
from ktrdr.operations.results import full_result, part_table, result_part
from ktrdr.operations.schemas import (
    OperationCreate,
    OperationPublic,
    OperationResult,
    OperationsPublic,
    Progress,
)
from ktrdr.operations.service import OperationService
from ktrdr.operations.waiters import RECHECK_S, EndWaiters

router = APIRouter(prefix="/operations", tags=["operations"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        max_length=IDEMPOTENCY_KEY_MAX,
        description="retrying with the same key returns the first operation instead of a new one",
    ),
]


async def create_operation(
    service: OperationService,
    op_type: OperationType,
    params: dict[str, Any],
    idempotency_key: str | None,
    principal: Principal,
) -> Response:
    """Shared by the generic and the per-type start routes: validation and the insert in a
    thread (the store is synchronous), the answer serialised once (ktrdr.api.responses).
    """

    def create() -> tuple[OperationPublic, bool]:
        operation, created = service.create(op_type, params, idempotency_key=idempotency_key)
        audit(principal, "start", operation_id=operation.id, type=op_type.value, created=created)
        return operation, created

    # `async def` routes with one explicit hop: FastAPI's hop for a plain `def` route
    # (anyio's capacity limiter, cancel scope and backend lookups) cost more CPU.
    operation, created = await in_thread(create)
    location = {"Location": f"/api/v1/operations/{operation.id}"}
    return operation_json(operation, 202 if created else 200, location)


@router.post("", status_code=202, response_model=OperationPublic)
async def create(
    body: OperationCreate,
    service: OperationsDep,
    who: Operator,
    key: IdempotencyKey = None,
) -> Response:
    """Queue an operation of any type; 202 with the pending operation."""
    return await create_operation(service, body.type, body.params, key, who)


@router.get("", dependencies=[ReadAccess], response_model=OperationsPublic)
def list_operations(
    service: OperationsDep,
    status: Annotated[list[OperationStatus] | None, Query()] = None,
    type: Annotated[list[OperationType] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    symbol: Annotated[QueryText | None, Query(max_length=64)] = None,
    strategy: Annotated[
        QueryText | None, Query(max_length=200, description="example name or the file's name:")
    ] = None,
    parent_id: Annotated[
        str | None, Query(max_length=64, description="only the chunks of this campaign")
    ] = None,
    top_level: Annotated[
        bool, Query(description="leave out campaigns' chunks (what `ktrdr ops list` shows)")
    ] = False,
) -> OperationsPublic:
    """List operations, newest first, filtered by status, type, symbol, strategy and parent
    campaign (or only those that are no campaign's chunk); with the count."""
    items, total = service.list_operations(
        statuses=status or [], types=type or [], limit=limit, offset=offset,
        symbol=symbol, strategy=strategy, parent_id=parent_id, top_level=top_level,
    )  # fmt: skip
    return OperationsPublic(data=items, count=total, limit=limit, offset=offset)


WAIT_MAX_S = 60.0


@router.get("/{operation_id}", dependencies=[ReadAccess], response_model=OperationPublic)
async def get_operation(
    operation_id: OperationIdPath,
    service: OperationsDep,
    request: Request,
    wait_s: Annotated[
        float,
        Query(
            ge=0,
            le=WAIT_MAX_S,
            description="wait up to this many seconds for the operation to end (a long "
            "poll: answered at the end, or after the wait with the state then)",
            examples=[10],
        ),
    ] = 0,
) -> Response:
    """One operation with its progress, result or error."""
    if wait_s <= 0:
        return operation_json(await in_thread(service.get, operation_id))
    waiters: EndWaiters = request.app.state.waiters
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    with waiters.watch(operation_id) as watch:  # before the read: no end is missed
        op = await in_thread(service.get, operation_id)
        while not op.status.is_terminal and (left := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.event.wait(), min(left, RECHECK_S))
            if watch.ended is not None:
                # The record its final transition wrote: no re-read.
                return operation_json(watch.ended)
            watch.event.clear()  # before the read: an end after it sets the event again
            op = await in_thread(service.get, operation_id)
    return operation_json(op)


@router.get(
    "/{operation_id}/events", dependencies=[ReadAccess], response_model=list[OperationEvent]
)
def get_operation_events(
    operation_id: OperationIdPath, service: OperationsDep
) -> list[OperationEvent]:
    """The operation's history: each dispatch (attempt), phase change and transition."""
    return service.history(operation_id)


class OperationMetrics(BaseModel):
    operation_id: str
    type: OperationType
    status: OperationStatus
    attempt: int
    queue_wait_s: float | None
    duration_s: float | None
    progress: Progress
    metrics: dict[str, Any] = Field(description="type-specific figures, e.g. backtest statistics")
    curve: TrainingCurve | None = Field(
        None, description="a training run's loss and accuracy per epoch (null for other types)"
    )


@router.get("/{operation_id}/metrics", dependencies=[ReadAccess], response_model=OperationMetrics)
def get_operation_metrics(
    operation_id: OperationIdPath, service: OperationsDep
) -> OperationMetrics:
    """Timing and type-specific figures of one operation."""
    op = service.get(operation_id)
    result = op.result or {}
    metrics = result.get("metrics") or result.get("statistics") or {}
    return OperationMetrics(
        operation_id=op.id,
        type=op.type,
        status=op.status,
        attempt=op.attempt,
        queue_wait_s=op.queue_wait_s,
        duration_s=op.duration_s,
        progress=op.progress,
        metrics=metrics if isinstance(metrics, dict) else {},
        curve=service.curve(op) if op.type == OperationType.TRAINING else None,
    )


@router.get("/{operation_id}/curve", dependencies=[ReadAccess], response_model=TrainingCurve)
def get_training_curve(operation_id: OperationIdPath, service: OperationsDep) -> TrainingCurve:
    """A training run's learning curve: train/validation loss and accuracy per epoch, as
    reported so far while it runs, the fitted history once it has completed; 409 for an
    operation that is not a training run."""
    op = service.get(operation_id)
    if op.type != OperationType.TRAINING:
        raise HTTPException(
            409,
            f"operation {op.id} is a {op.type.value} operation; only training runs have a "
            f"learning curve (its figures are at /api/v1/operations/{op.id}/metrics)",
        )
    return service.curve(op)


def _completed_result(service: OperationService, operation_id: str) -> dict[str, Any]:
    op = service.get(operation_id)
    if op.status != OperationStatus.COMPLETED or op.result is None:
        hint = f" ({op.error})" if op.error else ""
        raise HTTPException(
            409,
            f"operation {op.id} is {op.status.value}{hint}; results exist only once it has "
            f"completed — follow it with `ktrdr ops follow {op.id}`",
        )
    return op.result


@router.get(
    "/{operation_id}/results",
    dependencies=[ReadAccess],
    response_model=OperationResult,
    # The result as stored: parts a type does not have are left out, not null.
    response_model_exclude_unset=True,
)
def get_results(
    operation_id: OperationIdPath,
    service: OperationsDep,
    artifacts: ArtifactsDep,
    part: Annotated[
        str | None,
        Query(
            max_length=64,
            description="answer with one top-level field's value only (statistics, trades, "
            "equity_curve…), not the whole result",
        ),
    ] = None,
) -> Any:
    """The result of a completed operation, tables inline (409 while it is not completed)."""
    result = _completed_result(service, operation_id)
    if part is None:
        return full_result(result, artifacts)
    # One field of OperationResult, as it is (a table's rows, the statistics object).
    return JSONResponse(jsonable_encoder(result_part(result, part, artifacts)))


@router.get(
    "/{operation_id}/results/{table}",
    dependencies=[ReadAccess],
    response_class=StreamingResponse,
    responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}},
)
def get_result_table(
    operation_id: OperationIdPath,
    table: Annotated[
        str,
        Path(max_length=64, description="trades, equity (every bar), history (training), …"),
    ],
    service: OperationsDep,
    artifacts: ArtifactsDep,
    format: Annotated[TableFormat, Query(description="json records, csv or parquet")] = (
        TableFormat.JSON
    ),
    limit: Annotated[int | None, Query(ge=1, le=100_000_000, description="first rows")] = None,
) -> StreamingResponse:
    """A whole result table (all trades, the equity at every bar, a training run's epochs)
    as JSON, CSV or Parquet."""
    data = part_table(_completed_result(service, operation_id), table, artifacts)
    if limit is not None:
        data = data.slice(0, limit)
    headers = {"X-Total-Rows": str(data.num_rows)}
    if format != TableFormat.JSON:
        name = f"{operation_id}-{table}.{format.value}"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return StreamingResponse(render(data, format), media_type=MEDIA_TYPES[format], headers=headers)


@router.post("/{operation_id}/cancel", response_model=OperationPublic)
def cancel(
    operation_id: OperationIdPath,
    service: OperationsDep,
    workers: WorkersDep,
    dispatcher: DispatcherDep,
    background: BackgroundTasks,
    who: Operator,
) -> OperationPublic:
    """Cancel a pending or running operation (409 if it has already ended)."""
    before = service.get(operation_id)
    op = service.cancel(operation_id)
    audit(who, "cancel", operation_id=operation_id, type=op.type.value, was=before.status.value)
    if before.status == OperationStatus.RUNNING and before.worker_id:
        worker = workers.store.get_worker(before.worker_id)
        if worker is not None:
            background.add_task(dispatcher.send_cancel, worker, operation_id)
    return op


@router.post("/{operation_id}/resume", status_code=202, response_model=OperationPublic)
async def resume(operation_id: OperationIdPath, service: OperationsDep, who: Operator) -> Response:
    """Continue a cancelled or failed training run from its last checkpoint (a new run)."""
    op = await in_thread(service.get, operation_id)
    if op.type != OperationType.TRAINING or op.status not in (
        OperationStatus.CANCELLED,
        OperationStatus.FAILED,
    ):
        raise HTTPException(
            409,
            f"operation {op.id} is a {op.status.value} {op.type.value} operation; only a "
            "cancelled or failed training run can be resumed (a re-queued one resumes by itself)",
        )
    params = {**op.params, "resume_from": op.params.get("resume_from") or op.id}
    return await create_operation(service, OperationType.TRAINING, params, None, who)


class ProgressReport(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "worker_id": "backtest-worker-5003",
                    "progress": {"percent": 42.0, "phase": "simulation", "message": "bar 4,200"},
                },
                {
                    "worker_id": "training-worker-5004",
                    "progress": {"percent": 33.0, "phase": "training", "message": "epoch 6/30"},
                    "epochs": [
                        {
                            "epoch": 6,
                            "epochs": 30,
                            "train_loss": 1.02,
                            "val_loss": 1.07,
                            "val_accuracy": 0.41,
                            "duration_s": 0.09,
                        },
                    ],
                },
            ]
        }
    )

    worker_id: WorkerId
    progress: Progress
    epochs: list[EpochMetrics] = Field(
        default_factory=list,
        max_length=MAX_EPOCHS_PER_REPORT,
        description="training epochs finished since the last report",
    )


class ProgressAccepted(BaseModel):
    accepted: bool = Field(description="false: the operation is no longer this worker's")


@router.post("/{operation_id}/progress", response_model=ProgressAccepted)
async def report_progress(
    operation_id: OperationIdPath,
    body: ProgressReport,
    service: OperationsDep,
    request: Request,
    credential: WorkerCredential,
) -> ProgressAccepted:
    """Worker → backend: progress of the operation it runs."""

    def record() -> bool:
        authenticate_worker(request, body.worker_id, credential)
        service.get(operation_id)  # 404 for an unknown id
        return service.record_progress(operation_id, body.worker_id, body.progress, body.epochs)

    return ProgressAccepted(accepted=await in_thread(record))


class ResultReport(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "worker_id": "backtest-worker-5003", "attempt": 1, "outcome": "completed",
                    "result": {"statistics": {"total_return_pct": 3.2, "num_trades": 14}},
                    "progress": {"percent": 100.0, "phase": "simulation"},
                }
            ]
        }
    )  # fmt: skip

    worker_id: WorkerId
    attempt: int = Field(ge=1, le=INT32_MAX)
    outcome: Outcome
    result: dict[str, Any] | None = None
    error: str | None = Field(None, max_length=ERROR_MAX)
    progress: Progress | None = Field(None, description="the job's last progress")


@router.post("/{operation_id}/report", response_model=OperationPublic)
async def report_result(
    operation_id: OperationIdPath,
    body: ResultReport,
    service: OperationsDep,
    request: Request,
    credential: WorkerCredential,
) -> Response:
    """Worker → backend: the final outcome; repeats are harmless, stale reports get 409."""

    def report() -> OperationPublic:
        authenticate_worker(request, body.worker_id, credential)
        return service.report(
            operation_id,
            worker_id=body.worker_id,
            attempt=body.attempt,
            outcome=body.outcome,
            result=body.result,
            error=body.error,
            progress=body.progress,
        )

    return operation_json(await in_thread(report))
