"""KTRDR's own Prometheus metrics (prometheus_client), backend side and worker side.

Ownership rule: operation *lifecycle* metrics (finished, dispatched, requeued, workers
lost, queue/active gauges) are counted ONLY by the backend, which sees every state
transition exactly once. Workers record only what happens inside a job (phase durations,
bars simulated, rows downloaded). Counting lifecycle events in both places double-counted
every operation on dashboards without a job filter.

Every class takes ``registry=`` so tests can use a fresh ``CollectorRegistry``. This
module deliberately avoids importing the OpenTelemetry SDK (the CLI imports it and must
start fast); only the light OTel API is used, lazily, for phase spans.

Naming: ``ktrdr_<subsystem>_<name>_<unit>``, ``_total`` only on counters, seconds as unit.
The seed audit's ``ktrdr_workers_registered_total`` is a gauge, so it is exposed as
``ktrdr_workers_registered``; its ``ktrdr_operations_total`` became
``ktrdr_operations_finished_total`` (counted once, at the final status).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ktrdr.telemetry.context import CancelledByRequest
from ktrdr.telemetry.platform_state import (
    PlatformStateCollector,
    PlatformStateReader,
    WorkerState,
)
from ktrdr.telemetry.training_metrics import TrainingMetrics

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.util.types import AttributeValue

logger = logging.getLogger(__name__)

__all__ = [
    "KNOWN_OPERATION_TYPES",
    "JobMetrics",
    "PlatformMetrics",
    "PlatformStateCollector",
    "PlatformStateReader",
    "WorkerState",
]

# Emitting a 0 for each known type keeps idle types on dashboards instead of "no data".
# The same values as ktrdr.operations.model.OperationType (tests/telemetry checks it);
# the API passes the enum's values in, so a new type is covered without editing this.
KNOWN_OPERATION_TYPES: tuple[str, ...] = (
    "backtesting", "training", "data_download", "diagnostic", "sweep", "walkforward",
    "sweep_chunk",
)  # fmt: skip
CAMPAIGN_TYPES: tuple[str, ...] = ("sweep", "walkforward")
FINAL_STATUSES: tuple[str, ...] = ("completed", "failed", "cancelled")
# Operation types whose runs are research: counted by strategy in ktrdr_research_runs_total.
RESEARCH_TYPES: tuple[str, ...] = ("backtesting", "training")
# Strategy label for a strategy sent as YAML text: its name is user input (unbounded), so
# every non-packaged strategy shares this one value; the operation's params say which.
CUSTOM_STRATEGY = "custom"

# Operations run from sub-second diagnostics to multi-hour training runs. Backtests take
# 0.2-10 s here, so the buckets are dense there: a P95 interpolated inside a wide bucket
# (2.5-5 s) read 4.4 s for runs that took at most 2.9 s.
OPERATION_DURATION_BUCKETS_S: tuple[float, ...] = (
    0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300,
    600, 1800, 3600, 7200, 14400, 28800,
)  # fmt: skip
# Waiting for a free worker: instant when idle, up to hours behind a long training run.
QUEUE_WAIT_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200,
)  # fmt: skip
PHASE_DURATION_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400,
)  # fmt: skip

# Span-name prefix per operation type, for the contract's span names (backtest.simulation).
SPAN_PREFIXES: Mapping[str, str] = {
    "backtesting": "backtest",
    "training": "training",
    "data_download": "data_download",
    "diagnostic": "diagnostic",
    "sweep_chunk": "sweep_chunk",
}


def _label(value: object) -> str:
    """Label text for plain strings and str Enums alike.

    ``str()`` of a ``(str, Enum)`` member is ``"Cls.MEMBER"`` on Python 3.11, which
    would silently create a wrong series; use the member's value instead.
    """
    return str(getattr(value, "value", value))


def _kind_set(kinds: Iterable[object]) -> str:
    return ",".join(sorted({_label(k) for k in kinds}))


def _exemplar(trace_id: str | None) -> dict[str, str] | None:
    return {"trace_id": trace_id} if trace_id else None


class PlatformMetrics:
    """Backend-side operation lifecycle metrics.

    Only the backend may call these methods: it observes each transition exactly once.
    Workers must never count lifecycle events (see module docstring).
    """

    def __init__(
        self,
        registry: CollectorRegistry = REGISTRY,
        state: PlatformStateReader | None = None,
        *,
        operation_types: Iterable[str] = KNOWN_OPERATION_TYPES,
        worker_kinds: Iterable[str] = KNOWN_OPERATION_TYPES,
        strategies: Iterable[str] = (),
    ) -> None:
        """``operation_types``/``worker_kinds``: always exported, at 0 when idle;
        ``strategies``: the packaged example names (the research counter's label values)."""
        self.finished = Counter(
            "ktrdr_operations_finished_total",
            "Operations that reached a final status.",
            ["type", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "ktrdr_operation_duration_seconds",
            "Operation run time from start to final status (exemplar: trace_id).",
            ["type", "status"],
            buckets=OPERATION_DURATION_BUCKETS_S,
            registry=registry,
        )
        self.backtests_completed = Counter(
            "ktrdr_backtests_completed_total",
            "Backtests completed successfully.",
            registry=registry,
        )
        self.training_runs = Counter(
            "ktrdr_training_runs_total", "Training runs finished, by final status.", ["status"],
            registry=registry,
        )  # fmt: skip
        self.data_downloads = Counter(
            "ktrdr_data_downloads_total", "Data downloads finished, by final status.", ["status"],
            registry=registry,
        )  # fmt: skip
        self.worker_operations = Counter(
            "ktrdr_worker_operations_total",
            "Operations dispatched to each worker.",
            ["worker_id", "type"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            "ktrdr_operation_queue_wait_seconds",
            "Time from becoming pending (submission or re-queue) to dispatch (exemplar: trace_id).",
            ["type"],
            buckets=QUEUE_WAIT_BUCKETS_S,
            registry=registry,
        )
        self.requeued = Counter(
            "ktrdr_operations_requeued_total", "Operations put back in the queue.", ["type"],
            registry=registry,
        )  # fmt: skip
        # Labelled by the worker's kind set ("backtesting,training"), like the scrape
        # targets' worker_kind: one increment per lost worker, so a sum counts workers.
        self.workers_lost = Counter(
            "ktrdr_workers_lost_total",
            "Workers declared dead, by the worker's kinds (comma-separated).",
            ["kinds"],
            registry=registry,
        )
        self.research_runs = Counter(
            "ktrdr_research_runs_total",
            "Backtests and training runs finished, by packaged strategy (or 'custom') and status.",
            ["type", "strategy", "status"],
            registry=registry,
        )
        self.operation_types = tuple(operation_types)
        self.strategies = tuple(strategies)
        self.state_collector = PlatformStateCollector(
            state, operation_types=self.operation_types, worker_kinds=worker_kinds
        )
        self._campaign_metrics(registry)
        registry.register(self.state_collector)
        self._precreate_series(tuple(worker_kinds))

    def _precreate_series(self, worker_kinds: tuple[str, ...]) -> None:
        # Zero-valued series from the start let increase()/rate() see the first event: a
        # series born at 1 is invisible to them. Histograms too: a type that finishes once
        # in a window would otherwise have a series of one point, and rate() over it (so
        # every quantile panel) stays empty.
        for op_type in self.operation_types:
            self.requeued.labels(op_type)
            self.queue_wait.labels(op_type)
            for status in FINAL_STATUSES:
                self.finished.labels(op_type, status)
                self.duration.labels(op_type, status)
        for status in FINAL_STATUSES:
            self.training_runs.labels(status)
            self.data_downloads.labels(status)
            for op_type in RESEARCH_TYPES:
                for strategy in (*self.strategies, CUSTOM_STRATEGY):
                    self.research_runs.labels(op_type, strategy, status)
        for kind in worker_kinds:
            self.workers_lost.labels(kind)

    def worker_registered(self, worker_id: str, kinds: Iterable[str]) -> None:
        """Create a worker's dispatch and loss series at 0, so its first event counts."""
        kinds = [_label(k) for k in kinds]
        for kind in kinds:
            self.worker_operations.labels(_label(worker_id), kind)
        self.workers_lost.labels(_kind_set(kinds))

    def strategy_label(self, strategy: object) -> str:
        """A packaged example's name, else ``custom``: bounded whatever users send."""
        name = strategy.strip() if isinstance(strategy, str) else ""
        return name if name in self.strategies else CUSTOM_STRATEGY

    def _campaign_metrics(self, registry: CollectorRegistry) -> None:
        # Campaigns: counted by the backend's campaign driver when it stores a chunk.
        self.combinations = Counter(
            "ktrdr_campaign_combinations_evaluated_total",
            "Parameter sets evaluated and stored by campaigns.", ["type"], registry=registry,
        )  # fmt: skip
        self.chunk_duration = Histogram(
            "ktrdr_campaign_chunk_duration_seconds",
            "Run time of one campaign chunk on its worker.", ["type"],
            buckets=OPERATION_DURATION_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.sweeps_completed = Counter(
            "ktrdr_sweeps_completed_total", "Sweeps completed successfully.", registry=registry
        )
        self.walkforwards_completed = Counter(
            "ktrdr_walkforwards_completed_total",
            "Walk-forward analyses completed successfully.", registry=registry,
        )  # fmt: skip
        for campaign_type in CAMPAIGN_TYPES:
            self.combinations.labels(campaign_type)
            self.chunk_duration.labels(campaign_type)

    def chunk_collected(
        self, campaign_type: str, combinations: int, duration_s: float | None
    ) -> None:
        """A campaign stored a chunk's ``combinations`` new results."""
        campaign_type = _label(campaign_type)
        self.combinations.labels(campaign_type).inc(combinations)
        if duration_s is not None and duration_s >= 0:
            self.chunk_duration.labels(campaign_type).observe(duration_s)

    def set_state_reader(self, state: PlatformStateReader | None) -> None:
        """Attach the store once it exists (e.g. in the API lifespan)."""
        self.state_collector.state = state

    def operation_finished(
        self,
        op_type: str,
        status: str,
        duration_s: float | None,
        trace_id: str | None,
        *,
        strategy: str | None = None,
    ) -> None:
        """Count an operation reaching ``status`` (completed/failed/cancelled)."""
        op_type, status = _label(op_type), _label(status)
        if status not in FINAL_STATUSES:
            raise ValueError(
                f"operation_finished() needs a final status, one of {FINAL_STATUSES}; "
                f"got {status!r}"
            )
        exemplar = _exemplar(trace_id)
        self.finished.labels(op_type, status).inc(exemplar=exemplar)
        if duration_s is not None and duration_s >= 0:
            self.duration.labels(op_type, status).observe(duration_s, exemplar=exemplar)
        if op_type == "backtesting" and status == "completed":
            self.backtests_completed.inc(exemplar=exemplar)
        elif op_type == "training":
            self.training_runs.labels(status).inc(exemplar=exemplar)
        elif op_type == "data_download":
            self.data_downloads.labels(status).inc(exemplar=exemplar)
        elif op_type == "sweep" and status == "completed":
            self.sweeps_completed.inc(exemplar=exemplar)
        elif op_type == "walkforward" and status == "completed":
            self.walkforwards_completed.inc(exemplar=exemplar)
        # Only the research types' series exist at 0: a sweep chunk (whose params carry
        # the sweep's strategy too) would make a series born at 1, invisible to increase().
        if strategy is not None and op_type in RESEARCH_TYPES:
            self.research_runs.labels(op_type, self.strategy_label(strategy), status).inc(
                exemplar=exemplar
            )

    def operation_dispatched(
        self, op_type: str, worker_id: str, queue_wait_s: float, trace_id: str | None
    ) -> None:
        """Count a dispatch to ``worker_id`` and how long the operation waited for it."""
        op_type = _label(op_type)
        self.worker_operations.labels(_label(worker_id), op_type).inc()
        self.queue_wait.labels(op_type).observe(
            max(queue_wait_s, 0.0), exemplar=_exemplar(trace_id)
        )

    def operation_requeued(self, op_type: str) -> None:
        """Count an operation sent back to the queue (e.g. its worker died)."""
        self.requeued.labels(_label(op_type)).inc()

    def worker_lost(self, kinds: Iterable[str]) -> None:
        """Count a worker declared dead (missed heartbeats), once, under its kind set."""
        self.workers_lost.labels(_kind_set(kinds)).inc()


class JobMetrics:
    """Worker-side metrics about work inside a job (never lifecycle counts)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.phase_seconds = Histogram(
            "ktrdr_job_phase_duration_seconds",
            "Duration of one phase of a job on a worker (exemplar: trace_id).",
            ["type", "phase"],
            buckets=PHASE_DURATION_BUCKETS_S,
            registry=registry,
        )
        self.bars = Counter(
            "ktrdr_backtest_bars_simulated_total", "Bars simulated by backtests.", registry=registry
        )
        self.rows = Counter(
            "ktrdr_data_rows_downloaded_total",
            "OHLCV rows downloaded, by provider.",
            ["provider"],
            registry=registry,
        )
        self.epochs = Counter(
            "ktrdr_training_epochs_total", "Epochs trained by training runs.", registry=registry
        )
        # The run on this worker (one at a time), so the worker's line is the run's curve.
        self.training_epoch = Gauge(
            "ktrdr_training_epoch",
            "Last epoch finished by the training run on this worker.",
            registry=registry,
        )
        self.validation_loss = Gauge(
            "ktrdr_training_validation_loss",
            "Validation loss after the last epoch of the training run on this worker.",
            registry=registry,
        )
        self.validation_accuracy = Gauge(
            "ktrdr_training_validation_accuracy",
            "Validation accuracy (0-1) after the last epoch of the training run on this worker.",
            registry=registry,
        )
        self.training = TrainingMetrics(registry)

    def declare_phases(self, op_type: str, phases: Iterable[str]) -> None:
        """Create a job type's phase series at zero, so the first run shows on rate()."""
        for phase in phases:
            self.phase_seconds.labels(_label(op_type), _label(phase))

    def phase_duration(
        self, op_type: str, phase: str, seconds: float, trace_id: str | None = None
    ) -> None:
        self.phase_seconds.labels(_label(op_type), _label(phase)).observe(
            seconds, exemplar=_exemplar(trace_id)
        )

    def bars_simulated(self, n: int) -> None:
        self.bars.inc(n)

    def declare_providers(self, providers: Iterable[str]) -> None:
        """Create the rows-downloaded series of every provider at zero."""
        for provider in providers:
            self.rows.labels(_label(provider))

    def rows_downloaded(self, n: int, provider: str = "unknown") -> None:
        self.rows.labels(_label(provider)).inc(n)

    def epochs_trained(self, n: int) -> None:
        self.epochs.inc(n)

    def epoch_finished(self, epoch: int, val_loss: float, val_accuracy: float) -> None:
        """One epoch of the current training run: its number and validation metrics."""
        self.epochs.inc()
        self.training_epoch.set(epoch)
        self.validation_loss.set(val_loss)
        self.validation_accuracy.set(val_accuracy)

    @contextmanager
    def phase(
        self,
        op_type: str,
        phase: str,
        *,
        span_prefix: str | None = None,
        tracer_name: str = "ktrdr.worker",
        attributes: Mapping[str, AttributeValue] | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> Iterator[Span]:
        """Span ``<span_prefix>.<phase>`` plus the phase-duration histogram.

        ``span_prefix`` defaults to :data:`SPAN_PREFIXES` (``backtesting`` ->
        ``backtest``). An exception is recorded on the span (status ERROR) and re-raised;
        a :class:`CancelledByRequest` is a ``cancelled`` event with the status left unset
        (a user's cancel is not an error). The duration is recorded either way.
        ``tracer_provider`` defaults to the global one installed by ``setup_telemetry``
        (tests pass their own).
        """
        # Imported here: the OTel API is cheap but the CLI never needs it for metrics.
        from opentelemetry import trace

        from ktrdr.telemetry.context import operation_id_var

        op_type, phase = _label(op_type), _label(phase)
        prefix = span_prefix or SPAN_PREFIXES.get(op_type, op_type)
        span_attrs: dict[str, AttributeValue] = {
            "operation.type": op_type,
            "phase": phase,
        }
        if (operation_id := operation_id_var.get()) is not None:
            span_attrs["operation.id"] = operation_id
        span_attrs.update(attributes or {})
        tracer = trace.get_tracer(tracer_name, tracer_provider=tracer_provider)
        start = time.perf_counter()
        with tracer.start_as_current_span(
            f"{prefix}.{phase}",
            attributes=span_attrs,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except CancelledByRequest as exc:
                span.add_event("cancelled", {"reason": str(exc)})
                raise
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(
                    trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                )
                raise
            finally:
                ctx = span.get_span_context()
                trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
                self.phase_duration(op_type, phase, time.perf_counter() - start, trace_id)
