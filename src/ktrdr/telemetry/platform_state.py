"""Scrape-time gauges of the backend: queue, running operations, workers and their state.

Reading state when Prometheus scrapes (instead of inc/dec on events) means the gauges can
never drift from the database, even across backend restarts. Every known operation type
and worker kind is exported on every scrape, at 0 when idle, so a kind's line drops to 0
when its last worker leaves instead of stopping ("no data").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Worker states as the registry names them (ktrdr.registry.schemas.WorkerState).
WORKER_STATES: tuple[str, ...] = ("online", "draining", "lost", "offline")
_ALIVE_STATES = frozenset({"online", "draining"})


@dataclass(frozen=True)
class WorkerState:
    """One registered worker, for one of its kinds, as the backend's registry sees it."""

    worker_id: str
    kind: str
    alive: bool
    busy: bool
    # Registry state; workers that are not alive (lost, offline) stay visible for a while.
    state: str = "online"


@runtime_checkable
class PlatformStateReader(Protocol):
    """What the backend's store offers so gauges are read at scrape time."""

    def operation_counts(self) -> Mapping[tuple[str, str], int]:
        """Count of non-final operations keyed by (type, status); status pending/running."""
        ...

    def worker_states(self) -> Sequence[WorkerState]:
        """Every worker the registry knows (alive ones, and recently lost/offline ones)."""
        ...

    def oldest_queued_age_s(self) -> Mapping[str, float]:
        """Per type: seconds the longest-waiting pending operation has been pending."""
        ...


class PlatformStateCollector(Collector):
    """Gauges computed from a :class:`PlatformStateReader` at scrape time."""

    def __init__(
        self,
        state: PlatformStateReader | None = None,
        *,
        operation_types: Iterable[str] = (),
        worker_kinds: Iterable[str] = (),
    ) -> None:
        self.state = state
        self._operation_types = tuple(operation_types)
        self._worker_kinds = tuple(worker_kinds)

    def describe(self) -> Iterable[Any]:
        # Having describe() stops registry.register() from calling collect(), which would
        # query the database while the app is still starting.
        return list(self._families())

    def collect(self) -> Iterable[Any]:
        if self.state is None:
            return []
        try:
            counts = dict(self.state.operation_counts())
            workers = list(self.state.worker_states())
            oldest = dict(self.state.oldest_queued_age_s())
        except Exception as exc:
            # A database outage must not take down /metrics (process and HTTP metrics
            # stay useful); the gauges just go missing for this scrape.
            logger.warning("platform state unavailable, skipping state gauges: %r", exc)
            return []
        return list(self._families(counts, workers, oldest))

    def _families(
        self,
        counts: Mapping[tuple[str, str], int] | None = None,
        workers: Sequence[WorkerState] = (),
        oldest: Mapping[str, float] | None = None,
    ) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily(
            "ktrdr_operations_active", "Operations running now.", labels=["type"]
        )
        queued = GaugeMetricFamily(
            "ktrdr_operations_queued", "Operations waiting for a worker.", labels=["type"]
        )
        oldest_age = GaugeMetricFamily(
            "ktrdr_operations_oldest_queued_age_seconds",
            "How long the longest-waiting pending operation has waited (0: none queued).",
            labels=["type"],
        )
        registered = GaugeMetricFamily(
            "ktrdr_workers_registered", "Alive registered workers.", labels=["kind"]
        )
        available = GaugeMetricFamily(
            "ktrdr_workers_available", "Alive workers not running an operation.", labels=["kind"]
        )
        busy = GaugeMetricFamily(
            "ktrdr_worker_busy",
            "1 while the worker runs an operation.",
            labels=["worker_id", "kind"],
        )
        # A state set (one series per state, 1 for the current one): a worker keeps the
        # same series for its whole life whatever state it moves through.
        state_set = GaugeMetricFamily(
            "ktrdr_worker_state",
            "1 for the worker's current registry state, 0 for the others.",
            labels=["worker_id", "state"],
        )
        if counts is not None:
            types = dict.fromkeys(self._operation_types) | dict.fromkeys(t for t, _ in counts)
            for op_type in types:
                active.add_metric([op_type], counts.get((op_type, "running"), 0))
                queued.add_metric([op_type], counts.get((op_type, "pending"), 0))
                oldest_age.add_metric([op_type], max(0.0, (oldest or {}).get(op_type, 0.0)))
            alive = [w for w in workers if w.alive]
            kinds = dict.fromkeys(self._worker_kinds) | dict.fromkeys(w.kind for w in alive)
            for kind in kinds:
                registered.add_metric([kind], sum(1 for w in alive if w.kind == kind))
                available.add_metric([kind], sum(1 for w in alive if w.kind == kind and not w.busy))
            for w in alive:
                busy.add_metric([w.worker_id, w.kind], 1 if w.busy else 0)
            current = {w.worker_id: w.state for w in workers}
            for worker_id, now in current.items():
                for state in WORKER_STATES:
                    state_set.add_metric([worker_id, state], 1 if state == now else 0)
        yield from (active, queued, oldest_age, registered, available, busy, state_set)


def is_alive(state: str) -> bool:
    return state in _ALIVE_STATES
