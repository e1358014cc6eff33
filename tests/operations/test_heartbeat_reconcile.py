"""What a worker's heartbeat settles in the registry (``WorkerService._reconcile``), on
SQLite and PostgreSQL: here, an operation cancelled just after it was sent."""

from __future__ import annotations

from datetime import timedelta

from ktrdr.operations.model import OperationStatus, OperationType, utcnow
from ktrdr.operations.service import OperationService
from ktrdr.operations.store import Store
from ktrdr.registry.schemas import Heartbeat
from ktrdr.registry.service import WorkerService

GRACE_S = 5.0


def test_a_heartbeat_saying_idle_frees_a_cancelled_operations_worker_only_after_the_grace(
    store: Store,
) -> None:
    """The start request of an operation is in flight when the user cancels it; a
    heartbeat the worker took before it accepted the start says it runs nothing. The
    worker then runs the cancelled job until told to stop, so it stays held (freed, it
    was sent new work and answered 409 "busy" to every try). Once the grace is over, an
    idle heartbeat frees it; a heartbeat naming the job is told to cancel it."""
    now = [utcnow()]
    ops = OperationService(store, max_attempts=3, clock=lambda: now[0])
    workers = WorkerService(ops, heartbeat_timeout_s=30.0, dispatch_grace_s=GRACE_S)
    store.register_worker(
        worker_id="w1", kinds=["diagnostic"], url="http://127.0.0.1:1", version="t", now=now[0]
    )
    op, _ = ops.create(OperationType.DIAGNOSTIC, {"steps": 1, "step_ms": 1})
    assert ops.claim(op, "w1") is not None
    ops.transition(op.id, OperationStatus.CANCELLED, reason="cancelled by user")

    def held() -> str | None:
        worker = store.get_worker("w1")
        assert worker is not None
        return worker.current_operation_id

    idle = Heartbeat(current_operation_id=None)
    now[0] += timedelta(seconds=1)
    assert workers.heartbeat("w1", idle).cancel_operation_ids == []
    assert held() == op.id, "freed while the start may still be on its way"
    running = Heartbeat(current_operation_id=op.id)
    assert workers.heartbeat("w1", running).cancel_operation_ids == [op.id]
    assert held() == op.id
    now[0] += timedelta(seconds=GRACE_S + 1)
    workers.heartbeat("w1", idle)
    assert held() is None, "idle after the grace: it stopped"
