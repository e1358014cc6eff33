"""Operations: create, list, inspect, cancel, and the worker's progress/result reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ktrdr.api.auth import (
    Operator,
    Principal,
    ReadAccess,
    WorkerCredential,
    audit,
    authenticate_worker,
)
from ktrdr.api.deps import DispatcherDep, OperationsDep, WorkersDep
from ktrdr.constants import IDEMPOTENCY_HEADER
from ktrdr.operations.history import OperationEvent
from ktrdr.operations.model import OperationStatus, OperationType, Outcome
from ktrdr.operations.schemas import (
    OperationCreate,
    OperationPublic,
    OperationsPublic,
    Progress,
)
from ktrdr.operations.service import OperationService

router = APIRouter(prefix="/operations", tags=["operations"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        max_length=200,
        description="retrying with the same key returns the first operation instead of a new one",
    ),
]


def create_operation(
    service: OperationService,
    op_type: OperationType,
    params: dict[str, Any],
    idempotency_key: str | None,
    response: Response,
    principal: Principal,
) -> OperationPublic:
    """Shared by the generic and the per-type start routes."""
    operation, created = service.create(op_type, params, idempotency_key=idempotency_key)
    audit(principal, "start", operation_id=operation.id, type=op_type.value, created=created)
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"/api/v1/operations/{operation.id}"
    return operation


@router.post("", status_code=202, response_model=OperationPublic)
def create(
    body: OperationCreate,
    service: OperationsDep,
    response: Response,
    who: Operator,
    key: IdempotencyKey = None,
) -> OperationPublic:
    """Queue an operation of any type; 202 with the pending operation."""
    return create_operation(service, body.type, body.params, key, response, who)


@router.get("", dependencies=[ReadAccess], response_model=OperationsPublic)
def list_operations(
    service: OperationsDep,
    status: Annotated[list[OperationStatus] | None, Query()] = None,
    type: Annotated[list[OperationType] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    symbol: Annotated[str | None, Query(max_length=64)] = None,
    strategy: Annotated[
        str | None, Query(max_length=200, description="example name or the file's name:")
    ] = None,
    parent_id: Annotated[
        str | None, Query(max_length=64, description="only the chunks of this campaign")
    ] = None,
) -> OperationsPublic:
    """List operations, newest first, filtered by status, type, symbol, strategy and parent
    campaign; with the count."""
    items, total = service.list_operations(
        statuses=status or [], types=type or [], limit=limit, offset=offset,
        symbol=symbol, strategy=strategy, parent_id=parent_id,
    )  # fmt: skip
    return OperationsPublic(data=items, count=total, limit=limit, offset=offset)


@router.get("/{operation_id}", dependencies=[ReadAccess], response_model=OperationPublic)
def get_operation(operation_id: str, service: OperationsDep) -> OperationPublic:
    """One operation with its progress, result or error."""
    return service.get(operation_id)


@router.get(
    "/{operation_id}/events", dependencies=[ReadAccess], response_model=list[OperationEvent]
)
def get_operation_events(operation_id: str, service: OperationsDep) -> list[OperationEvent]:
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


@router.get("/{operation_id}/metrics", dependencies=[ReadAccess], response_model=OperationMetrics)
def get_operation_metrics(operation_id: str, service: OperationsDep) -> OperationMetrics:
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
    )


@router.get("/{operation_id}/results", dependencies=[ReadAccess])
def get_results(
    operation_id: str,
    service: OperationsDep,
    part: Annotated[
        str | None, Query(description="one top-level key, e.g. statistics, trades, equity_curve")
    ] = None,
) -> Any:
    """The stored result of a completed operation (409 while it is not completed)."""
    op = service.get(operation_id)
    if op.status != OperationStatus.COMPLETED or op.result is None:
        hint = f" ({op.error})" if op.error else ""
        raise HTTPException(
            409,
            f"operation {op.id} is {op.status.value}{hint}; results exist only once it has "
            f"completed — follow it with `ktrdr ops follow {op.id}`",
        )
    if part is None:
        return op.result
    if part not in op.result:
        parts = ", ".join(sorted(op.result))
        raise HTTPException(404, f"result has no part {part!r}; parts: {parts}")
    return op.result[part]


@router.post("/{operation_id}/cancel", response_model=OperationPublic)
def cancel(
    operation_id: str,
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
def resume(
    operation_id: str, service: OperationsDep, response: Response, who: Operator
) -> OperationPublic:
    """Continue a cancelled or failed training run from its last checkpoint (a new run)."""
    op = service.get(operation_id)
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
    return create_operation(service, OperationType.TRAINING, params, None, response, who)


class ProgressReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: str
    progress: Progress


@router.post("/{operation_id}/progress", include_in_schema=False)
def report_progress(
    operation_id: str,
    body: ProgressReport,
    service: OperationsDep,
    request: Request,
    credential: WorkerCredential,
) -> dict[str, bool]:
    """Worker → backend: progress of the operation it runs."""
    authenticate_worker(request, body.worker_id, credential)
    service.get(operation_id)  # 404 for an unknown id
    return {"accepted": service.record_progress(operation_id, body.worker_id, body.progress)}


class ResultReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: str
    attempt: int = Field(ge=1)
    outcome: Outcome
    result: dict[str, Any] | None = None
    error: str | None = Field(None, max_length=20_000)
    progress: Progress | None = Field(None, description="the job's last progress")


@router.post("/{operation_id}/report", include_in_schema=False)
def report_result(
    operation_id: str,
    body: ResultReport,
    service: OperationsDep,
    request: Request,
    credential: WorkerCredential,
) -> OperationPublic:
    """Worker → backend: the final outcome; repeats are harmless, stale reports get 409."""
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
