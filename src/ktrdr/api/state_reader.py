"""Feeds the scrape-time gauges (workers, active/queued operations) from the store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from ktrdr.operations.store import Store
from ktrdr.registry.schemas import LIVE_STATES, WorkerPublic
from ktrdr.registry.schemas import WorkerState as RegistryState
from ktrdr.telemetry.platform_state import WorkerState

# A lost worker stays visible (scrape target, state metric) for this long, so its `up`
# shows 0 (a red cell) instead of silently vanishing; a clean deregistration drops it.
LOST_VISIBLE = timedelta(hours=1)


def visible_workers(workers: Iterable[WorkerPublic], now: datetime) -> list[WorkerPublic]:
    """Alive workers and those lost within :data:`LOST_VISIBLE` (never offline ones)."""
    return [
        w
        for w in workers
        if w.state in LIVE_STATES
        or (w.state == RegistryState.LOST and now - w.last_heartbeat_at <= LOST_VISIBLE)
    ]


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class StoreStateReader:
    """Implements ktrdr.telemetry.platform_state.PlatformStateReader over the store."""

    def __init__(self, store: Store):
        self.store = store

    def operation_counts(self) -> Mapping[tuple[str, str], int]:
        return self.store.operation_counts()

    def worker_states(self) -> Sequence[WorkerState]:
        # A worker serving several kinds counts once under each of them.
        now = datetime.now(UTC)
        workers = visible_workers(self.store.list_workers(include_gone=True), now)
        return [
            WorkerState(
                worker_id=w.id,
                kind=kind.value,
                alive=w.state in LIVE_STATES,
                busy=w.busy,
                state=w.state.value,
            )
            for w in workers
            for kind in w.kinds
        ]

    def oldest_queued_age_s(self) -> Mapping[str, float]:
        now = datetime.now(UTC)
        return {
            op_type: (now - _as_utc(since)).total_seconds()
            for op_type, since in self.store.oldest_pending_since().items()
        }
