"""Feeds the scrape-time gauges (workers, active/queued operations) from the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ktrdr.operations.store import Store
from ktrdr.telemetry.metrics import WorkerState


class StoreStateReader:
    """Implements ktrdr.telemetry.metrics.PlatformStateReader over the store."""

    def __init__(self, store: Store):
        self.store = store

    def operation_counts(self) -> Mapping[tuple[str, str], int]:
        return self.store.operation_counts()

    def worker_states(self) -> Sequence[WorkerState]:
        # A worker serving several kinds counts once under each of them.
        return [
            WorkerState(worker_id=w.id, kind=kind.value, alive=True, busy=w.busy)
            for w in self.store.list_workers()
            for kind in w.kinds
        ]
