"""Rows of the operations store as the API sees them, and the rules every write shares.

Conversions (row -> public model, listing summary), the compare-and-set helpers that
decide ownership (a report from a worker that no longer owns the operation is stale; a
worker is released only by the operation it holds) and the values of a status change.
The Store's methods (operations in ``store``, workers in ``worker_records``) use these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func

from ktrdr.db.tables import OperationRow, WorkerRow
from ktrdr.operations.model import (
    OperationStatus,
    OperationType,
)
from ktrdr.operations.schemas import OperationPublic, OperationSummary, Progress
from ktrdr.operations.summary import summarise_result
from ktrdr.registry.schemas import LIVE_STATES, WorkerPublic

_LIVE = [state.value for state in LIVE_STATES]
# States in which an operation legitimately holds the worker it names.
_HOLDING = [OperationStatus.RUNNING.value, OperationStatus.CANCELLED.value]

# The tables, for the Core statements of the hot paths (submit, claim, report, reads): an
# ORM session per call (identity map, unit of work, refresh) cost more than the SQL.
OPS: Table = OperationRow.__table__  # type: ignore[assignment]
WORKERS: Table = WorkerRow.__table__  # type: ignore[assignment]

_CAS_RETRIES = 5


class OperationNotFound(LookupError):
    def __init__(self, operation_id: str):
        self.operation_id = operation_id
        super().__init__(
            f"no operation {operation_id!r}; list operations with `ktrdr ops list` "
            "or GET /api/v1/operations"
        )


class IdempotencyConflict(ValueError):
    """The same idempotency key was sent with different parameters."""


@dataclass(frozen=True)
class Transition:
    """What a transition call did: `changed` is False for a harmless repeat."""

    operation: OperationPublic
    previous: OperationStatus
    changed: bool


@dataclass(frozen=True)
class QueuedOperation:
    """What the dispatcher needs of a pending operation: every round reads the queue, so
    it reads these three columns, not whole records (parameters can be large JSON)."""

    id: str
    type: OperationType
    traceparent: str | None


def to_public(row: Any) -> OperationPublic:
    """From an operations row: a Core ``Row`` (or anything with its column attributes)."""
    return OperationPublic(
        id=row.id,
        type=OperationType(row.type),
        status=OperationStatus(row.status),
        params=row.params,
        worker_id=row.worker_id,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        created_at=row.created_at,
        queued_at=row.queued_at,
        pending_since=row.pending_since,
        started_at=row.started_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        progress=Progress(
            percent=row.progress_percent,
            phase=row.progress_phase,
            message=row.progress_message,
            items_done=row.items_done,
            items_total=row.items_total,
        ),
        result=row.result,
        error=row.error,
        status_reason=row.status_reason,
        trace_id=row.trace_id,
        traceparent=row.traceparent,
        parent_id=row.parent_id,
    )


# Listings cut free text to this many characters (the record has it whole).
LISTED_TEXT_CHARS = 200
_SUMMARY_COLUMNS = (
    OperationRow.id,
    OperationRow.type,
    OperationRow.status,
    OperationRow.worker_id,
    OperationRow.attempt,
    OperationRow.max_attempts,
    OperationRow.created_at,
    OperationRow.started_at,
    OperationRow.completed_at,
    OperationRow.updated_at,
    OperationRow.progress_percent,
    OperationRow.progress_phase,
    func.substr(OperationRow.progress_message, 1, LISTED_TEXT_CHARS).label("progress_message"),
    OperationRow.items_done,
    OperationRow.items_total,
    OperationRow.params_summary,
    OperationRow.result_summary,
    func.substr(OperationRow.error, 1, LISTED_TEXT_CHARS).label("error"),
    func.substr(OperationRow.status_reason, 1, LISTED_TEXT_CHARS).label("status_reason"),
    OperationRow.trace_id,
    OperationRow.parent_id,
)


def _summary(row: Any) -> OperationSummary:
    return OperationSummary(
        id=row["id"],
        type=OperationType(row["type"]),
        status=OperationStatus(row["status"]),
        progress=Progress(
            percent=row["progress_percent"],
            phase=row["progress_phase"],
            message=row["progress_message"],
            items_done=row["items_done"],
            items_total=row["items_total"],
        ),
        worker_id=row["worker_id"],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        updated_at=row["updated_at"],
        params_summary=row["params_summary"] or {},
        result_summary=row["result_summary"],
        error=row["error"],
        status_reason=row["status_reason"],
        trace_id=row["trace_id"],
        parent_id=row["parent_id"],
    )


def _worker_public(row: Any) -> WorkerPublic:
    return WorkerPublic.model_validate(row)


def _progress_values(progress: Progress) -> dict[str, Any]:
    return {
        "progress_percent": progress.percent,
        "progress_phase": progress.phase,
        "progress_message": progress.message,
        "items_done": progress.items_done,
        "items_total": progress.items_total,
    }


def _check_owner(row: Any, expected_worker_id: str | None, expected_attempt: int | None) -> None:
    if expected_worker_id is not None and row.worker_id != expected_worker_id:
        raise StaleReport(
            f"operation {row.id} is assigned to {row.worker_id or 'no worker'}, "
            f"not {expected_worker_id}; this report is out of date and was ignored"
        )
    if expected_attempt is not None and row.attempt != expected_attempt:
        raise StaleReport(
            f"operation {row.id} is on attempt {row.attempt}, the report is for attempt "
            f"{expected_attempt}; it is out of date and was ignored"
        )


class StaleReport(Exception):
    """A worker reported on an operation that is no longer its own."""


def _transition_values(
    target: OperationStatus,
    now: datetime,
    reason: str | None,
    result: dict[str, Any] | None,
    error: str | None,
    progress: Progress | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {"status": target.value, "updated_at": now, "status_reason": reason}
    if progress is not None:
        values.update(_progress_values(progress))
    if target == OperationStatus.PENDING:
        # Re-queue: back of the queue is wrong for a victim of a crash; keep its place by
        # leaving queued_at, but forget the lost worker's progress.
        values.update(
            worker_id=None, started_at=None, pending_since=now, **_progress_values(Progress())
        )
    elif target == OperationStatus.RUNNING:
        # Only backend-driven operations (campaign parents) start by a transition; the
        # dispatcher's claim sets started_at for dispatched ones.
        values["started_at"] = now
    elif target.is_terminal:
        values["completed_at"] = now
        if result is not None:
            values["result"] = result
            values["result_summary"] = summarise_result(result)
        if error is not None:
            values["error"] = error
        if target == OperationStatus.COMPLETED:
            values.update(progress_percent=100.0)
    return values
