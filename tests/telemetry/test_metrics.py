"""PlatformMetrics / JobMetrics on fresh registries."""

from __future__ import annotations

import enum
import logging
import subprocess
import sys
from collections.abc import Mapping, Sequence

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

from ktrdr.operations.model import OperationType
from ktrdr.telemetry.context import CancelledByRequest, operation_id_var
from ktrdr.telemetry.metrics import (
    KNOWN_OPERATION_TYPES,
    JobMetrics,
    PlatformMetrics,
    PlatformStateReader,
    WorkerState,
)
from ktrdr.telemetry.metrics_endpoint import render_metrics

from .conftest import REPO_ROOT, subprocess_env

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class FakeState:
    """Test double of our own PlatformStateReader protocol; tests mutate it between scrapes."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.workers: list[WorkerState] = []
        self.oldest: dict[str, float] = {}
        self.fail = False

    def operation_counts(self) -> Mapping[tuple[str, str], int]:
        if self.fail:
            raise ConnectionError("database is down")
        return self.counts

    def worker_states(self) -> Sequence[WorkerState]:
        return self.workers

    def oldest_queued_age_s(self) -> Mapping[str, float]:
        return self.oldest


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_fake_state_satisfies_protocol() -> None:
    assert isinstance(FakeState(), PlatformStateReader)


def test_lifecycle_counters_count_exactly(registry: CollectorRegistry) -> None:
    metrics = PlatformMetrics(registry)
    for _ in range(3):
        metrics.operation_finished("backtesting", "completed", 12.5, TRACE_ID)
    metrics.operation_finished("backtesting", "failed", 1.0, None)
    metrics.operation_finished("training", "completed", 3600.0, TRACE_ID)
    metrics.operation_finished("training", "cancelled", None, None)
    metrics.operation_finished("data_download", "failed", 2.0, None)

    finished = "ktrdr_operations_finished_total"
    assert value(registry, finished, type="backtesting", status="completed") == 3
    assert value(registry, finished, type="backtesting", status="failed") == 1
    assert value(registry, finished, type="backtesting", status="cancelled") == 0
    assert value(registry, "ktrdr_backtests_completed_total") == 3
    assert value(registry, "ktrdr_training_runs_total", status="completed") == 1
    assert value(registry, "ktrdr_training_runs_total", status="cancelled") == 1
    assert value(registry, "ktrdr_data_downloads_total", status="failed") == 1
    duration = "ktrdr_operation_duration_seconds_count"
    assert value(registry, duration, type="backtesting", status="completed") == 3
    # No duration known (never started): counted, but not observed in the histogram.
    assert value(registry, duration, type="training", status="cancelled") == 0
    assert value(
        registry, "ktrdr_operation_duration_seconds_sum", type="backtesting", status="completed"
    ) == pytest.approx(37.5)


def test_counters_start_at_zero_for_known_types(registry: CollectorRegistry) -> None:
    PlatformMetrics(registry)
    for op_type in KNOWN_OPERATION_TYPES:
        for status in ("completed", "failed", "cancelled"):
            assert (
                value(registry, "ktrdr_operations_finished_total", type=op_type, status=status) == 0
            )
            assert (
                value(registry, "ktrdr_operation_duration_seconds_count", type=op_type,
                      status=status) == 0
            )  # fmt: skip
        assert value(registry, "ktrdr_operation_queue_wait_seconds_count", type=op_type) == 0


def test_declared_phases_start_at_zero(registry: CollectorRegistry) -> None:
    metrics = JobMetrics(registry)
    metrics.declare_phases("backtesting", ["data_loading", "simulation"])
    count = "ktrdr_job_phase_duration_seconds_count"
    assert value(registry, count, type="backtesting", phase="simulation") == 0
    assert value(registry, count, type="backtesting", phase="data_loading") == 0
    assert value(registry, count, type="backtesting", phase="results") is None


def test_duration_buckets_span_subsecond_to_hours(registry: CollectorRegistry) -> None:
    metrics = PlatformMetrics(registry)
    metrics.operation_finished("training", "completed", 5 * 3600.0, None)
    bucket = "ktrdr_operation_duration_seconds_bucket"
    labels = {"type": "training", "status": "completed"}
    assert value(registry, bucket, le="0.1", **labels) == 0
    assert value(registry, bucket, le="3600.0", **labels) == 0
    assert value(registry, bucket, le="28800.0", **labels) == 1


def test_final_status_required(registry: CollectorRegistry) -> None:
    metrics = PlatformMetrics(registry)
    with pytest.raises(ValueError, match="final status"):
        metrics.operation_finished("backtesting", "running", 1.0, None)


def test_str_enum_members_label_by_value(registry: CollectorRegistry) -> None:
    class Status(str, enum.Enum):  # noqa: UP042 - the case str() gets wrong
        COMPLETED = "completed"

    class OpType(str, enum.Enum):  # noqa: UP042
        BACKTESTING = "backtesting"

    metrics = PlatformMetrics(registry)
    metrics.operation_finished(OpType.BACKTESTING, Status.COMPLETED, 1.0, None)
    assert (
        value(registry, "ktrdr_operations_finished_total", type="backtesting", status="completed")
        == 1
    )


def test_dispatch_requeue_and_worker_loss(registry: CollectorRegistry) -> None:
    metrics = PlatformMetrics(registry)
    metrics.operation_dispatched("backtesting", "bt-1", 0.2, TRACE_ID)
    metrics.operation_dispatched("backtesting", "bt-1", 3.0, None)
    metrics.operation_dispatched("training", "tr-1", 0.0, None)
    metrics.operation_requeued("backtesting")
    metrics.worker_lost(["backtesting"])
    metrics.worker_lost(["training", "backtesting"])

    ops = "ktrdr_worker_operations_total"
    assert value(registry, ops, worker_id="bt-1", type="backtesting") == 2
    assert value(registry, ops, worker_id="tr-1", type="training") == 1
    assert value(registry, "ktrdr_operation_queue_wait_seconds_count", type="backtesting") == 2
    assert value(
        registry, "ktrdr_operation_queue_wait_seconds_sum", type="backtesting"
    ) == pytest.approx(3.2)
    assert value(registry, "ktrdr_operations_requeued_total", type="backtesting") == 1
    assert value(registry, "ktrdr_workers_lost_total", kinds="backtesting") == 1
    assert value(registry, "ktrdr_workers_lost_total", kinds="backtesting,training") == 1


def test_duration_exemplar_carries_trace_id_in_openmetrics(registry: CollectorRegistry) -> None:
    metrics = PlatformMetrics(registry)
    metrics.operation_finished("backtesting", "completed", 7.0, TRACE_ID)
    metrics.operation_dispatched("backtesting", "bt-1", 0.3, TRACE_ID)

    body, content_type = render_metrics("application/openmetrics-text; version=1.0.0", registry)
    text = body.decode()
    assert content_type.startswith("application/openmetrics-text")
    exemplar = f'# {{trace_id="{TRACE_ID}"}} 7.0'
    duration_lines = [
        line
        for line in text.splitlines()
        if line.startswith("ktrdr_operation_duration_seconds_bucket") and exemplar in line
    ]
    # Exactly the bucket the observation fell into holds the exemplar.
    assert len(duration_lines) == 1
    assert 'le="7.5"' in duration_lines[0]
    assert f'trace_id="{TRACE_ID}"' in next(
        line
        for line in text.splitlines()
        if line.startswith("ktrdr_operation_queue_wait_seconds") and "#" in line
    )

    plain, plain_type = render_metrics(None, registry)
    assert plain_type.startswith("text/plain")
    assert TRACE_ID not in plain.decode()


def test_gauges_read_state_at_scrape_time(registry: CollectorRegistry) -> None:
    state = FakeState()
    PlatformMetrics(registry, state, worker_kinds=["backtesting", "training"])

    # Idle platform: a zero for every known type and kind, no per-worker series.
    for op_type in KNOWN_OPERATION_TYPES:
        assert value(registry, "ktrdr_operations_active", type=op_type) == 0
        assert value(registry, "ktrdr_operations_queued", type=op_type) == 0
    assert value(registry, "ktrdr_workers_registered", kind="training") == 0
    assert value(registry, "ktrdr_workers_available", kind="backtesting") == 0

    state.counts = {
        ("backtesting", "running"): 2,
        ("backtesting", "pending"): 5,
        ("training", "pending"): 1,
    }
    state.workers = [
        WorkerState("bt-1", "backtesting", alive=True, busy=True),
        WorkerState("bt-2", "backtesting", alive=True, busy=True),
        WorkerState("bt-3", "backtesting", alive=True, busy=False),
        WorkerState("bt-4", "backtesting", alive=False, busy=True),
        WorkerState("tr-1", "training", alive=True, busy=False),
    ]
    assert value(registry, "ktrdr_operations_active", type="backtesting") == 2
    assert value(registry, "ktrdr_operations_queued", type="backtesting") == 5
    assert value(registry, "ktrdr_operations_queued", type="training") == 1
    assert value(registry, "ktrdr_operations_active", type="diagnostic") == 0
    assert value(registry, "ktrdr_workers_registered", kind="backtesting") == 3
    assert value(registry, "ktrdr_workers_available", kind="backtesting") == 1
    assert value(registry, "ktrdr_workers_available", kind="training") == 1
    assert value(registry, "ktrdr_worker_busy", worker_id="bt-1", kind="backtesting") == 1
    assert value(registry, "ktrdr_worker_busy", worker_id="bt-3", kind="backtesting") == 0
    # Dead workers leave the per-worker gauge (no ghost series).
    assert value(registry, "ktrdr_worker_busy", worker_id="bt-4", kind="backtesting") is None

    # The state changes: the next scrape follows, nothing to inc/dec.
    state.counts = {}
    state.workers = [WorkerState("bt-1", "backtesting", alive=True, busy=False)]
    assert value(registry, "ktrdr_operations_active", type="backtesting") == 0
    assert value(registry, "ktrdr_workers_registered", kind="backtesting") == 1
    assert value(registry, "ktrdr_workers_available", kind="backtesting") == 1
    assert value(registry, "ktrdr_worker_busy", worker_id="bt-2", kind="backtesting") is None


def test_unreadable_state_skips_gauges_but_scrape_succeeds(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    state = FakeState()
    metrics = PlatformMetrics(registry, state)
    metrics.operation_finished("backtesting", "completed", 1.0, None)
    state.fail = True

    with caplog.at_level(logging.WARNING, logger="ktrdr.telemetry"):
        body, _ = render_metrics(None, registry)
    text = body.decode()
    assert "ktrdr_operations_finished_total" in text
    assert "ktrdr_operations_active{" not in text
    assert "database is down" in caplog.text


def test_state_reader_attached_later(registry: CollectorRegistry) -> None:
    metrics = PlatformMetrics(registry)
    assert value(registry, "ktrdr_operations_active", type="backtesting") is None
    state = FakeState()
    state.counts = {("backtesting", "running"): 1}
    metrics.set_state_reader(state)
    assert value(registry, "ktrdr_operations_active", type="backtesting") == 1


def test_registering_does_not_read_state(registry: CollectorRegistry) -> None:
    class Exploding(FakeState):
        def operation_counts(self) -> Mapping[tuple[str, str], int]:
            raise AssertionError("read at registration")

    PlatformMetrics(registry, Exploding())


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    # A private provider: the process-wide one must stay free for other tests.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_phase_records_span_and_duration(
    registry: CollectorRegistry, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    jobs = JobMetrics(registry)
    token = operation_id_var.set("op_123")
    try:
        with provider.get_tracer("t").start_as_current_span("job") as parent:
            with jobs.phase("backtesting", "simulation", tracer_provider=provider) as span:
                span.set_attribute("bars", 10)
            with jobs.phase(
                "data_download", "fetch", span_prefix="download", tracer_provider=provider
            ):
                pass
    finally:
        operation_id_var.reset(token)

    by_name = {s.name: s for s in exporter.get_finished_spans()}
    simulation = by_name["backtest.simulation"]
    assert simulation.parent is not None
    assert simulation.parent.span_id == parent.get_span_context().span_id
    assert simulation.attributes is not None
    assert simulation.attributes["operation.id"] == "op_123"
    assert simulation.attributes["phase"] == "simulation"
    assert simulation.attributes["bars"] == 10
    assert "download.fetch" in by_name
    count = "ktrdr_job_phase_duration_seconds_count"
    assert value(registry, count, type="backtesting", phase="simulation") == 1
    assert value(registry, count, type="data_download", phase="fetch") == 1
    om, _ = render_metrics("application/openmetrics-text; version=1.0.0", registry)
    trace_id = format(simulation.context.trace_id, "032x")
    assert f'trace_id="{trace_id}"' in om.decode()


def test_phase_failure_marks_span_error_and_still_records(
    registry: CollectorRegistry, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    jobs = JobMetrics(registry)
    with pytest.raises(RuntimeError, match="no data"):  # noqa: SIM117
        with jobs.phase("backtesting", "data_loading", tracer_provider=provider):
            raise RuntimeError("no data")

    (span,) = exporter.get_finished_spans()
    assert span.name == "backtest.data_loading"
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert (
        value(
            registry,
            "ktrdr_job_phase_duration_seconds_count",
            type="backtesting",
            phase="data_loading",
        )
        == 1
    )


def test_work_counters(registry: CollectorRegistry) -> None:
    jobs = JobMetrics(registry)
    jobs.bars_simulated(4000)
    jobs.bars_simulated(250)
    jobs.declare_providers(["synthetic", "csv"])
    jobs.rows_downloaded(10, "synthetic")
    jobs.phase_duration("training", "epoch", 2.0)
    jobs.epoch_finished(3, val_loss=0.625, val_accuracy=0.5)
    assert value(registry, "ktrdr_backtest_bars_simulated_total") == 4250
    assert value(registry, "ktrdr_data_rows_downloaded_total", provider="synthetic") == 10
    assert value(registry, "ktrdr_data_rows_downloaded_total", provider="csv") == 0
    assert value(registry, "ktrdr_training_epochs_total") == 1
    assert value(registry, "ktrdr_training_epoch") == 3
    assert value(registry, "ktrdr_training_validation_loss") == 0.625
    assert value(registry, "ktrdr_training_validation_accuracy") == 0.5
    assert (
        value(registry, "ktrdr_job_phase_duration_seconds_count", type="training", phase="epoch")
        == 1
    )


def test_metric_modules_do_not_import_otel_sdk() -> None:
    code = (
        "import sys, ktrdr.telemetry.metrics, ktrdr.telemetry.metrics_endpoint, "
        "ktrdr.telemetry.logs, ktrdr.telemetry.context\n"
        "sdk = [m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'opentelemetry.instrumentation', 'opentelemetry.exporter'))]\n"
        "assert not sdk, sdk"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_phase_cancelled_is_an_event_not_an_error(
    registry: CollectorRegistry, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    jobs = JobMetrics(registry)
    with pytest.raises(CancelledByRequest):  # noqa: SIM117
        with jobs.phase("training", "training", tracer_provider=provider):
            raise CancelledByRequest("cancelled by user")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("cancelled", {"reason": "cancelled by user"})
    ]


def test_every_known_series_starts_at_zero(registry: CollectorRegistry) -> None:
    """Counters that dashboards count exist at 0 before their first event (increase()
    cannot see the first increment of a series born at 1)."""
    metrics = PlatformMetrics(registry, strategies=["sma_crossover"])
    assert value(registry, "ktrdr_workers_lost_total", kinds="training") == 0
    assert (
        value(registry, "ktrdr_worker_operations_total", worker_id="w1", type="diagnostic") is None
    )
    metrics.worker_registered("w1", ["diagnostic", "backtesting"])
    assert value(registry, "ktrdr_worker_operations_total", worker_id="w1", type="diagnostic") == 0
    assert value(registry, "ktrdr_workers_lost_total", kinds="backtesting,diagnostic") == 0
    research = "ktrdr_research_runs_total"
    for strategy in ("sma_crossover", "custom"):
        labels = {"type": "backtesting", "strategy": strategy, "status": "failed"}
        assert value(registry, research, **labels) == 0
    metrics.operation_finished("backtesting", "failed", 1.0, None, strategy="sma_crossover")
    # A strategy sent as YAML text (user input): one bounded "custom" value.
    metrics.operation_finished("backtesting", "failed", 1.0, None, strategy="name: x\n...")
    metrics.operation_finished("backtesting", "failed", 1.0, None, strategy="rm -rf")
    assert (
        value(registry, research, type="backtesting", strategy="sma_crossover", status="failed")
        == 1
    )
    assert value(registry, research, type="backtesting", strategy="custom", status="failed") == 2
    # A sweep chunk carries its sweep's strategy, but is not a research run of its own.
    metrics.operation_finished("sweep_chunk", "completed", 1.0, None, strategy="name: x\n")
    assert (
        value(registry, research, type="sweep_chunk", strategy="custom", status="completed") is None
    )
    body, _ = render_metrics(None, registry)
    assert "rm -rf" not in body.decode()


def test_worker_state_set_and_oldest_queued_age(registry: CollectorRegistry) -> None:
    state = FakeState()
    PlatformMetrics(registry, state)
    assert value(registry, "ktrdr_operations_oldest_queued_age_seconds", type="training") == 0
    state.oldest = {"training": 42.5}
    state.workers = [
        WorkerState("w1", "training", alive=False, busy=False, state="lost"),
        WorkerState("w2", "backtesting", alive=True, busy=False, state="online"),
    ]
    assert value(registry, "ktrdr_operations_oldest_queued_age_seconds", type="training") == 42.5
    got = {
        (worker, s): value(registry, "ktrdr_worker_state", worker_id=worker, state=s)
        for worker in ("w1", "w2")
        for s in ("online", "draining", "lost", "offline")
    }
    assert got == {
        ("w1", "online"): 0, ("w1", "draining"): 0, ("w1", "lost"): 1, ("w1", "offline"): 0,
        ("w2", "online"): 1, ("w2", "draining"): 0, ("w2", "lost"): 0, ("w2", "offline"): 0,
    }  # fmt: skip
    # The lost worker's kind has no alive worker: it reads 0, it does not disappear.
    assert value(registry, "ktrdr_workers_registered", kind="training") == 0
    assert value(registry, "ktrdr_workers_registered", kind="backtesting") == 1


def test_known_types_are_the_operation_types() -> None:
    assert set(KNOWN_OPERATION_TYPES) == {t.value for t in OperationType}
