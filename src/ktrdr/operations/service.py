"""Operation rules: create, progress, report, cancel, re-queue. No HTTP in here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from ktrdr.artifacts import ArtifactCorrupt, ArtifactNotFound, ArtifactStore
from ktrdr.jobs.specs import ParamsError, get_spec, params_hash, validate_params
from ktrdr.operations.catalog import require_bars, resolve_model
from ktrdr.operations.curve import EpochMetrics, TrainingCurve, build_curve
from ktrdr.operations.history import OperationEvent, completed_per_worker
from ktrdr.operations.model import (
    CAMPAIGN_TYPES,
    OperationStatus,
    OperationType,
    Outcome,
    utcnow,
)
from ktrdr.operations.results import history_rows
from ktrdr.operations.schemas import OperationPublic, OperationSummary, Progress
from ktrdr.operations.store import QueuedOperation, Store, Transition

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ktrdr.operations")


class LifecycleEvents(Protocol):
    """Hooks for lifecycle metrics; implemented by ktrdr.telemetry.metrics.PlatformMetrics.

    Called only by the backend, so every lifecycle event is counted exactly once.
    """

    def operation_finished(
        self,
        op_type: str,
        status: str,
        duration_s: float | None,
        trace_id: str | None,
        *,
        strategy: str | None = None,
    ) -> None: ...

    def worker_registered(self, worker_id: str, kinds: list[str]) -> None: ...

    def operation_dispatched(
        self, op_type: str, worker_id: str, queue_wait_s: float, trace_id: str | None
    ) -> None: ...

    def operation_requeued(self, op_type: str) -> None: ...

    def worker_lost(self, kinds: list[str]) -> None: ...


class NoLifecycleEvents:
    def operation_finished(
        self,
        op_type: str,
        status: str,
        duration_s: float | None,
        trace_id: str | None,
        *,
        strategy: str | None = None,
    ) -> None:
        pass

    def worker_registered(self, worker_id: str, kinds: list[str]) -> None:
        pass

    def operation_dispatched(
        self, op_type: str, worker_id: str, queue_wait_s: float, trace_id: str | None
    ) -> None:
        pass

    def operation_requeued(self, op_type: str) -> None:
        pass

    def worker_lost(self, kinds: list[str]) -> None:
        pass


@dataclass(frozen=True)
class CurrentTrace:
    trace_id: str | None
    traceparent: str | None


def current_trace() -> CurrentTrace:
    """The active span's ids, to store on a new operation (one trace per operation)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return CurrentTrace(None, None)
    trace_id = f"{ctx.trace_id:032x}"
    flags = f"{int(ctx.trace_flags):02x}"
    return CurrentTrace(trace_id, f"00-{trace_id}-{ctx.span_id:016x}-{flags}")


def _in_operation_trace(op: OperationPublic) -> tuple[Any, list[trace.Link]]:
    """Parent context and links that put a span into ``op``'s own trace.

    Inside that trace already (a worker's report is sent within its job span): the
    current span. Elsewhere (a user's cancel, a liveness check, another trace): the
    operation's root, linked to the current span so each trace leads to the other.
    """
    current = trace.get_current_span().get_span_context()
    if not op.traceparent or (current.is_valid and f"{current.trace_id:032x}" == op.trace_id):
        return None, []
    parent = TraceContextTextMapPropagator().extract({"traceparent": op.traceparent})
    if not current.is_valid:
        return parent, []
    trace.get_current_span().set_attribute("operation.trace_id", op.trace_id or "")
    return parent, [trace.Link(current, {"link.reason": "state change requested here"})]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class OperationService:
    def __init__(
        self,
        store: Store,
        *,
        max_attempts: int,
        events: LifecycleEvents | None = None,
        on_queue_change: Callable[[], None] = lambda: None,
        on_campaign_change: Callable[[], None] = lambda: None,
        on_end: Callable[[OperationPublic], None] = lambda _op: None,
        clock: Callable[[], datetime] = utcnow,
        artifacts: ArtifactStore | None = None,
    ):
        self.store = store
        # Where uploaded files are (checked at submission); None: uploads are refused.
        self.artifacts = artifacts
        self.max_attempts = max_attempts
        self.events: LifecycleEvents = events or NoLifecycleEvents()
        # Wakes the dispatcher when something became pending or a worker became free.
        self.on_queue_change = on_queue_change
        # Wakes the campaign driver: only a campaign's or a chunk's own change concerns it
        # (it polls anyway), so a burst of plain operations does not run its queries.
        self.on_campaign_change = on_campaign_change
        # Given the final record of every operation that ended (long-poll waiters).
        self.on_end = on_end
        self.clock = clock

    def create(
        self,
        op_type: OperationType,
        params: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        parent_id: str | None = None,
        trace_ids: CurrentTrace | None = None,
    ) -> tuple[OperationPublic, bool]:
        """Validate, store as pending and wake the dispatcher. Returns (operation, created).

        ``trace_ids``: the trace to join instead of the active span's (a campaign's chunks
        join their parent's trace)."""
        with tracer.start_as_current_span("operations.create") as span:
            span.set_attribute("operation.type", op_type.value)
            clean = validate_params(op_type, params)
            if get_spec(op_type).needs_data:
                keys = [(s, clean["timeframe"]) for s in clean.get("symbols") or [clean["symbol"]]]
                require_bars(
                    self.store, keys, _parse_time(clean.get("start")),
                    _parse_time(clean.get("end")),
                )  # fmt: skip
            if get_spec(op_type).needs_model:
                clean = resolve_model(self.store, clean)
            check = get_spec(op_type).check_upload
            if check is not None and clean.get("upload_key"):
                try:
                    data = self._uploaded(clean["upload_key"], clean["upload_sha256"])
                    clean = check(clean, data)
                except ValueError as exc:
                    raise ParamsError(str(exc)) from None
            ids = trace_ids or current_trace()
            operation, created = self.store.create_operation(
                op_type=op_type,
                params=clean,
                params_hash=params_hash(op_type, clean),
                max_attempts=self.max_attempts,
                now=self.clock(),
                idempotency_key=idempotency_key,
                trace_id=ids.trace_id,
                traceparent=ids.traceparent,
                parent_id=parent_id,
            )
            span.set_attribute("operation.id", operation.id)
            span.set_attribute("operation.created", created)
            if created:
                with tracer.start_as_current_span("operation.register") as reg:
                    reg.set_attribute("operation.id", operation.id)
                    reg.set_attribute("operation.type", op_type.value)
                    reg.set_attribute("operation.status", operation.status.value)
                log.info("operation created", extra={"operation_id": operation.id})
                self._changed(operation)
            return operation, created

    def _uploaded(self, key: str, sha256: str) -> bytes:
        hint = "upload it again with POST /api/v1/data/uploads (or `ktrdr data import`)"
        if self.artifacts is None:
            raise ParamsError(f"this backend has no artifact store for uploads; {hint}")
        try:
            return self.artifacts.get(key, sha256)
        except ArtifactNotFound:
            raise ParamsError(f"no upload {key!r}: {hint}") from None
        except ArtifactCorrupt as exc:
            raise ParamsError(f"{exc}; {hint}") from None

    def get(self, operation_id: str) -> OperationPublic:
        return self.store.get_operation(operation_id)

    def history(self, operation_id: str) -> list[OperationEvent]:
        """Dispatches, phases and transitions, oldest first (404 for an unknown id)."""
        self.store.get_operation(operation_id)
        return self.store.operation_events(operation_id)

    def completed_per_worker(self) -> dict[str, int]:
        """worker id -> operations it completed (for the console's workers page)."""
        with self.store.session() as session:
            return completed_per_worker(session)

    def list_operations(
        self,
        *,
        statuses: list[OperationStatus],
        types: list[OperationType],
        limit: int,
        offset: int,
        symbol: str | None = None,
        strategy: str | None = None,
        parent_id: str | None = None,
        top_level: bool = False,
    ) -> tuple[list[OperationSummary], int]:
        with tracer.start_as_current_span("operations.list") as span:
            items, total = self.store.list_operations(
                statuses=statuses, types=types, limit=limit, offset=offset,
                symbol=symbol, strategy=strategy, parent_id=parent_id, top_level=top_level,
            )  # fmt: skip
            span.set_attribute("operations.returned", len(items))
            span.set_attribute("operations.total", total)
            return items, total

    def transition(
        self,
        operation_id: str,
        target: OperationStatus,
        *,
        reason: str | None = None,
        worker_id: str | None = None,
        attempt: int | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        progress: Progress | None = None,
    ) -> Transition:
        """Every state change goes through here: span, guard, metrics, dispatcher wake-up.

        The ``operation.state_transition`` span always lands in the operation's own
        trace: a cancel request or a liveness check has a trace of its own, so there the
        span is a child of the operation's root with a link to the request's span.
        """
        attributes: dict[str, AttributeValue] = {
            "operation.id": operation_id,
            "operation.to": target.value,
        }
        if reason:
            attributes["operation.reason"] = reason
        if error:
            attributes["operation.error"] = error[:500]
        started_ns = time.time_ns()
        try:
            change = self.store.transition(
                operation_id,
                target,
                now=self.clock(),
                reason=reason,
                expected_worker_id=worker_id,
                expected_attempt=attempt,
                result=result,
                error=error,
                progress=progress,
            )
        except Exception:
            # Refused (illegal move, stale report, unknown id): recorded with its error in
            # the request's trace, where the refusal is answered.
            with tracer.start_as_current_span(
                "operation.state_transition", attributes=attributes, start_time=started_ns
            ):
                raise
        attributes["operation.from"] = change.previous.value
        attributes["operation.changed"] = change.changed
        parent, links = _in_operation_trace(change.operation)
        span = tracer.start_span(
            "operation.state_transition",
            context=parent,
            links=links,
            attributes=attributes,
            start_time=started_ns,
        )
        with trace.use_span(span, end_on_exit=True):
            if change.changed:
                self._after_transition(change)
        return change

    def claim(
        self, op: QueuedOperation | OperationPublic, worker_id: str
    ) -> OperationPublic | None:
        """pending -> running on ``worker_id``, or None if the store's compare-and-set lost."""
        with tracer.start_as_current_span("operation.state_transition") as span:
            span.set_attribute("operation.id", op.id)
            span.set_attribute("operation.from", OperationStatus.PENDING.value)
            span.set_attribute("operation.to", OperationStatus.RUNNING.value)
            span.set_attribute("worker.id", worker_id)
            claimed = self.store.claim(op.id, worker_id, self.clock())
            span.set_attribute("operation.changed", claimed is not None)
            if claimed is not None:
                log.info(
                    "operation pending -> running on %s", worker_id, extra={"operation_id": op.id}
                )
            return claimed

    def _after_transition(self, change: Transition) -> None:
        op = change.operation
        log.info(
            "operation %s -> %s%s",
            change.previous.value,
            op.status.value,
            f" ({op.status_reason})" if op.status_reason else "",
            extra={"operation_id": op.id},
        )
        if op.status.is_terminal:
            self.on_end(op)
            strategy = op.params.get("strategy")
            self.events.operation_finished(
                op.type.value,
                op.status.value,
                op.duration_s,
                op.trace_id,
                strategy=strategy if isinstance(strategy, str) else None,
            )
        elif op.status == OperationStatus.PENDING:
            self.events.operation_requeued(op.type.value)
        self._changed(op)

    def _changed(self, op: OperationPublic) -> None:
        self.on_queue_change()
        if op.parent_id is not None or op.type in CAMPAIGN_TYPES:
            self.on_campaign_change()

    def cancel(self, operation_id: str, reason: str = "cancelled by user") -> OperationPublic:
        return self.transition(operation_id, OperationStatus.CANCELLED, reason=reason).operation

    def record_progress(
        self,
        operation_id: str,
        worker_id: str,
        progress: Progress,
        epochs: Sequence[EpochMetrics] = (),
    ) -> bool:
        return self.store.record_progress(operation_id, worker_id, progress, self.clock(), epochs)

    def curve(self, op: OperationPublic) -> TrainingCurve:
        """The learning curve of a training operation: from the epochs its workers sent
        while it runs, from its history artifact once it has completed."""
        final = None
        if op.status == OperationStatus.COMPLETED and self.artifacts is not None:
            final = history_rows(op.result or {}, self.artifacts)
        events = self.store.epoch_records(op.id)
        return build_curve(op.id, op.status, events, final=final, attempt=op.attempt)

    def report(
        self,
        operation_id: str,
        *,
        worker_id: str,
        attempt: int,
        outcome: Outcome,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        progress: Progress | None = None,
    ) -> OperationPublic:
        """A worker's final word on its job. Duplicates are no-ops; stale ones are refused."""
        if outcome == Outcome.INTERRUPTED:
            op = self.store.get_operation(operation_id)
            if op.status == OperationStatus.RUNNING and op.worker_id == worker_id:
                return self.requeue_or_fail(
                    op, f"worker {worker_id} stopped before finishing: {error or 'shutdown'}"
                )
            self.store.release_worker(worker_id, operation_id)
            self.on_queue_change()
            return op
        target = OperationStatus(outcome.value)
        released = False
        try:
            change = self.transition(
                operation_id,
                target,
                worker_id=worker_id,
                attempt=attempt,
                result=result,
                error=error,
                progress=progress,
                reason=error if target != OperationStatus.COMPLETED else None,
            )
            # running -> completed/failed freed the worker in the move's own transaction
            # (the owner was checked): no second transaction for the same release.
            released = (
                change.changed
                and change.previous == OperationStatus.RUNNING
                and target != OperationStatus.CANCELLED
            )
        finally:
            # Whatever became of the report, the worker has stopped: it is free again
            # (a cancelled operation kept its worker until this moment).
            if not released and self.store.release_worker(worker_id, operation_id):
                self.on_queue_change()
        return change.operation

    def requeue_or_fail(self, op: OperationPublic, reason: str) -> OperationPublic:
        """After losing the worker: run it again elsewhere, or fail once attempts are spent."""
        if op.attempt < op.max_attempts:
            why = f"{reason}; re-queued for attempt {op.attempt + 1} of {op.max_attempts}"
            return self.transition(op.id, OperationStatus.PENDING, reason=why).operation
        why = f"{reason}; gave up after {op.attempt} of {op.max_attempts} attempts"
        return self.transition(op.id, OperationStatus.FAILED, reason=why, error=why).operation
