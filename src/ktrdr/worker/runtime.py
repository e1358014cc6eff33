"""The worker's engine room: one job slot, a job thread, and a reporter thread.

The reporter thread owns every call to the backend: it (re-)registers, heartbeats,
pushes progress and delivers final reports, retrying until the backend answers — so a
backend restart loses nothing and a report is never dropped on a network blip.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ktrdr import __version__
from ktrdr.artifacts import ArtifactStore
from ktrdr.bounds import ERROR_MAX
from ktrdr.jobs.specs import get_spec
from ktrdr.operations.curve import MAX_EPOCHS_PER_REPORT, EpochMetrics
from ktrdr.operations.model import OperationType, Outcome
from ktrdr.operations.schemas import Progress
from ktrdr.telemetry.context import operation_id_var
from ktrdr.telemetry.metrics import JobMetrics
from ktrdr.worker.backend_client import (
    BackendClient,
    NotRegistered,
    ReportRefused,
    StaleOperation,
)
from ktrdr.worker.job import JobCancelled, JobContext
from ktrdr.worker.runners import runner_for

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ktrdr.worker")
_propagator = TraceContextTextMapPropagator()
_PROGRESS_MIN_INTERVAL_S = 0.25


class WorkerBusy(Exception):
    pass


class ShuttingDown(Exception):
    pass


@dataclass
class StartRequest:
    operation_id: str
    type: OperationType
    params: dict[str, Any]
    attempt: int
    traceparent: str | None = None


@dataclass
class FinalReport:
    operation_id: str
    attempt: int
    outcome: Outcome
    result: dict[str, Any] | None
    error: str | None
    progress: Progress | None = None
    # The job's span: the report is sent inside it, so the completion (and its state
    # transition on the backend) lands in the operation's own trace.
    span_context: trace.SpanContext | None = None


class WorkerRuntime:
    def __init__(
        self,
        *,
        backend: BackendClient,
        kinds: list[OperationType],
        url: str,
        heartbeat_interval_s: float,
        data_home: str,
        metrics: JobMetrics,
        threads: int = 1,
        artifacts: ArtifactStore | None = None,
    ):
        self.backend = backend
        self.kinds = kinds
        self.url = url
        self.heartbeat_interval_s = heartbeat_interval_s
        self.data_home = data_home
        self.metrics = metrics
        self.threads = threads
        self.artifacts = artifacts
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._job: JobContext | None = None
        # The running job's span: lines the reporter thread logs about the job carry it.
        self._job_span: trace.SpanContext | None = None
        self._job_thread: threading.Thread | None = None
        self._outbox: deque[FinalReport] = deque()
        # One sender of final reports at a time (the reporter thread or a finished job's).
        self._delivering = threading.Lock()
        self._progress_dirty = False
        # Epochs not yet delivered, with their operation: sent with the next progress push.
        self._epochs: list[tuple[str, EpochMetrics]] = []
        self._registered = False
        self._stopping = threading.Event()
        self._accepting = True
        self._reporter = threading.Thread(target=self._report_loop, name="reporter", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._reporter.start()

    @property
    def registered(self) -> bool:
        return self._registered

    def current_operation_id(self) -> str | None:
        """The running job, or else the oldest one whose final report is not delivered."""
        with self._lock:
            return self._current_locked()

    def _current_locked(self) -> str | None:
        if self._job is not None:
            return self._job.operation_id
        return self._outbox[0].operation_id if self._outbox else None

    def shutdown(self, grace_s: float) -> None:
        """Stop taking jobs; let the current one finish within `grace_s`, else interrupt it
        (the backend re-queues it); deliver reports; deregister."""
        with self._lock:
            self._accepting = False
            thread = self._job_thread
        try:
            # Say so first, so the dispatcher sends nothing more while the job ends.
            self._heartbeat()
        except (httpx.HTTPError, NotRegistered) as exc:
            log.info("could not announce the shutdown: %s", exc)
        if thread is not None:
            thread.join(grace_s)
            if thread.is_alive():
                self.cancel_current(reason="worker shutting down", interrupted=True)
                thread.join(10.0)
        deadline = time.monotonic() + 5.0
        while self._outbox and time.monotonic() < deadline:
            with self._wake:
                self._wake.notify_all()
            time.sleep(0.05)
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        self._reporter.join(2.0)
        try:
            self.backend.deregister()
        except httpx.HTTPError as exc:
            log.info("could not deregister (the backend will notice the silence): %s", exc)
        self.backend.close()

    # ----------------------------------------------------------------------- jobs

    def start_job(self, request: StartRequest) -> bool:
        """Accept a job; False if it is the one already running (a repeated dispatch)."""
        runner = runner_for(request.type)
        if runner is None or get_spec(request.type).worker_kind not in self.kinds:
            raise ValueError(f"this worker does not run {request.type.value} operations")
        with self._lock:
            if not self._accepting:
                raise ShuttingDown("worker is shutting down")
            if self._job is not None:
                if self._job.operation_id == request.operation_id:
                    return False
                raise WorkerBusy(f"worker is busy with {self._job.operation_id}")
            ctx = JobContext(
                operation_id=request.operation_id,
                op_type=request.type,
                params=request.params,
                attempt=request.attempt,
                worker_id=self.backend.worker_id,
                metrics=self.metrics,
                data_home=self.data_home,
                on_progress=self._on_progress,
                threads=self.threads,
                artifacts=self.artifacts,
            )
            ctx.on_epoch = lambda metrics: self._on_epoch(request.operation_id, metrics)
            self._job = ctx
            self._job_thread = threading.Thread(
                target=self._run_job,
                args=(ctx, request.traceparent),
                name=f"job-{request.operation_id}",
                daemon=True,
            )
            self._job_thread.start()
        return True

    def cancel_current(self, operation_id: str | None = None, *, reason: str = "cancelled",
                       interrupted: bool = False) -> bool:  # fmt: skip
        with self._lock:
            job = self._job
            if job is None or (operation_id is not None and job.operation_id != operation_id):
                return False
            job.cancel_reason = reason
            job.interrupted = interrupted
            job.cancel_event.set()
            return True

    def _run_job(self, ctx: JobContext, traceparent: str | None) -> None:
        parent = _propagator.extract({"traceparent": traceparent} if traceparent else {})
        token = otel_context.attach(parent)
        op_token = operation_id_var.set(ctx.operation_id)
        runner = runner_for(ctx.op_type)
        assert runner is not None  # checked in start_job
        result: dict[str, Any] | None = None
        error: str | None = None
        span_context: trace.SpanContext | None = None
        try:
            with tracer.start_as_current_span("worker.job") as span:
                span_context = span.get_span_context()
                self._job_span = span_context
                span.set_attribute("operation.id", ctx.operation_id)
                span.set_attribute("operation.type", ctx.op_type.value)
                span.set_attribute("operation.attempt", ctx.attempt)
                span.set_attribute("worker.id", self.backend.worker_id)
                try:
                    result = runner(ctx)
                    outcome = Outcome.COMPLETED
                except JobCancelled as exc:
                    # Asked to stop: an event, not an error (the status stays unset).
                    outcome = Outcome.INTERRUPTED if ctx.interrupted else Outcome.CANCELLED
                    error = str(exc)
                    span.add_event("cancelled", {"reason": error})
                except Exception as exc:
                    # The user-facing error names what is missing; where it was looked
                    # for (a directory of this machine) goes to this log only.
                    log.exception(
                        "job failed",
                        extra={"operation_id": ctx.operation_id, "where": _where(exc)},
                    )
                    span.record_exception(exc)
                    span.set_status(trace.StatusCode.ERROR, str(exc))
                    outcome = Outcome.FAILED
                    error = _summarise(exc)
                span.set_attribute("operation.outcome", outcome.value)
                # Inside the span and with the operation id set: the line leads to the trace.
                log.info("job ended: %s", outcome.value, extra={"operation_id": ctx.operation_id})
        finally:
            operation_id_var.reset(op_token)
            otel_context.detach(token)
        with self._wake:
            self._outbox.append(
                FinalReport(
                    ctx.operation_id,
                    ctx.attempt,
                    outcome,
                    result,
                    error,
                    ctx.last_progress,
                    span_context,
                )
            )
            self._job = None
            self._job_span = None
            self._job_thread = None
        self._deliver_now()

    def _deliver_now(self) -> None:
        """The final report, sent at once from the job's own thread: the operation ends
        a thread hand-off sooner. What cannot be delivered now stays in the outbox, and
        the reporter thread retries it (registering first if the backend asks)."""
        try:
            if self._registered:
                with self._delivering:
                    self._deliver_reports()
        except Exception as exc:  # the reporter thread owns every retry
            log.info("report not delivered at once (%s); the reporter retries", exc)
        if self._outbox:
            with self._wake:
                self._wake.notify_all()

    def _on_progress(self, _progress: Progress) -> None:
        # No wake-up: the reporter looks at least every _PROGRESS_MIN_INTERVAL_S, the most
        # often it pushes progress; waking it here cost the job a thread switch per update.
        self._progress_dirty = True

    def _on_epoch(self, operation_id: str, metrics: EpochMetrics) -> None:
        with self._wake:
            self._epochs.append((operation_id, metrics))
            self._progress_dirty = True
            self._wake.notify_all()

    # ------------------------------------------------------------------- reporting

    def _report_loop(self) -> None:
        backoff_s = 0.2
        next_beat = 0.0
        last_progress_push = 0.0
        while not self._stopping.is_set():
            try:
                if not self._registered:
                    self._register()
                    next_beat = time.monotonic() + self.heartbeat_interval_s
                with self._delivering:  # not while a job thread delivers its own report
                    self._deliver_reports()
                now = time.monotonic()
                if self._progress_dirty and now - last_progress_push >= _PROGRESS_MIN_INTERVAL_S:
                    self._push_progress()
                    last_progress_push = now
                if now >= next_beat:
                    self._heartbeat()
                    next_beat = now + self.heartbeat_interval_s
                backoff_s = 0.2
                with self._wake:
                    timeout = max(0.0, min(next_beat - time.monotonic(), _PROGRESS_MIN_INTERVAL_S))
                    if not (self._outbox or self._stopping.is_set()):
                        self._wake.wait(timeout)
            except NotRegistered:
                log.info("backend does not know this worker; registering again")
                self._registered = False
            except httpx.HTTPError as exc:
                log.warning("backend unreachable (%s); retrying in %.1fs", exc, backoff_s)
                self._registered = self._registered and not isinstance(exc, httpx.ConnectError)
                self._stopping.wait(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)
            except Exception:
                log.exception("reporter error; retrying")
                self._stopping.wait(backoff_s)

    def _register(self) -> None:
        with self._lock:
            current = self._current_locked()
            progress = self._job.last_progress if self._job else None
        reply = self.backend.register(
            kinds=[k.value for k in self.kinds],
            url=self.url,
            version=__version__,
            current_operation_id=current,
            progress=progress,
        )
        self._registered = True
        log.info("registered with the backend as %s (%s)", self.backend.worker_id, self.url)
        self._apply(reply.cancel_operation_ids)

    def _heartbeat(self) -> None:
        with self._lock:
            current = self._current_locked()
            progress = self._job.last_progress if self._job else None
        reply = self.backend.heartbeat(current, progress, draining=not self._accepting)
        self._apply(reply.cancel_operation_ids)

    def _push_progress(self) -> None:
        with self._lock:
            self._progress_dirty = False
            job = self._job
        if job is None:
            return
        self._send_progress(job.operation_id, job.last_progress)

    def _send_progress(self, operation_id: str, progress: Progress) -> None:
        """Progress with the operation's undelivered epochs; they are dropped once the
        backend took them or refused them as no longer this worker's, kept on a network
        error (the reporter loop retries)."""
        with self._lock:
            epochs = [m for op, m in self._epochs if op == operation_id][:MAX_EPOCHS_PER_REPORT]
        try:
            self.backend.progress(operation_id, progress, epochs)
        except httpx.HTTPStatusError as exc:
            log.debug("progress refused: %s", exc)
        with self._lock:
            sent = {id(m) for m in epochs}
            self._epochs = [(op, m) for op, m in self._epochs if id(m) not in sent]

    def _deliver_reports(self) -> None:
        while True:
            with self._lock:
                if not self._outbox:
                    return
                report = self._outbox[0]
                unsent = any(op == report.operation_id for op, _ in self._epochs)
            if unsent:  # the last epochs before the final word, so the curve is whole
                self._send_progress(report.operation_id, report.progress or Progress())
            job_span = trace.NonRecordingSpan(report.span_context or trace.INVALID_SPAN_CONTEXT)
            token = otel_context.attach(trace.set_span_in_context(job_span))
            try:
                self.backend.report(
                    report.operation_id,
                    attempt=report.attempt,
                    outcome=report.outcome.value,
                    result=report.result,
                    error=report.error,
                    progress=report.progress,
                )
            except StaleOperation as exc:
                log.info("report of %s refused as out of date: %s", report.operation_id, exc)
            except ReportRefused as exc:
                if report.result is not None or report.outcome is not Outcome.FAILED:
                    # The job's outcome cannot be stored as it is (too large, out of
                    # bounds): say so on the operation instead of retrying it forever.
                    why = f"the API refused this job's {report.outcome.value} report ({exc})"
                    log.error("%s; reporting a failure instead", why,
                              extra={"operation_id": report.operation_id})  # fmt: skip
                    with self._lock:
                        self._outbox[0] = replace(
                            report, outcome=Outcome.FAILED, result=None, error=why[:ERROR_MAX]
                        )
                    continue
                log.error("failure report of %s refused, dropped: %s", report.operation_id, exc)
            finally:
                otel_context.detach(token)
            with self._lock:
                self._outbox.popleft()

    def _apply(self, cancel_ids: list[str]) -> None:
        for operation_id in cancel_ids:
            if not self.cancel_current(operation_id, reason="cancelled by the backend"):
                continue
            # Logged on the reporter thread: in the job's trace, like the job's own lines.
            span = trace.NonRecordingSpan(self._job_span or trace.INVALID_SPAN_CONTEXT)
            token = otel_context.attach(trace.set_span_in_context(span))
            op_token = operation_id_var.set(operation_id)
            try:
                log.info("cancelling on the backend's request")
            finally:
                operation_id_var.reset(op_token)
                otel_context.detach(token)


def _where(exc: BaseException) -> str | None:
    where = getattr(exc, "where", None)
    return where if isinstance(where, str) else None


def _summarise(exc: BaseException) -> str:
    """Error text kept on the operation: the message plus the innermost frames."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})" for f in frames)
    return f"{type(exc).__name__}: {exc}" + (f" [at {where}]" if where else "")
