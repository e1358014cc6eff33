"""The operations store and worker registry tables behind one small, race-free API.

Every write that decides ownership is a compare-and-set (`UPDATE ... WHERE <expected
state>`), so two dispatchers, or a dispatcher and a cancel, can never both win: the
loser sees rowcount 0. This holds on SQLite (one writer at a time) and on PostgreSQL
(row locks, WHERE re-checked after the wait).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, null, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ktrdr.db.tables import FILTER_KEY_MAX, OperationRow
from ktrdr.operations import statements as sql
from ktrdr.operations.curve import EpochMetrics, epoch_detail
from ktrdr.operations.history import (
    EventKind,
    OperationEvent,
    add_event,
    read_epochs,
    read_events,
)
from ktrdr.operations.model import (
    OperationStatus,
    OperationType,
    check_transition,
    new_operation_id,
)
from ktrdr.operations.records import (
    _CAS_RETRIES,
    _SUMMARY_COLUMNS,
    OPS,
    IdempotencyConflict,
    OperationNotFound,
    QueuedOperation,
    StaleReport,
    Transition,
    _check_owner,
    _progress_values,
    _summary,
    _transition_values,
    to_public,
)
from ktrdr.operations.schemas import OperationPublic, OperationSummary, Progress
from ktrdr.operations.summary import filter_keys, summarise_params
from ktrdr.operations.worker_records import WorkerRecords

# Every column but the result, which reads as None.
_WITHOUT_RESULT = [c for c in OPS.c if c.name != "result"] + [null().label("result")]

__all__ = [
    "IdempotencyConflict",
    "OperationNotFound",
    "QueuedOperation",
    "StaleReport",
    "Store",
    "Transition",
    "to_public",
]


class Store(WorkerRecords):
    """Synchronous store; the API calls it from its thread pool."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    # ---------------------------------------------------------------- operations

    def create_operation(
        self,
        *,
        op_type: OperationType,
        params: dict[str, Any],
        params_hash: str,
        max_attempts: int,
        now: datetime,
        idempotency_key: str | None = None,
        trace_id: str | None = None,
        traceparent: str | None = None,
        parent_id: str | None = None,
    ) -> tuple[OperationPublic, bool]:
        """Insert a pending operation; with a known idempotency key return the existing one."""
        if idempotency_key is not None:
            existing = self._by_idempotency_key(idempotency_key, params_hash)
            if existing is not None:
                return existing, False
        values: dict[str, Any] = dict(
            id=new_operation_id(op_type, now),
            type=op_type.value,
            status=OperationStatus.PENDING.value,
            params=params,
            params_summary=summarise_params(params),
            **filter_keys(params, FILTER_KEY_MAX),
            params_hash=params_hash,
            idempotency_key=idempotency_key,
            attempt=0,
            max_attempts=max_attempts,
            created_at=now,
            queued_at=now,
            pending_since=now,
            updated_at=now,
            progress_percent=0.0,
            trace_id=trace_id,
            traceparent=traceparent,
            parent_id=parent_id,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(sql.INSERT_OPERATION, values)
        except IntegrityError:
            # Two requests with one key raced; the other insert won.
            if idempotency_key is None:
                raise
            existing = self._by_idempotency_key(idempotency_key, params_hash)
            if existing is None:
                raise
            return existing, False
        unset = dict.fromkeys(("worker_id", "started_at", "completed_at", "progress_phase",
                               "progress_message", "items_done", "items_total", "result",
                               "error", "status_reason"))  # fmt: skip
        return to_public(SimpleNamespace(**unset, **values)), True

    def _by_idempotency_key(self, key: str, params_hash: str) -> OperationPublic | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(OPS).where(OPS.c.idempotency_key == key)).one_or_none()
            if row is None:
                return None
            if row.params_hash != params_hash:
                raise IdempotencyConflict(
                    f"Idempotency-Key {key!r} was already used for operation {row.id} with "
                    "different parameters; send a new key for a new request"
                )
            return to_public(row)

    def get_operation(self, operation_id: str) -> OperationPublic:
        with self.engine.connect() as conn:
            row = conn.execute(sql.GET_OPERATION, {"b_op": operation_id}).one_or_none()
        if row is None:
            raise OperationNotFound(operation_id)
        return to_public(row)

    def list_operations(
        self,
        *,
        statuses: Iterable[OperationStatus] = (),
        types: Iterable[OperationType] = (),
        limit: int = 50,
        offset: int = 0,
        symbol: str | None = None,
        strategy: str | None = None,
        parent_id: str | None = None,
        top_level: bool = False,
    ) -> tuple[list[OperationSummary], int]:
        """Newest first, with the total count matching the filters; summaries only (the
        query reads neither parameters nor results unless filtering by symbol or strategy,
        so its cost does not grow with them). ``top_level``: no campaign chunks."""
        conditions: list[ColumnElement[bool]] = []
        if parent_id is not None:
            conditions.append(OperationRow.parent_id == parent_id)
        if top_level:
            conditions.append(OperationRow.parent_id.is_(None))
        status_values = [s.value for s in statuses]
        type_values = [t.value for t in types]
        if status_values:
            conditions.append(OperationRow.status.in_(status_values))
        if type_values:
            conditions.append(OperationRow.type.in_(type_values))
        if symbol:
            conditions.append(OperationRow.symbol == symbol.strip().upper())
        if strategy:
            conditions.append(OperationRow.strategy == strategy.strip())
        with self.engine.connect() as session:
            total = session.scalar(
                select(func.count()).select_from(OperationRow).where(*conditions)
            )
            # Two steps: pick the page by id first, so sorting the matches never reads the
            # columns stored after the large ones (SQLite walks a row's overflow pages to
            # reach them); then read the summary columns of the page's rows only.
            order = (OperationRow.created_at.desc(), OperationRow.id.desc())
            page = (
                select(OperationRow.id)
                .where(*conditions)
                .order_by(*order)
                .limit(limit)
                .offset(offset)
                .scalar_subquery()
            )
            rows = session.execute(
                select(*_SUMMARY_COLUMNS).where(OperationRow.id.in_(page)).order_by(*order)
            ).all()
            return [_summary(r._mapping) for r in rows], int(total or 0)

    def full_operations(
        self,
        *,
        statuses: Iterable[OperationStatus] = (),
        types: Iterable[OperationType] = (),
        parent_id: str | None = None,
        limit: int = 500,
        by_queue: bool = False,
        with_results: bool = True,
    ) -> list[OperationPublic]:
        """Whole records (parameters and results), oldest first: for the backend's own
        work on a bounded set, e.g. a campaign's children; listings use summaries.
        ``with_results=False`` leaves every ``result`` None (not read, not parsed): the
        campaign driver reads a chunk's results once, when it collects them."""
        conditions: list[ColumnElement[bool]] = []
        if parent_id is not None:
            conditions.append(OPS.c.parent_id == parent_id)
        if statuses:
            conditions.append(OPS.c.status.in_([s.value for s in statuses]))
        if types:
            conditions.append(OPS.c.type.in_([t.value for t in types]))
        order = (OPS.c.queued_at if by_queue else OPS.c.created_at, OPS.c.id)
        # Core rows, not ORM objects: the campaign driver reads these every poll period.
        with self.engine.connect() as conn:
            columns = OPS.c if with_results else _WITHOUT_RESULT
            query = select(*columns).where(*conditions).order_by(*order).limit(limit)
            rows = conn.execute(query).all()
        return [to_public(r) for r in rows]

    def pending_operations(self, limit: int = 100) -> list[OperationPublic]:
        """Oldest queued first: first come, first served."""
        return self.full_operations(statuses=[OperationStatus.PENDING], limit=limit, by_queue=True)

    def queue(self, limit: int = 100) -> list[QueuedOperation]:
        """`pending_operations`, reduced to what a dispatch round needs."""
        with self.engine.connect() as session:
            rows = session.execute(sql.queue(limit)).all()
            return [QueuedOperation(i, OperationType(t), tp) for i, t, tp in rows]

    def completed_results(self, op_type: OperationType, limit: int = 1000) -> list[dict[str, Any]]:
        """Results of the newest completed operations of one type, newest first."""
        with self.session() as session:
            rows = session.scalars(
                select(OperationRow.result)
                .where(
                    OperationRow.type == op_type.value,
                    OperationRow.status == OperationStatus.COMPLETED.value,
                )
                .order_by(OperationRow.completed_at.desc())
                .limit(limit)
            ).all()
            return [r for r in rows if r]

    def operation_counts(self) -> dict[tuple[str, str], int]:
        """(type, status) -> count for the live states (pending, running)."""
        live = [OperationStatus.PENDING.value, OperationStatus.RUNNING.value]
        with self.engine.connect() as session:
            rows = session.execute(
                select(OperationRow.type, OperationRow.status, func.count())
                .where(OperationRow.status.in_(live))
                .group_by(OperationRow.type, OperationRow.status)
            ).all()
            return {(t, s): int(n) for t, s, n in rows}

    def oldest_pending_since(self) -> dict[str, datetime]:
        """type -> when its longest-waiting pending operation last became pending."""
        with self.engine.connect() as session:
            rows = session.execute(
                select(OperationRow.type, func.min(OperationRow.pending_since))
                .where(OperationRow.status == OperationStatus.PENDING.value)
                .group_by(OperationRow.type)
            ).all()
            return {t: since for t, since in rows if since is not None}

    def transition(
        self,
        operation_id: str,
        target: OperationStatus,
        *,
        now: datetime,
        reason: str | None = None,
        expected_worker_id: str | None = None,
        expected_attempt: int | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        progress: Progress | None = None,
    ) -> Transition:
        """The one place an operation changes state.

        Guarded by `check_transition`; applied as a compare-and-set on the current status
        (and, for worker reports, on the worker and attempt that own it). Repeating a final
        state is a no-op, so a duplicate completion report is harmless.
        """
        for _ in range(_CAS_RETRIES):
            with self.engine.begin() as conn:
                row = conn.execute(sql.OPERATION_STATE, {"b_op": operation_id}).one_or_none()
                if row is None:
                    raise OperationNotFound(operation_id)
                current = OperationStatus(row.status)
                _check_owner(row, expected_worker_id, expected_attempt)
                if current == target and target.is_terminal:
                    whole = conn.execute(sql.GET_OPERATION, {"b_op": operation_id}).one()
                    return Transition(to_public(whole), current, changed=False)
                check_transition(operation_id, current, target)
                # Read before the UPDATE: a re-queue clears the worker on the row.
                attempt, worker_id = row.attempt, row.worker_id
                values = _transition_values(target, now, reason, result, error, progress)
                binds = {f"b_{k}": v for k, v in values.items()}
                updated = conn.execute(
                    sql.transition(tuple(values)),
                    {**binds, "b_op": operation_id, "b_expected": current.value},
                ).one_or_none()
                if updated is None:
                    continue  # someone else moved it first: re-read and decide again
                if current == OperationStatus.RUNNING and target != OperationStatus.CANCELLED:
                    # A cancelled operation keeps its worker until the worker confirms it
                    # stopped: the worker is not free while it is still computing. Same
                    # transaction as the move, so no one ever sees a re-queued operation
                    # whose worker is still held; `worker_id` was read before the UPDATE.
                    sql.release_worker(conn, worker_id, operation_id)
                if progress is not None and progress.phase not in (None, row.progress_phase):
                    # A final report's phase no progress report had announced: a job
                    # quicker than the worker's progress period ran its phases between
                    # two pushes, and the timeline showed none of them.
                    add_event(
                        conn, operation_id, EventKind.PHASE, at=now, attempt=attempt,
                        worker_id=worker_id, name=progress.phase,
                    )  # fmt: skip
                add_event(
                    conn, operation_id, EventKind.STATUS, at=now, attempt=attempt,
                    worker_id=worker_id, name=target.value, detail=reason,
                )  # fmt: skip
                return Transition(to_public(updated), current, changed=True)
        raise RuntimeError(f"operation {operation_id} kept changing under a transition")

    def record_progress(
        self,
        operation_id: str,
        worker_id: str,
        progress: Progress,
        now: datetime,
        epochs: Sequence[EpochMetrics] = (),
    ) -> bool:
        """Store progress reported by the worker that runs the operation; False if not its.

        A report that starts a new phase is also written to the history: the first UPDATE
        matches only if the phase differs (a compare-and-set, so two reports of the same
        new phase record it once); the second is the plain update. Finished ``epochs`` go
        to the history in the same transaction, under the attempt that trained them.
        """
        owned = (
            OPS.c.id == operation_id,
            OPS.c.status == OperationStatus.RUNNING.value,
            OPS.c.worker_id == worker_id,
        )
        values = {"updated_at": now, **_progress_values(progress)}
        with self.engine.begin() as session:
            new_phase = False
            if progress.phase is not None:
                changed = session.execute(
                    update(OPS)
                    .where(*owned, OPS.c.progress_phase.is_distinct_from(progress.phase))
                    .values(**values)
                )
                new_phase = changed.rowcount == 1
            if not new_phase:
                outcome = session.execute(update(OPS).where(*owned).values(**values))
                if outcome.rowcount != 1:
                    return False
            if new_phase or epochs:
                attempt = session.scalar(select(OPS.c.attempt).where(OPS.c.id == operation_id)) or 0
            if new_phase:
                add_event(
                    session, operation_id, EventKind.PHASE, at=now, attempt=attempt,
                    worker_id=worker_id, name=progress.phase,
                )  # fmt: skip
            for epoch in epochs:
                add_event(
                    session, operation_id, EventKind.EPOCH, at=now, attempt=attempt,
                    worker_id=worker_id, name=str(epoch.epoch), detail=epoch_detail(epoch),
                )  # fmt: skip
            return True

    def epoch_records(self, operation_id: str) -> list[OperationEvent]:
        """The epochs workers reported for the operation, every attempt, oldest first."""
        with self.session() as session:
            return read_epochs(session, operation_id)

    def operation_events(self, operation_id: str) -> list[OperationEvent]:
        """The operation's dispatches, phase changes and transitions, oldest first."""
        with self.session() as session:
            return read_events(session, operation_id)

    def record_driver_progress(self, operation_id: str, progress: Progress, now: datetime) -> bool:
        """Progress of a running backend-driven operation (a campaign: no worker owns it)."""
        with self.session() as session, session.begin():
            outcome = session.execute(
                update(OperationRow)
                .where(
                    OperationRow.id == operation_id,
                    OperationRow.status == OperationStatus.RUNNING.value,
                    OperationRow.worker_id.is_(None),
                )
                .values(updated_at=now, **_progress_values(progress))
            )
            return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]

    def claim(self, operation_id: str, worker_id: str, now: datetime) -> OperationPublic | None:
        """Atomically give a pending operation to an idle online worker, or do nothing.

        Both rows are compare-and-set in one transaction: the worker must still be idle and
        the operation still pending. This is what rules out two operations on one worker.
        """
        with self.engine.connect() as conn, conn.begin() as txn:
            binds = {"b_op": operation_id, "b_worker": worker_id, "b_now": now}
            took_worker = conn.execute(sql.CLAIM_WORKER, binds)
            if took_worker.rowcount != 1:
                txn.rollback()
                return None
            row = conn.execute(sql.CLAIM_OPERATION, binds).one_or_none()
            if row is None:
                txn.rollback()
                return None
            add_event(
                conn, operation_id, EventKind.DISPATCHED, at=now, attempt=row.attempt,
                worker_id=worker_id,
            )  # fmt: skip
            return to_public(row)
