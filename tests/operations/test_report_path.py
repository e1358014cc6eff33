"""The per-operation write path: what a report and a dispatch round cost the store, and
who is woken (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from ktrdr.operations.model import OperationStatus, OperationType, Outcome
from ktrdr.operations.service import OperationService
from ktrdr.operations.store import QueuedOperation, Store

NOW = datetime(2026, 12, 2, 1, 0, 0, tzinfo=UTC)


class Wakes:
    def __init__(self) -> None:
        self.queue = self.campaign = 0
        self.ended: list[str] = []


def service_for(store: Store) -> tuple[OperationService, Wakes]:
    wakes = Wakes()
    ticks = itertools.count()
    service = OperationService(
        store, max_attempts=3, clock=lambda: NOW + timedelta(seconds=next(ticks))
    )

    def queue() -> None:
        wakes.queue += 1

    def campaign() -> None:
        wakes.campaign += 1

    service.on_queue_change = queue
    service.on_campaign_change = campaign
    service.on_end = lambda op: wakes.ended.append(op.id)
    return service, wakes


def running_on(store: Store, service: OperationService, worker: str) -> str:
    store.register_worker(worker_id=worker, kinds=["diagnostic"], url="http://w", version="1",
                          now=NOW)  # fmt: skip
    op, _ = service.create(OperationType.DIAGNOSTIC, {"steps": 0, "step_ms": 0})
    assert service.claim(op, worker) is not None
    return op.id


def commits(store: Store) -> list[int]:
    counted: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: counted.append(1))
    return counted


def test_a_completion_report_is_one_transaction_and_frees_the_worker(store: Store) -> None:
    service, wakes = service_for(store)
    op_id = running_on(store, service, "w1")
    counted = commits(store)
    done = service.report(op_id, worker_id="w1", attempt=1, outcome=Outcome.COMPLETED,
                          result={"ok": True})  # fmt: skip
    assert done.status == OperationStatus.COMPLETED and done.result == {"ok": True}
    assert len(counted) == 1, "status, history and the worker's release in one commit"
    worker = store.get_worker("w1")
    assert worker is not None and worker.current_operation_id is None
    assert wakes.ended == [op_id]


def test_a_report_after_a_cancel_still_frees_the_worker_the_cancel_kept(store: Store) -> None:
    service, wakes = service_for(store)
    op_id = running_on(store, service, "w1")
    service.cancel(op_id)
    held = store.get_worker("w1")
    assert held is not None and held.current_operation_id == op_id, "kept until it stops"
    service.report(op_id, worker_id="w1", attempt=1, outcome=Outcome.CANCELLED, error="stopped")
    freed = store.get_worker("w1")
    assert freed is not None and freed.current_operation_id is None
    assert wakes.ended == [op_id], "the cancel ended it; the report changed nothing"


def test_only_campaign_changes_wake_the_campaign_driver(store: Store) -> None:
    service, wakes = service_for(store)
    op_id = running_on(store, service, "w1")
    service.report(op_id, worker_id="w1", attempt=1, outcome=Outcome.COMPLETED, result={})
    assert wakes.campaign == 0, "a plain operation's create and end concern the dispatcher only"
    assert wakes.queue >= 2
    child, _ = service.create(
        OperationType.DIAGNOSTIC, {"steps": 0, "step_ms": 0}, parent_id="sweep-parent"
    )
    assert wakes.campaign == 1, "a campaign's child was created"
    service.cancel(child.id)
    assert wakes.campaign == 2, "and ended"


def test_the_dispatch_queue_is_the_pending_operations_oldest_first(store: Store) -> None:
    service, _ = service_for(store)
    first, _ = service.create(OperationType.DIAGNOSTIC, {"steps": 0, "step_ms": 0})
    second, _ = service.create(OperationType.DIAGNOSTIC, {"steps": 1, "step_ms": 0})
    running_on(store, service, "w1")  # a third operation, created and claimed
    queued = store.queue()
    assert queued == [
        QueuedOperation(o.id, OperationType.DIAGNOSTIC, o.traceparent) for o in (first, second)
    ]
    assert [o.id for o in store.pending_operations()] == [o.id for o in queued]
