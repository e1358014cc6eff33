"""The operation history the console's timeline is built from, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ktrdr.db.engine import make_engine, upgrade_schema
from ktrdr.operations.model import OperationStatus, OperationType
from ktrdr.operations.schemas import Progress
from ktrdr.operations.store import Store

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ktrdr.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade_schema(engine)
    with engine.begin() as conn:  # the PostgreSQL database is shared by the session
        for table in ("operations", "workers", "operation_events"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    yield Store(engine)
    engine.dispose()


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
