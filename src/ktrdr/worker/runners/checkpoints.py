"""The engine's checkpoint store with the worker's telemetry around it.

The engine stays free of telemetry: ``fit_model`` calls ``save`` and ``latest`` on what it
is given, and this subclass wraps each call in a span (``training.checkpoint`` for a write,
``training.resume`` for a restore) and the checkpoint counters and duration histogram.
"""

from __future__ import annotations

import time
from pathlib import Path

from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from ktrdr.engine.training.checkpoint import CheckpointState, CheckpointStore
from ktrdr.telemetry.training_metrics import TrainingMetrics


class TracedCheckpoints(CheckpointStore):
    def __init__(
        self,
        folder: Path,
        metrics: TrainingMetrics,
        operation_id: str,
        keep: int = 2,
        *,
        tracer_provider: TracerProvider | None = None,  # default: the global one
    ) -> None:
        super().__init__(folder, keep)
        self._tracer = trace.get_tracer("ktrdr.worker", tracer_provider=tracer_provider)
        self._metrics = metrics
        self._operation_id = operation_id
        self.restored: CheckpointState | None = None  # what ``latest`` gave the run
        # Each checkpoint this attempt wrote, with the time the duration histogram observed,
        # for the run's result (what an operator can hold the dashboard's figures against).
        self.written: list[dict[str, float]] = []

    def save(self, state: CheckpointState) -> Path:
        with self._tracer.start_as_current_span("training.checkpoint") as span:
            span.set_attribute("operation.id", self._operation_id)
            span.set_attribute("training.checkpoint.epoch", state.epoch)
            start = time.perf_counter()
            path = super().save(state)
            took = time.perf_counter() - start
            self._metrics.checkpoint_written(took)
            self.written.append({"epoch": state.epoch, "seconds": took})
            span.set_attribute("training.checkpoint.bytes", path.stat().st_size)
            return path

    def latest(self) -> CheckpointState | None:
        if not self._files():
            return None  # a run that starts from scratch: nothing to trace
        with self._tracer.start_as_current_span("training.resume") as span:
            span.set_attribute("operation.id", self._operation_id)
            start = time.perf_counter()
            state = super().latest()
            if state is None:
                span.add_event("no valid checkpoint; starting from epoch 0")
                return None
            self._metrics.checkpoint_restored(time.perf_counter() - start)
            span.set_attribute("training.resumed_from_epoch", state.epoch)
            self.restored = state
            return state
