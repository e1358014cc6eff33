"""An operation's history: when it was dispatched, changed phase and changed status, and
(training runs) each epoch's losses as the worker reported them.

The store writes these rows inside the transaction of the change they record (a
dispatch, a transition, a progress report that starts a new phase); readers get them
oldest first. The console's timeline is built from them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy.orm import Session

from ktrdr.db.tables import OperationEventRow


class EventKind(StrEnum):
    DISPATCHED = "dispatched"  # given to a worker: a new attempt starts
    PHASE = "phase"  # the worker reported a new phase
    STATUS = "status"  # a state transition (re-queue, completed, failed, cancelled)
    EPOCH = "epoch"  # a training epoch finished (name: its number, detail: its metrics JSON)


class OperationEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: EventKind
    attempt: int
    worker_id: str | None
    name: str | None
    detail: str | None


_EVENTS: Table = OperationEventRow.__table__  # type: ignore[assignment]
_INSERT_EVENT = insert(_EVENTS)  # built once: see ktrdr.operations.statements


def add_event(
    session: Session | Connection,
    operation_id: str,
    kind: EventKind,
    *,
    at: datetime,
    attempt: int,
    worker_id: str | None = None,
    name: str | None = None,
    detail: str | None = None,
) -> None:
    # A Core INSERT, not an ORM object: no unit-of-work flush on the dispatch and report
    # paths (an ORM add cost a flush, a compile and a primary-key fetch per event).
    session.execute(
        _INSERT_EVENT,
        {"operation_id": operation_id, "at": at, "kind": kind.value, "attempt": attempt,
         "worker_id": worker_id, "name": name, "detail": detail},
    )  # fmt: skip


def read_events(session: Session, operation_id: str) -> list[OperationEvent]:
    """The timeline's events; epochs are read with ``read_epochs`` (there can be a
    thousand of them, and the timeline is about phases and attempts)."""
    rows = session.scalars(
        select(OperationEventRow)
        .where(
            OperationEventRow.operation_id == operation_id,
            OperationEventRow.kind != EventKind.EPOCH.value,
        )
        .order_by(OperationEventRow.id)
    ).all()
    return [OperationEvent.model_validate(r) for r in rows]


def read_epochs(session: Session, operation_id: str) -> list[OperationEvent]:
    """Every epoch record of the operation in the order they arrived, all attempts."""
    rows = session.scalars(
        select(OperationEventRow)
        .where(
            OperationEventRow.operation_id == operation_id,
            OperationEventRow.kind == EventKind.EPOCH.value,
        )
        .order_by(OperationEventRow.id)
    ).all()
    return [OperationEvent.model_validate(r) for r in rows]


def completed_per_worker(session: Session) -> dict[str, int]:
    """Operations each worker brought to `completed` (from the history)."""
    rows = session.execute(
        select(OperationEventRow.worker_id, func.count())
        .where(
            OperationEventRow.kind == EventKind.STATUS.value,
            OperationEventRow.name == "completed",
            OperationEventRow.worker_id.is_not(None),
        )
        .group_by(OperationEventRow.worker_id)
    ).all()
    return {str(worker): int(n) for worker, n in rows}
