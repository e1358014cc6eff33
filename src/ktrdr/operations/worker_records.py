"""The worker registry half of the Store: registration, heartbeats, assignment, loss.

A mixin of ``Store`` (one engine and session factory); every ownership write is a
compare-and-set like the operations half's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ktrdr.db.tables import WorkerRow
from ktrdr.operations import statements as sql
from ktrdr.operations.records import (
    _LIVE,
    WORKERS,
    _worker_public,
)
from ktrdr.registry.schemas import WorkerPublic, WorkerState


class WorkerRecords:
    """Worker rows; ``engine`` and ``session`` come from the Store. The paths every
    operation or heartbeat takes are Core statements on a connection (no ORM session)."""

    engine: Engine

    def session(self) -> Session:
        raise NotImplementedError

    def register_worker(
        self,
        *,
        worker_id: str,
        kinds: Sequence[str],
        url: str,
        version: str | None,
        now: datetime,
        credential_hash: str | None = None,
    ) -> WorkerPublic:
        """Insert or refresh a worker; it comes back online and keeps its assignment.
        `credential_hash` replaces the previous instance's credential (rotation)."""
        with self.session() as session, session.begin():
            row = session.get(WorkerRow, worker_id)
            if row is None:
                row = WorkerRow(
                    id=worker_id,
                    kinds=list(kinds),
                    url=url,
                    state=WorkerState.ONLINE.value,
                    registered_at=now,
                    last_heartbeat_at=now,
                    version=version,
                    credential_hash=credential_hash,
                )
                session.add(row)
            else:
                row.credential_hash = credential_hash
                row.kinds = list(kinds)
                row.url = url
                row.state = WorkerState.ONLINE.value
                row.registered_at = now
                row.last_heartbeat_at = now
                row.version = version
                row.lost_reason = None
            session.flush()
            return _worker_public(row)

    def heartbeat(
        self, worker_id: str, now: datetime, *, draining: bool = False
    ) -> WorkerPublic | None:
        """Record a beat from a live worker; None means "register again"."""
        statement = sql.HEARTBEAT_DRAINING if draining else sql.HEARTBEAT
        with self.engine.begin() as conn:
            row = conn.execute(statement, {"b_worker": worker_id, "b_now": now}).one_or_none()
            return None if row is None else _worker_public(row)

    def worker_credential_hash(self, worker_id: str) -> tuple[bool, str | None]:
        """(is the worker known, the hash of its current instance's credential)."""
        with self.engine.connect() as conn:
            row = conn.execute(sql.WORKER_CREDENTIAL, {"b_worker": worker_id}).one_or_none()
            return (False, None) if row is None else (True, row.credential_hash)

    def get_worker(self, worker_id: str) -> WorkerPublic | None:
        with self.engine.connect() as conn:
            row = conn.execute(sql.GET_WORKER, {"b_worker": worker_id}).one_or_none()
            return None if row is None else _worker_public(row)

    def list_workers(self, *, include_gone: bool = False) -> list[WorkerPublic]:
        query = sql.ALL_WORKERS if include_gone else sql.LIVE_WORKERS
        with self.engine.connect() as conn:
            return [_worker_public(r) for r in conn.execute(query).all()]

    def set_worker_assignment(self, worker_id: str, operation_id: str | None) -> None:
        """Reconcile the registry with what a worker says it runs (after a backend restart)."""
        with self.session() as session, session.begin():
            session.execute(
                update(WorkerRow)
                .where(WorkerRow.id == worker_id)
                .values(current_operation_id=operation_id)
            )

    def release_worker(self, worker_id: str, operation_id: str) -> bool:
        with self.engine.begin() as conn:
            return sql.release_worker(conn, worker_id, operation_id)

    def free_orphaned_workers(self) -> list[tuple[str, str]]:
        """Free every worker held by an operation that is not running on it.

        The registry invariant, checked by the dispatcher every round: a worker's
        `current_operation_id` names an operation that is `running` on that worker, or
        `cancelled` on it (the worker keeps it until it confirms it stopped; its report or
        heartbeat settles that). Anything else - missing, pending, re-assigned, finished -
        is a leak, freed here. Returns the (worker, operation) pairs freed.

        Safe beside a dispatch in flight: `claim` sets both rows in one transaction, so
        a claimed worker is never seen without its running operation. On PostgreSQL the
        candidates are locked first (as `claim` does: the worker row first), so the
        UPDATE re-checks them on a fresh snapshot that no claim can change meanwhile; on
        SQLite the UPDATE runs under the database's single write lock.
        """
        with self.engine.connect() as conn:
            candidates = conn.execute(sql.ORPHANED_WORKERS).all()
        if not candidates:  # the common case: one read, no write lock
            return []
        freed: list[tuple[str, str]] = []
        with self.engine.begin() as conn:
            ids = [worker_id for worker_id, _ in candidates]
            locked = select(WORKERS.c.id).where(WORKERS.c.id.in_(ids)).with_for_update()
            conn.execute(locked).all()
            for worker_id, operation_id in candidates:
                outcome = conn.execute(
                    update(WORKERS)
                    .where(
                        WORKERS.c.id == worker_id,
                        WORKERS.c.current_operation_id == operation_id,
                        sql.ORPHANED,
                    )
                    .values(current_operation_id=None)
                )
                if outcome.rowcount == 1:
                    freed.append((worker_id, str(operation_id)))
        return freed

    def stale_workers(self, cutoff: datetime) -> list[WorkerPublic]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(WORKERS).where(
                    WORKERS.c.state.in_(_LIVE), WORKERS.c.last_heartbeat_at < cutoff
                )
            ).all()
            return [_worker_public(r) for r in rows]

    def mark_worker_gone(
        self, worker_id: str, state: WorkerState, reason: str, *, stale_before: datetime | None
    ) -> bool:
        """live -> lost/offline; with `stale_before`, only if it is still silent."""
        conditions = [WorkerRow.id == worker_id, WorkerRow.state.in_(_LIVE)]
        if stale_before is not None:
            conditions.append(WorkerRow.last_heartbeat_at < stale_before)
        with self.session() as session, session.begin():
            outcome = session.execute(
                update(WorkerRow).where(*conditions).values(state=state.value, lost_reason=reason)
            )
            return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]

    def refresh_all_heartbeats(self, now: datetime) -> None:
        """At backend start: give every online worker a full timeout to check in again,
        so a backend restart does not mark live workers lost."""
        with self.session() as session, session.begin():
            session.execute(
                update(WorkerRow).where(WorkerRow.state.in_(_LIVE)).values(last_heartbeat_at=now)
            )
