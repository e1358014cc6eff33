"""The operation history the console's timeline is built from, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ktrdr.operations.curve import EpochMetrics, build_curve
from ktrdr.operations.model import OperationStatus, OperationType
from ktrdr.operations.schemas import Progress
from ktrdr.operations.store import Store

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_op(store: Store, params: dict | None = None) -> str:
    op, _ = store.create_operation(
        op_type=OperationType.BACKTESTING, params=params or {"steps": 1},
        params_hash=str(abs(hash(repr(params)))), max_attempts=2, now=T0,
    )  # fmt: skip
    return op.id


def worker(store: Store, worker_id: str) -> None:
    store.register_worker(
        worker_id=worker_id, kinds=["backtesting"], url=f"http://{worker_id}", version="t", now=T0
    )


def test_a_final_reports_unannounced_phase_is_in_the_history(store: Store) -> None:
    # A job quicker than the worker's progress period: no progress report before the end.
    quick, announced = new_op(store, {"a": 1}), new_op(store, {"b": 2})
    worker(store, "w1")
    worker(store, "w2")
    assert store.claim(quick, "w1", at(1)) is not None
    store.transition(
        quick, OperationStatus.COMPLETED, now=at(2), expected_worker_id="w1",
        progress=Progress(percent=100, phase="results"), result={"ok": True},
    )  # fmt: skip
    assert [(e.kind.value, e.name) for e in store.operation_events(quick)] == [
        ("dispatched", None), ("phase", "results"), ("status", "completed"),
    ]  # fmt: skip
    # A phase already announced by progress is not recorded twice.
    assert store.claim(announced, "w2", at(3)) is not None
    assert store.record_progress(announced, "w2", Progress(percent=90, phase="results"), at(4))
    store.transition(
        announced, OperationStatus.COMPLETED, now=at(5), expected_worker_id="w2",
        progress=Progress(percent=100, phase="results"), result={"ok": True},
    )  # fmt: skip
    assert [(e.kind.value, e.name) for e in store.operation_events(announced)] == [
        ("dispatched", None), ("phase", "results"), ("status", "completed"),
    ]  # fmt: skip


def test_history_records_each_attempt_its_phases_and_the_requeue(store: Store) -> None:
    op_id = new_op(store)
    worker(store, "w1")
    worker(store, "w2")
    assert store.claim(op_id, "w1", at(1)) is not None
    assert store.record_progress(op_id, "w1", Progress(percent=5, phase="data_loading"), at(2))
    # the same phase again is progress, not a new phase
    assert store.record_progress(op_id, "w1", Progress(percent=9, phase="data_loading"), at(3))
    assert store.record_progress(op_id, "w1", Progress(percent=50, phase="simulation"), at(4))
    store.transition(op_id, OperationStatus.PENDING, now=at(5), reason="worker w1 lost")
    assert not store.record_progress(op_id, "w1", Progress(phase="results"), at(6)), "stale"
    assert store.claim(op_id, "w2", at(7)) is not None
    assert store.record_progress(op_id, "w2", Progress(percent=5, phase="data_loading"), at(8))
    store.transition(op_id, OperationStatus.COMPLETED, now=at(9), result={"ok": True})

    events = [
        (e.at, e.kind.value, e.attempt, e.worker_id, e.name, e.detail)
        for e in store.operation_events(op_id)
    ]
    assert events == [
        (at(1), "dispatched", 1, "w1", None, None),
        (at(2), "phase", 1, "w1", "data_loading", None),
        (at(4), "phase", 1, "w1", "simulation", None),
        (at(5), "status", 1, "w1", "pending", "worker w1 lost"),
        (at(7), "dispatched", 2, "w2", None, None),
        (at(8), "phase", 2, "w2", "data_loading", None),
        (at(9), "status", 2, "w2", "completed", None),
    ]
    assert store.get_operation(op_id).progress.phase == "data_loading"  # progress still stored


def test_list_filters_by_symbol_and_strategy_name(store: Store) -> None:
    by_name = new_op(store, {"strategy": "sma_crossover", "symbol": "EURUSD"})
    pasted = new_op(store, {"strategy": "version: 1\nname: my_rsi\nx: 1\n", "symbol": "AAPL"})
    new_op(store, {"strategy": "name: my_rsi_v2\n", "symbol": "AAPL"})
    new_op(store, {"strategy": "name: my%rsi\n", "symbol": "AAPL"})

    def ids(**filters: str) -> list[str]:
        return [o.id for o in store.list_operations(**filters)[0]]  # type: ignore[arg-type]

    assert ids(symbol="eurusd") == [by_name]
    assert ids(strategy="sma_crossover") == [by_name]
    assert ids(strategy="my_rsi") == [pasted]  # not my_rsi_v2, and _ is not a wildcard
    assert ids(strategy="my_rsi", symbol="EURUSD") == []


def _epoch(n: int, loss: float, *, restored: bool = False) -> EpochMetrics:
    return EpochMetrics(
        epoch=n, epochs=4, train_loss=loss + 0.1, val_loss=loss, val_accuracy=0.5,
        duration_s=0.0 if restored else 0.25, restored=restored,
    )  # fmt: skip


def test_epochs_are_kept_per_attempt_and_the_curve_takes_the_newest(store: Store) -> None:
    op_id = new_op(store)
    worker(store, "w1")
    worker(store, "w2")
    assert store.claim(op_id, "w1", at(1)) is not None
    progress = Progress(percent=30, phase="training")
    assert store.record_progress(op_id, "w1", progress, at(2), [_epoch(1, 0.9), _epoch(2, 0.8)])
    assert store.record_progress(op_id, "w1", progress, at(3), [_epoch(3, 0.85)])
    store.transition(op_id, OperationStatus.PENDING, now=at(4), reason="worker w1 lost")
    # A report of the lost worker arriving late is refused, its epochs with it.
    assert not store.record_progress(op_id, "w1", progress, at(5), [_epoch(4, 0.1)])
    assert store.claim(op_id, "w2", at(6)) is not None
    # Attempt 2 went on from the checkpoint of epoch 2: its history first, then epoch 3 on.
    restored = [_epoch(1, 0.9, restored=True), _epoch(2, 0.8, restored=True)]
    assert store.record_progress(op_id, "w2", progress, at(7), [*restored, _epoch(3, 0.7)])
    assert store.record_progress(op_id, "w2", progress, at(8), [_epoch(4, 0.75)])

    records = store.epoch_records(op_id)
    curve = build_curve(op_id, OperationStatus.RUNNING, records)
    assert [(p.attempt, p.epoch, p.restored) for p in curve.recorded] == [
        (1, 1, False), (1, 2, False), (1, 3, False),
        (2, 1, True), (2, 2, True), (2, 3, False), (2, 4, False),
    ]  # fmt: skip
    # Trained points win over restored ones; a later attempt's over an earlier one's.
    assert [(p.epoch, p.attempt, p.val_loss) for p in curve.points] == [
        (1, 1, 0.9), (2, 1, 0.8), (3, 2, 0.7), (4, 2, 0.75),
    ]  # fmt: skip
    assert (curve.best_epoch, curve.epochs_total, curve.latest and curve.latest.epoch) == (3, 4, 4)
    # The timeline's events leave the epochs out.
    assert "epoch" not in {e.kind.value for e in store.operation_events(op_id)}


def test_a_completed_curve_is_the_fitted_history_with_each_epochs_report(store: Store) -> None:
    op_id = new_op(store)
    worker(store, "w1")
    assert store.claim(op_id, "w1", at(1)) is not None
    progress = Progress(percent=30, phase="training")
    assert store.record_progress(op_id, "w1", progress, at(2), [_epoch(1, 0.9), _epoch(2, 0.8)])
    # The fitted history (the artifact's rows): figures to the bit, here unlike the reports
    # so the test sees which one the curve took; epoch 3's report never arrived.
    final = [
        {"epoch": n, "epochs": 3, "train_loss": 1.0 / n, "val_loss": v, "val_accuracy": None}
        for n, v in ((1, 0.91), (2, 0.79), (3, 0.85))
    ]
    curve = build_curve(op_id, OperationStatus.COMPLETED, store.epoch_records(op_id), final, 2)
    assert [(p.epoch, p.train_loss, p.val_loss, p.val_accuracy) for p in curve.points] == [
        (1, 1.0, 0.91, None), (2, 0.5, 0.79, None), (3, 1.0 / 3, 0.85, None),
    ]  # fmt: skip
    assert [(p.attempt, p.worker_id, p.duration_s) for p in curve.points] == [
        (1, "w1", 0.25), (1, "w1", 0.25), (2, None, 0.0),
    ]  # fmt: skip
    assert (curve.best_epoch, curve.epochs_total) == (2, 3)
    assert [p.epoch for p in curve.recorded] == [1, 2], "recorded: the reports as they came"
