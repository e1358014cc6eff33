"""Worker-side metrics of training runs that survive: checkpoints, resumes, epoch times.

Part of JobMetrics (``JobMetrics.training``); the same naming rules as
ktrdr.telemetry.metrics. Every labelled series is created at 0 when the metrics are, so
the first checkpoint or resume of a worker shows on ``increase()``.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

# How a run came to go on from a checkpoint: re-queued after its worker was lost or
# stopped (same operation, next attempt), or resumed by POST /operations/{id}/resume.
RESUME_REASONS: tuple[str, ...] = ("requeued", "resumed")
CHECKPOINT_ACTIONS: tuple[str, ...] = ("write", "read")
# A small model's checkpoint takes milliseconds; a large one on a slow disk seconds.
CHECKPOINT_DURATION_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip
# Epochs from milliseconds (an MLP on a few thousand rows) to an hour (a large LSTM).
EPOCH_DURATION_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip


class TrainingMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.checkpoints_written = Counter(
            "ktrdr_training_checkpoints_written_total",
            "Training checkpoints written (every N epochs and before a cancel or shutdown).",
            registry=registry,
        )
        self.checkpoints_restored = Counter(
            "ktrdr_training_checkpoints_restored_total",
            "Training checkpoints a run went on from.",
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "ktrdr_training_checkpoint_duration_seconds",
            "Time to write (fsync included) or read and verify one training checkpoint.",
            ["action"],
            buckets=CHECKPOINT_DURATION_BUCKETS_S,
            registry=registry,
        )
        self.resumed_runs = Counter(
            "ktrdr_training_resumed_runs_total",
            "Training runs that went on from a checkpoint instead of epoch 0, by reason.",
            ["reason"],
            registry=registry,
        )
        self.epoch_seconds = Histogram(
            "ktrdr_training_epoch_duration_seconds",
            "Wall time of one training epoch (training pass and validation).",
            buckets=EPOCH_DURATION_BUCKETS_S,
            registry=registry,
        )
        for action in CHECKPOINT_ACTIONS:
            self.checkpoint_seconds.labels(action)
        for reason in RESUME_REASONS:
            self.resumed_runs.labels(reason)

    def checkpoint_written(self, seconds: float) -> None:
        self.checkpoints_written.inc()
        self.checkpoint_seconds.labels("write").observe(seconds)

    def checkpoint_restored(self, seconds: float) -> None:
        self.checkpoints_restored.inc()
        self.checkpoint_seconds.labels("read").observe(seconds)

    def run_resumed(self, reason: str) -> None:
        if reason not in RESUME_REASONS:
            raise ValueError(f"resume reason must be one of {RESUME_REASONS}, not {reason!r}")
        self.resumed_runs.labels(reason).inc()

    def epoch_took(self, seconds: float) -> None:
        self.epoch_seconds.observe(seconds)
