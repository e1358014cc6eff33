"""Deleting a series keeps the catalog and the bar files in step: on success, on a failed
commit, and after a crash between the two (real SQLite and PostgreSQL stores, real files)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import event

from ktrdr.engine.data import DataStore, generate_synthetic_bars
from ktrdr.operations.catalog import datasets
from ktrdr.operations.data_deletion import DataInUse, DatasetNotFound, delete_dataset, recover
from ktrdr.operations.model import OperationStatus, OperationType
from ktrdr.operations.store import Store

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def downloaded(store: Store, root: Path, symbol: str, at: datetime) -> Path:
    """Bars on disk and a completed download in the store, as a worker leaves them."""
    bars = generate_synthetic_bars("1h", 50, seed=1, start="2020-01-06")
    path = DataStore(root).save(symbol, "1h", bars, source="synthetic")
    info = DataStore(root).info(symbol, "1h")
    op, _ = store.create_operation(
        op_type=OperationType.DATA_DOWNLOAD, params={"symbol": symbol, "timeframe": "1h"},
        params_hash=f"{symbol}{at}", max_attempts=1, now=at,
    )  # fmt: skip
    store.register_worker(worker_id="w", kinds=["data_download"], url="http://w", version="t",
                          now=at)  # fmt: skip
    store.claim(op.id, "w", at)
    store.transition(
        op.id, OperationStatus.COMPLETED, now=at, result={"dataset": info.to_dict(), "gaps": 0}
    )
    return path


def listed(store: Store) -> list[tuple[str, str]]:
    return [(d["symbol"], d["timeframe"]) for d in datasets(store)]


def test_delete_removes_bars_and_entry_and_a_later_download_brings_it_back(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    path = downloaded(store, root, "DELME", NOW)
    downloaded(store, root, "KEEP", NOW)
    deleted = delete_dataset(store, root, "delme", "1h", NOW + timedelta(minutes=1))
    assert (deleted.symbol, deleted.rows, deleted.bars_removed) == ("DELME", 50, True)
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # nothing parked left behind
    assert listed(store) == [("KEEP", "1h")]
    with pytest.raises(DatasetNotFound, match="no data for DELME 1h in the catalog"):
        delete_dataset(store, root, "DELME", "1h", NOW + timedelta(minutes=2))
    downloaded(store, root, "DELME", NOW + timedelta(minutes=3))
    assert listed(store) == [("DELME", "1h"), ("KEEP", "1h")]


def test_failed_commit_puts_the_bars_back(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "data"
    path = downloaded(store, root, "DELME", NOW)
    before = pd.read_parquet(path)

    def refuse(_session: object) -> None:
        raise RuntimeError("database went away")

    event.listen(store._sessions, "before_commit", refuse)
    with pytest.raises(RuntimeError, match="database went away"):
        delete_dataset(store, root, "DELME", "1h", NOW + timedelta(minutes=1))
    event.remove(store._sessions, "before_commit", refuse)
    pd.testing.assert_frame_equal(pd.read_parquet(path), before)
    assert [p.name for p in path.parent.iterdir()] == ["1h.parquet"]
    assert listed(store) == [("DELME", "1h")]


def test_recover_finishes_committed_and_undoes_uncommitted_deletions(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    path = downloaded(store, root, "DELME", NOW)
    # A crash after the commit, before the parked file was removed:
    delete_dataset(store, root, "DELME", "1h", NOW + timedelta(minutes=1))
    committed = store.session()
    from ktrdr.db.tables import DataDeletionRow

    token = committed.query(DataDeletionRow.token).scalar()
    committed.close()
    leftover = path.with_name(f".1h.parquet.deleting-{token}")
    leftover.write_bytes(b"old bars")
    # A crash after the move, before the commit (no deletion row with this token):
    other = downloaded(store, root, "HALF", NOW)
    parked = other.with_name(".1h.parquet.deleting-0123456789abcdef")
    other.rename(parked)
    done = recover(store, root)
    assert sorted(done) == [f"removed {leftover}", f"restored {parked}"]
    assert not leftover.exists() and not parked.exists() and other.is_file()
    assert listed(store) == [("HALF", "1h")]


def test_refused_while_an_operation_uses_the_data(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "data"
    path = downloaded(store, root, "DELME", NOW)
    queued, _ = store.create_operation(
        op_type=OperationType.BACKTESTING, params={"symbol": "DELME", "timeframe": "1h"},
        params_hash="b", max_attempts=1, now=NOW,
    )  # fmt: skip
    with pytest.raises(DataInUse) as refused:
        delete_dataset(store, root, "DELME", "1h", NOW + timedelta(minutes=1))
    assert str(refused.value) == (
        f"DELME 1h is in use by {queued.id} (pending backtesting); wait for them to finish "
        "or cancel them (`ktrdr ops cancel ID`), then delete again"
    )
    assert path.is_file() and listed(store) == [("DELME", "1h")]
    store.transition(queued.id, OperationStatus.CANCELLED, now=NOW)
    assert delete_dataset(store, root, "DELME", "1h", NOW + timedelta(minutes=2)).bars_removed
