"""The store's hot statements, built once with bind parameters.

Every operation runs these (submit, dispatch round, claim, report, long-poll read,
heartbeat, report authentication). Built per call, SQLAlchemy coerced each clause and
generated the statement's cache key again - more CPU than SQLite spent executing it (a
py-spy profile of bench_platform's burst); a prebuilt statement keeps its cache key.
Bind names start with ``b_``: a name equal to a column's is reserved in SET clauses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Select,
    String,
    Table,
    Update,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from ktrdr.db.tables import OperationEventRow, UTCDateTime
from ktrdr.operations.model import OperationStatus
from ktrdr.operations.records import _HOLDING, _LIVE, OPS, WORKERS
from ktrdr.registry.schemas import WorkerState

EVENTS: Table = OperationEventRow.__table__  # type: ignore[assignment]

_op: BindParameter[str] = bindparam("b_op", type_=String())
_worker: BindParameter[str] = bindparam("b_worker", type_=String())
_now = bindparam("b_now", type_=UTCDateTime())

INSERT_OPERATION = insert(OPS)
INSERT_EVENT = insert(EVENTS)
GET_OPERATION = select(OPS).where(OPS.c.id == _op)
# What a transition decides on (owner, attempt, status); the new record comes back from
# its UPDATE ... RETURNING.
OPERATION_STATE = select(
    OPS.c.id, OPS.c.status, OPS.c.worker_id, OPS.c.attempt, OPS.c.progress_phase
).where(OPS.c.id == _op)
CLAIM_WORKER = (
    update(WORKERS)
    .where(
        WORKERS.c.id == _worker,
        WORKERS.c.state == WorkerState.ONLINE.value,
        WORKERS.c.current_operation_id.is_(None),
    )
    .values(current_operation_id=_op, last_assigned_at=_now)
)
CLAIM_OPERATION = (
    update(OPS)
    .where(OPS.c.id == _op, OPS.c.status == OperationStatus.PENDING.value)
    .values(
        status=OperationStatus.RUNNING.value,
        worker_id=_worker,
        attempt=OPS.c.attempt + 1,
        started_at=_now,
        updated_at=_now,
        status_reason=None,
        progress_percent=0.0,
        progress_phase=None,
        progress_message=None,
        items_done=None,
        items_total=None,
    )
    .returning(*OPS.c)  # the claimed record, without a second read
)
RELEASE_WORKER = (
    update(WORKERS)
    .where(WORKERS.c.id == _worker, WORKERS.c.current_operation_id == _op)
    .values(current_operation_id=None)
)
WORKER_CREDENTIAL = select(WORKERS.c.credential_hash).where(WORKERS.c.id == _worker)
GET_WORKER = select(WORKERS).where(WORKERS.c.id == _worker)
LIVE_WORKERS = select(WORKERS).where(WORKERS.c.state.in_(_LIVE)).order_by(WORKERS.c.id)
ALL_WORKERS = select(WORKERS).order_by(WORKERS.c.id)
# A worker held by an operation that is not running (or cancelled) on it.
ORPHANED = WORKERS.c.current_operation_id.is_not(None) & ~(
    select(OPS.c.id)
    .where(
        OPS.c.id == WORKERS.c.current_operation_id,
        OPS.c.worker_id == WORKERS.c.id,
        OPS.c.status.in_(_HOLDING),
    )
    .exists()
)
ORPHANED_WORKERS = select(WORKERS.c.id, WORKERS.c.current_operation_id).where(ORPHANED)
HEARTBEAT = (
    update(WORKERS)
    .where(WORKERS.c.id == _worker, WORKERS.c.state.in_(_LIVE))
    .values(last_heartbeat_at=_now)
    .returning(*WORKERS.c)
)
HEARTBEAT_DRAINING = HEARTBEAT.values(state=WorkerState.DRAINING.value)
_QUEUES: dict[int, Select[Any]] = {}
_TRANSITIONS: dict[tuple[str, ...], Update] = {}


def queue(limit: int) -> Select[Any]:
    """The dispatch round's read of the queue, oldest first (one statement per limit)."""
    if limit not in _QUEUES:
        _QUEUES[limit] = (
            select(OPS.c.id, OPS.c.type, OPS.c.traceparent)
            .where(OPS.c.status == OperationStatus.PENDING.value)
            .order_by(OPS.c.queued_at, OPS.c.id)
            .limit(limit)
        )
    return _QUEUES[limit]


def transition(columns: tuple[str, ...]) -> Update:
    """A status change's compare-and-set UPDATE ... RETURNING of the columns it sets: binds
    ``b_op``, ``b_expected`` (the status it must still have) and ``b_<column>`` each."""
    if columns not in _TRANSITIONS:
        _TRANSITIONS[columns] = (
            update(OPS)
            .where(OPS.c.id == _op, OPS.c.status == bindparam("b_expected", type_=String()))
            .values({c: bindparam(f"b_{c}", type_=OPS.c[c].type) for c in columns})
            .returning(*OPS.c)  # the new record, without a second read
        )
    return _TRANSITIONS[columns]


def release_worker(conn: Session | Connection, worker_id: str | None, operation_id: str) -> bool:
    """Free the worker if (and only if) ``operation_id`` is what holds it."""
    if worker_id is None:
        return False
    outcome = conn.execute(RELEASE_WORKER, {"b_worker": worker_id, "b_op": operation_id})
    return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]
