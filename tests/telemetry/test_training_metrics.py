"""Checkpoint, resume and epoch telemetry of training runs, on fresh registries, with the
spans from the real checkpoint store around a real (small) training run."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from ktrdr.engine.errors import TrainingCancelled
from ktrdr.engine.strategy.schema import TrainingConfig
from ktrdr.engine.training import fit_model
from ktrdr.telemetry.metrics import JobMetrics
from ktrdr.worker.runners.checkpoints import TracedCheckpoints
from tests.support.training_rows import training_rows


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_series_start_at_zero_and_count_exactly(registry: CollectorRegistry) -> None:
    training = JobMetrics(registry).training
    assert value(registry, "ktrdr_training_checkpoints_written_total") == 0
    assert value(registry, "ktrdr_training_checkpoints_restored_total") == 0
    for reason in ("requeued", "resumed"):
        assert value(registry, "ktrdr_training_resumed_runs_total", reason=reason) == 0
    for action in ("write", "read"):
        count = "ktrdr_training_checkpoint_duration_seconds_count"
        assert value(registry, count, action=action) == 0
    assert value(registry, "ktrdr_training_epoch_duration_seconds_count") == 0

    training.checkpoint_written(0.004)
    training.checkpoint_written(0.002)
    training.checkpoint_restored(0.003)
    training.run_resumed("requeued")
    training.epoch_took(0.02)
    training.epoch_took(0.5)
    training.epoch_took(0.03)
    assert value(registry, "ktrdr_training_checkpoints_written_total") == 2
    assert value(registry, "ktrdr_training_checkpoints_restored_total") == 1
    assert value(registry, "ktrdr_training_resumed_runs_total", reason="requeued") == 1
    assert value(registry, "ktrdr_training_resumed_runs_total", reason="resumed") == 0
    total = "ktrdr_training_checkpoint_duration_seconds_sum"
    assert value(registry, total, action="write") == pytest.approx(0.006)
    assert value(registry, total, action="read") == pytest.approx(0.003)
    bucket = "ktrdr_training_epoch_duration_seconds_bucket"
    assert value(registry, bucket, le="0.025") == 1
    assert value(registry, bucket, le="0.05") == 2
    assert value(registry, bucket, le="0.5") == 3
    with pytest.raises(ValueError, match="resume reason must be one of"):
        training.run_resumed("because")


def test_checkpoint_and_resume_spans_and_counts(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = JobMetrics(registry).training
    config = TrainingConfig(epochs=6, early_stopping_patience=0, hidden_layers=[8], batch_size=64)
    data = training_rows()

    def store() -> TracedCheckpoints:
        return TracedCheckpoints(tmp_path, metrics, "op_x", tracer_provider=provider)

    epochs_seen: list[int] = []

    def stop_after_three() -> bool:
        return len(epochs_seen) >= 3

    first = store()
    with pytest.raises(TrainingCancelled):
        fit_model(
            data, config, on_epoch=lambda r: epochs_seen.append(r.epoch),
            should_stop=stop_after_three, checkpoints=first, checkpoint_every=2,
        )  # fmt: skip
    # Epoch 2 (every 2nd) and epoch 3 (before the cancel); no resume span for a fresh start.
    written = [s for s in exporter.get_finished_spans() if s.name == "training.checkpoint"]
    assert [s.attributes["training.checkpoint.epoch"] for s in written] == [2, 3]
    assert all(s.attributes["operation.id"] == "op_x" for s in written)
    # What the run's result lists: the same checkpoints, each with the time observed.
    assert [w["epoch"] for w in first.written] == [2, 3]
    count = "ktrdr_training_checkpoint_duration_seconds_sum"
    assert sum(w["seconds"] for w in first.written) == pytest.approx(
        value(registry, count, action="write")
    )
    assert all(s.attributes["training.checkpoint.bytes"] > 0 for s in written)
    assert not [s for s in exporter.get_finished_spans() if s.name == "training.resume"]
    assert value(registry, "ktrdr_training_checkpoints_written_total") == 2
    assert value(registry, "ktrdr_training_checkpoints_restored_total") == 0

    exporter.clear()
    resumed = store()
    fit_model(data, config, checkpoints=resumed, checkpoint_every=2)
    [resume] = [s for s in exporter.get_finished_spans() if s.name == "training.resume"]
    assert resume.attributes["training.resumed_from_epoch"] == 3
    assert resumed.restored is not None and [h["epoch"] for h in resumed.restored.history] == [
        1, 2, 3,
    ]  # fmt: skip
    written = [s for s in exporter.get_finished_spans() if s.name == "training.checkpoint"]
    assert [s.attributes["training.checkpoint.epoch"] for s in written] == [4, 6]
    assert value(registry, "ktrdr_training_checkpoints_written_total") == 4
    assert value(registry, "ktrdr_training_checkpoints_restored_total") == 1
    count = "ktrdr_training_checkpoint_duration_seconds_count"
    assert value(registry, count, action="write") == 4
    assert value(registry, count, action="read") == 1
