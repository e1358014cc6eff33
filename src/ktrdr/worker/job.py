"""What a job runner sees: its parameters, progress and cancellation, phase spans."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ktrdr.artifacts import ArtifactStore
from ktrdr.operations.curve import EpochMetrics
from ktrdr.operations.model import OperationType
from ktrdr.operations.schemas import Progress
from ktrdr.telemetry.context import CancelledByRequest
from ktrdr.telemetry.metrics import JobMetrics


class JobCancelled(CancelledByRequest):
    """Raised at a checkpoint once the job was asked to stop (spans: an event, no error)."""


@dataclass
class JobContext:
    operation_id: str
    op_type: OperationType
    params: dict[str, Any]
    attempt: int
    worker_id: str
    metrics: JobMetrics
    data_home: str
    on_progress: Callable[[Progress], None]
    # Threads a job may run its parts in (a universe's symbols, a sweep chunk's
    # combinations): KTRDR_BACKTEST_THREADS.
    threads: int = 1
    # Shared with the API and the other workers (ktrdr.artifacts); None: the data home's.
    artifacts: ArtifactStore | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # Finished training epochs: the runtime queues each one for the backend (not coalesced
    # like progress, so the stored learning curve has every epoch).
    on_epoch: Callable[[EpochMetrics], None] = lambda _epoch: None
    cancel_reason: str | None = None
    # Stopped by a worker shutdown rather than a user: the backend re-queues it.
    interrupted: bool = False
    _last_progress: Progress = field(default_factory=Progress)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """A checkpoint: stop here if cancellation was asked for."""
        if self.cancel_event.is_set():
            raise JobCancelled(self.cancel_reason or "cancelled")

    def progress(
        self,
        percent: float,
        *,
        phase: str | None = None,
        message: str | None = None,
        items_done: int | None = None,
        items_total: int | None = None,
    ) -> None:
        last = self._last_progress
        self._last_progress = Progress(
            percent=max(0.0, min(100.0, percent)),
            phase=phase if phase is not None else last.phase,
            message=message if message is not None else last.message,
            items_done=items_done,
            items_total=items_total,
        )
        self.on_progress(self._last_progress)

    def epoch(self, metrics: EpochMetrics) -> None:
        """Report a finished training epoch (stored with the operation's learning curve)."""
        self.on_epoch(metrics)

    @property
    def last_progress(self) -> Progress:
        return self._last_progress

    @contextmanager
    def phase(self, name: str, *, span_prefix: str) -> Iterator[Any]:
        """Span `<span_prefix>.<name>` plus the phase-duration histogram."""
        self.progress(self._last_progress.percent, phase=name)
        with self.metrics.phase(self.op_type.value, name, span_prefix=span_prefix) as span:
            span.set_attribute("operation.id", self.operation_id)
            yield span


Runner = Callable[[JobContext], dict[str, Any]]
