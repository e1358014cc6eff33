"""The store on SQLite and on the machine's real PostgreSQL server: same tests for both."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from ktrdr.db.engine import upgrade_schema
from ktrdr.operations.model import IllegalTransition, OperationStatus, OperationType
from ktrdr.operations.schemas import Progress
from ktrdr.operations.store import (
    IdempotencyConflict,
    OperationNotFound,
    StaleReport,
    Store,
)
from ktrdr.registry.schemas import WorkerState

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
DIAG = OperationType.DIAGNOSTIC


def create(store: Store, key: str | None = None, params: dict | None = None, at: datetime = NOW):
    op, _ = store.create_operation(
        op_type=DIAG,
        params=params or {"steps": 1},
        params_hash=str(sorted((params or {"steps": 1}).items())),
        max_attempts=2,
        now=at,
        idempotency_key=key,
    )
    return op


def add_worker(store: Store, worker_id: str, kinds: tuple[str, ...] = ("diagnostic",)) -> None:
    store.register_worker(
        worker_id=worker_id, kinds=list(kinds), url=f"http://{worker_id}", version="t", now=NOW
    )


def test_upgrade_schema_twice_is_harmless(store: Store) -> None:
    upgrade_schema(store.engine)
    tables = set(inspect(store.engine).get_table_names())
    assert {"operations", "workers", "alembic_version"} <= tables


def test_create_then_get_round_trips_fields(store: Store) -> None:
    op = create(store, params={"steps": 3, "step_ms": 5})
    got = store.get_operation(op.id)
    assert got.status == OperationStatus.PENDING
    assert got.params == {"steps": 3, "step_ms": 5}
    assert got.attempt == 0 and got.max_attempts == 2
    assert got.created_at == NOW and got.created_at.tzinfo is not None
    assert got.progress == Progress()


def test_get_unknown_operation_names_the_fix(store: Store) -> None:
    with pytest.raises(OperationNotFound, match="ktrdr ops list"):
        store.get_operation("op_nope")


def test_same_idempotency_key_returns_first_operation(store: Store) -> None:
    first = create(store, key="k1")
    again, created = store.create_operation(
        op_type=DIAG,
        params={"steps": 1},
        params_hash=str(sorted({"steps": 1}.items())),
        max_attempts=2,
        now=NOW,
        idempotency_key="k1",
    )
    assert not created and again.id == first.id
    assert store.list_operations()[1] == 1


def test_idempotency_key_with_other_params_is_refused(store: Store) -> None:
    create(store, key="k2")
    with pytest.raises(IdempotencyConflict, match="different parameters"):
        create(store, key="k2", params={"steps": 9})


def test_list_filters_paginates_and_counts(store: Store) -> None:
    ids = [create(store, at=NOW + timedelta(seconds=i)).id for i in range(5)]
    add_worker(store, "w1")
    assert store.claim(ids[0], "w1", NOW) is not None
    page, total = store.list_operations(limit=2, offset=1)
    assert total == 5
    assert [o.id for o in page] == [ids[3], ids[2]]  # newest first
    running, count = store.list_operations(statuses=[OperationStatus.RUNNING])
    assert count == 1 and running[0].id == ids[0]
    _, none = store.list_operations(types=[OperationType.BACKTESTING])
    assert none == 0


def test_claim_is_exclusive_per_worker_and_per_operation(store: Store) -> None:
    a, b = create(store), create(store)
    add_worker(store, "w1")
    add_worker(store, "w2")
    claimed = store.claim(a.id, "w1", NOW)
    assert claimed is not None and claimed.status == OperationStatus.RUNNING
    assert claimed.worker_id == "w1" and claimed.attempt == 1
    assert store.claim(b.id, "w1", NOW) is None, "w1 is busy"
    assert store.claim(a.id, "w2", NOW) is None, "a is already running"
    worker = store.get_worker("w1")
    assert worker is not None and worker.current_operation_id == a.id
    assert store.get_operation(b.id).status == OperationStatus.PENDING
    assert store.get_worker("w2").current_operation_id is None  # type: ignore[union-attr]


def test_concurrent_claims_never_double_book(store: Store) -> None:
    ops = [create(store).id for _ in range(20)]
    workers = ["w1", "w2", "w3"]
    for w in workers:
        add_worker(store, w)
    wins: list[tuple[str, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for op_id in ops:
            for w in workers:
                if store.claim(op_id, w, NOW) is not None:
                    with lock:
                        wins.append((op_id, w))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 3, wins  # one per worker, no more
    assert len({op for op, _ in wins}) == 3
    assert Counter(w for _, w in wins) == Counter(workers)


def test_transition_guard_and_duplicate_completion(store: Store) -> None:
    op = create(store)
    add_worker(store, "w1")
    store.claim(op.id, "w1", NOW)
    done = store.transition(
        op.id, OperationStatus.COMPLETED, now=NOW, expected_worker_id="w1",
        expected_attempt=1, result={"x": 1},
    )  # fmt: skip
    assert done.changed and done.operation.result == {"x": 1}
    assert done.operation.completed_at == NOW and done.operation.progress.percent == 100
    assert store.get_worker("w1").current_operation_id is None  # type: ignore[union-attr]
    repeat = store.transition(op.id, OperationStatus.COMPLETED, now=NOW, expected_worker_id="w1")
    assert not repeat.changed
    with pytest.raises(IllegalTransition):
        store.transition(op.id, OperationStatus.FAILED, now=NOW)


def test_report_from_a_worker_that_lost_the_operation_is_stale(store: Store) -> None:
    op = create(store)
    add_worker(store, "w1")
    add_worker(store, "w2")
    store.claim(op.id, "w1", NOW)
    requeued = store.transition(op.id, OperationStatus.PENDING, now=NOW, reason="w1 lost")
    assert requeued.operation.worker_id is None and requeued.operation.attempt == 1
    store.claim(op.id, "w2", NOW)
    with pytest.raises(StaleReport, match="assigned to w2"):
        store.transition(op.id, OperationStatus.COMPLETED, now=NOW, expected_worker_id="w1")
    with pytest.raises(StaleReport, match="attempt 2"):
        store.transition(
            op.id, OperationStatus.COMPLETED, now=NOW, expected_worker_id="w2", expected_attempt=1
        )


def test_requeued_operation_keeps_its_place_but_waits_only_from_the_requeue(
    store: Store,
) -> None:
    op = create(store, at=NOW)
    later = create(store, at=NOW + timedelta(seconds=1))
    add_worker(store, "w1")
    add_worker(store, "w2")
    first = store.claim(op.id, "w1", NOW + timedelta(seconds=2))
    assert first is not None and first.queue_wait_s == 2.0
    lost_at = NOW + timedelta(seconds=600)  # the first attempt ran 598 s, then w1 went silent
    store.transition(op.id, OperationStatus.PENDING, now=lost_at, reason="w1 lost")
    requeued = store.get_operation(op.id)
    assert (requeued.queued_at, requeued.pending_since) == (NOW, lost_at)
    assert requeued.queue_wait_s is None
    # Still ahead of the operation created after it...
    assert [o.id for o in store.pending_operations()][:2] == [op.id, later.id]
    # ...and its second wait is the 5 s since the re-queue, not the 605 s since creation.
    second = store.claim(op.id, "w2", lost_at + timedelta(seconds=5))
    assert second is not None and second.attempt == 2 and second.queue_wait_s == 5.0


def test_cancel_of_running_keeps_worker_until_release(store: Store) -> None:
    op = create(store)
    add_worker(store, "w1")
    store.claim(op.id, "w1", NOW)
    store.transition(op.id, OperationStatus.CANCELLED, now=NOW)
    assert store.get_worker("w1").current_operation_id == op.id  # type: ignore[union-attr]
    assert store.release_worker("w1", op.id)
    assert store.get_worker("w1").current_operation_id is None  # type: ignore[union-attr]


def test_progress_only_from_the_owning_worker(store: Store) -> None:
    op = create(store)
    add_worker(store, "w1")
    store.claim(op.id, "w1", NOW)
    assert not store.record_progress(op.id, "w2", Progress(percent=50), NOW)
    assert store.record_progress(op.id, "w1", Progress(percent=40, phase="p", items_done=2), NOW)
    got = store.get_operation(op.id).progress
    assert (got.percent, got.phase, got.items_done) == (40, "p", 2)


def test_operation_counts_by_type_and_live_status(store: Store) -> None:
    ops = [create(store) for _ in range(3)]
    add_worker(store, "w1")
    store.claim(ops[0].id, "w1", NOW)
    store.transition(ops[1].id, OperationStatus.CANCELLED, now=NOW)
    assert store.operation_counts() == {("diagnostic", "running"): 1, ("diagnostic", "pending"): 1}


def test_silent_workers_are_found_and_marked_once(store: Store) -> None:
    add_worker(store, "w1")
    add_worker(store, "w2")
    store.heartbeat("w2", NOW + timedelta(seconds=20))
    stale = store.stale_workers(NOW + timedelta(seconds=10))
    assert [w.id for w in stale] == ["w1"]
    cutoff = NOW + timedelta(seconds=10)
    assert store.mark_worker_gone("w1", WorkerState.LOST, "silent", stale_before=cutoff)
    assert not store.mark_worker_gone("w1", WorkerState.LOST, "silent", stale_before=cutoff)
    assert store.heartbeat("w1", NOW) is None, "a lost worker must register again"
    assert [w.id for w in store.list_workers()] == ["w2"]
    assert {w.id for w in store.list_workers(include_gone=True)} == {"w1", "w2"}


def test_migrations_build_exactly_the_tables_the_code_declares(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ktrdr.db.tables import Base

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def _holder(store: Store, worker_id: str) -> str | None:
    worker = store.get_worker(worker_id)
    assert worker is not None
    return worker.current_operation_id


def test_requeue_frees_the_worker_in_the_same_transaction(store: Store) -> None:
    """running -> pending (worker restarted, or handed back on SIGTERM) frees its worker,
    so the re-queued operation can be dispatched again - to the same worker too."""
    op = create(store)
    add_worker(store, "w1")
    store.claim(op.id, "w1", NOW)
    requeued = store.transition(op.id, OperationStatus.PENDING, now=NOW, reason="restarted")
    assert requeued.changed and requeued.operation.worker_id is None
    assert _holder(store, "w1") is None
    again = store.claim(op.id, "w1", NOW + timedelta(seconds=1))
    assert again is not None and again.attempt == 2 and again.worker_id == "w1"
    failed = store.transition(op.id, OperationStatus.FAILED, now=NOW, error="x")
    assert failed.operation.worker_id == "w1", "a final state keeps who ran it"
    assert _holder(store, "w1") is None


def test_orphaned_workers_are_freed_and_only_those(store: Store) -> None:
    running, pending, elsewhere, done, cancelled = (create(store) for _ in range(5))
    for w in ("busy", "stale", "moved", "finished", "stopping", "ghost", "idle", "other"):
        add_worker(store, w)
    store.claim(running.id, "busy", NOW)
    store.claim(pending.id, "stale", NOW)
    store.claim(elsewhere.id, "other", NOW)
    store.claim(done.id, "finished", NOW)
    store.claim(cancelled.id, "stopping", NOW)
    store.transition(done.id, OperationStatus.COMPLETED, now=NOW)  # frees "finished"
    store.transition(cancelled.id, OperationStatus.CANCELLED, now=NOW)  # keeps "stopping"
    # The leaks the invariant exists for (as a re-queue on main left them, or a registry
    # that remembers an operation since moved on or deleted):
    store.set_worker_assignment("stale", pending.id)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE operations SET status='pending', worker_id=NULL WHERE id=?"
            if store.engine.dialect.name == "sqlite"
            else "UPDATE operations SET status='pending', worker_id=NULL WHERE id=%s",
            (pending.id,),
        )
    store.set_worker_assignment("moved", elsewhere.id)
    store.set_worker_assignment("finished", done.id)
    store.set_worker_assignment("ghost", "op_diagnostic_20261125_120000_deadbeef")

    freed = sorted(store.free_orphaned_workers())
    assert freed == sorted(
        [
            ("stale", pending.id),
            ("moved", elsewhere.id),
            ("finished", done.id),
            ("ghost", "op_diagnostic_20261125_120000_deadbeef"),
        ]
    )
    holders = {w.id: w.current_operation_id for w in store.list_workers()}
    assert holders == {
        "busy": running.id,
        "stopping": cancelled.id,
        "other": elsewhere.id,
        "stale": None,
        "moved": None,
        "finished": None,
        "ghost": None,
        "idle": None,
    }
    assert store.free_orphaned_workers() == [], "nothing left to free"
    assert store.claim(pending.id, "stale", NOW) is not None


def test_invariant_never_frees_a_worker_during_concurrent_dispatch(store: Store) -> None:
    """Claims, completions and re-queues race the invariant: it must free nothing, since
    each of those moves both rows in one transaction."""
    ops = [create(store).id for _ in range(30)]
    workers = ["w1", "w2", "w3"]
    for w in workers:
        add_worker(store, w)
    stop = threading.Event()
    freed: list[tuple[str, str]] = []

    def check() -> None:
        while not stop.is_set():
            freed.extend(store.free_orphaned_workers())

    def dispatch(worker_id: str) -> None:
        for i, op_id in enumerate(ops):
            if store.claim(op_id, worker_id, NOW) is None:
                continue
            target = OperationStatus.PENDING if i % 2 else OperationStatus.COMPLETED
            store.transition(op_id, target, now=NOW)

    checker = threading.Thread(target=check)
    checker.start()
    threads = [threading.Thread(target=dispatch, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    checker.join()
    assert freed == []
    assert all(_holder(store, w) is None for w in workers)
