"""The dispatcher: one asyncio task in the API process.

Woken whenever an operation becomes pending or a worker becomes free (and every
`poll_s` regardless), it walks the queue oldest first
and gives each operation to the least-recently-used capable idle worker. The claim is
a compare-and-set in the store, so a second dispatcher (another API replica) can run
beside it without ever putting two operations on one worker. Every round first frees
workers held by an operation that is not running on them (the registry invariant);
once per poll period it also marks silent workers lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ktrdr.dispatch.push import WorkerPush
from ktrdr.jobs.specs import get_spec
from ktrdr.operations.model import IllegalTransition, OperationStatus
from ktrdr.operations.schemas import OperationPublic
from ktrdr.operations.service import OperationService, current_trace
from ktrdr.operations.store import OperationNotFound, QueuedOperation
from ktrdr.registry.schemas import WorkerPublic, WorkerState
from ktrdr.registry.service import WorkerService

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ktrdr.dispatch")
_propagator = TraceContextTextMapPropagator()


def worker_kind(op: QueuedOperation | OperationPublic) -> str | None:
    """The kind a worker must offer (a sweep chunk: backtesting); None: never dispatched."""
    kind = get_spec(op.type).worker_kind
    return None if kind is None else kind.value


def order_candidates(workers: Sequence[WorkerPublic], kind: str) -> list[WorkerPublic]:
    """Capable idle workers, least recently used first."""
    never = datetime.min.replace(tzinfo=UTC)
    idle = [w for w in workers if kind in w.kinds and not w.busy]
    return sorted(idle, key=lambda w: (w.last_assigned_at or never, w.id))


class Dispatcher:
    def __init__(
        self,
        operations: OperationService,
        workers: WorkerService,
        client: httpx.AsyncClient,
        *,
        auth_headers: dict[str, str],
        poll_s: float,
    ):
        self.operations = operations
        self.workers = workers
        self.client = client  # cancels, and pushes over TLS; others go through self._push
        timeout = client.timeout.read
        self._push = WorkerPush(timeout_s=timeout if timeout is not None else 10.0)
        self.auth_headers = auth_headers
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._waiting: dict[str, _Waiting] = {}

    def wake(self) -> None:
        """Thread-safe: called from request handlers running in the thread pool."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        last_liveness_check = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            try:
                # Liveness moves on the clock, not on events: check it once per poll period
                # rather than on every wake-up (each submission and report wakes us).
                now = loop.time()
                check_liveness = now - last_liveness_check >= self.poll_s
                if check_liveness:
                    last_liveness_check = now
                await self.dispatch_pending(check_liveness=check_liveness)
            except Exception:  # a bad round must not stop dispatching for good
                log.exception("dispatch round failed; retrying in %.1fs", self.poll_s)

    async def dispatch_pending(self, *, check_liveness: bool = False) -> int:
        # The whole round - reads, claims, wait spans - in one hop to the thread pool
        # (each hop is a wait for a thread and for the interpreter lock, and a round runs
        # on every event); then the sends, concurrently, on the loop.
        claimed = await asyncio.to_thread(self._round, check_liveness)
        for operation, worker, parent in claimed:
            task = asyncio.create_task(self._send(operation, worker, parent))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        return len(claimed)

    def _round(
        self, check_liveness: bool
    ) -> list[tuple[OperationPublic, WorkerPublic, trace.Span]]:
        if check_liveness:
            self.workers.mark_silent_workers_lost()
        # Every round, before the queue (the invariant issue 8 asks of every round): a
        # worker held by an operation that is not running on it would otherwise not be
        # offered the operation this round is about to place.
        self.workers.free_orphaned_workers()
        pending = self.operations.store.queue()
        online = self.workers.store.list_workers() if pending else []
        claimed: list[tuple[OperationPublic, WorkerPublic, trace.Span]] = []
        # A type that found no free worker will find none for the rest of this round:
        # skip its other operations instead of trying the registry again for each.
        # The registry is read once per round; a worker freed meanwhile wakes the next.
        # kind -> capable workers, counted once per round (a deep queue notes each wait).
        exhausted: dict[str, int] = {}
        for op in pending:
            kind = worker_kind(op)
            if kind is None:
                continue  # a campaign parent: driven by the backend itself, never dispatched
            if kind in exhausted:
                self._note_wait(op, online, exhausted[kind])
                continue
            chosen = self._select_and_claim(op, online)
            if chosen is None:
                exhausted[kind] = sum(1 for w in online if kind in w.kinds)
                continue
            operation, worker, _span = chosen
            taken = {"current_operation_id": operation.id, "last_assigned_at": operation.started_at}
            online = [w.model_copy(update=taken) if w.id == worker.id else w for w in online]
            claimed.append(chosen)
        still_pending = {op.id for op in pending}
        for operation_id in [i for i in self._waiting if i not in still_pending]:
            self._end_wait(operation_id)  # cancelled while it waited
        return claimed

    def _select_and_claim(
        self, op: QueuedOperation, online: Sequence[WorkerPublic]
    ) -> tuple[OperationPublic, WorkerPublic, trace.Span] | None:
        if not order_candidates(online, worker_kind(op) or ""):
            # Nothing to try: no span pair for this round (a long queue would flood the
            # operation's trace with two spans per round); the wait span counts it.
            self._note_wait(op, online)
            return None
        self._end_wait(op.id)
        span = tracer.start_span("operations.dispatch", context=_operation_context(op))
        span.set_attribute("operation.id", op.id)
        span.set_attribute("operation.type", op.type.value)
        with trace.use_span(span, end_on_exit=False):
            chosen = self._select(op, online)
        if chosen is None:
            span.end()
            return None
        return chosen[0], chosen[1], span

    def _note_wait(
        self, op: QueuedOperation, online: Sequence[WorkerPublic], capable: int | None = None
    ) -> None:
        """One ``operations.wait`` span per wait, open until the operation leaves the queue.

        Each round without a worker adds to its round count; an event marks each change
        of the reason (no capable worker at all / all busy), not each round.
        """
        if capable is None:
            capable = sum(1 for w in online if worker_kind(op) in w.kinds)
        outcome = "no_workers_available" if capable else "no_capable_workers"
        waiting = self._waiting.get(op.id)
        if waiting is None:
            span = tracer.start_span("operations.wait", context=_operation_context(op))
            span.set_attribute("operation.id", op.id)
            span.set_attribute("operation.type", op.type.value)
            waiting = self._waiting[op.id] = _Waiting(span)
        waiting.rounds += 1
        if outcome != waiting.outcome:
            waiting.outcome = outcome
            waiting.span.add_event(
                "no worker",
                {"outcome": outcome, "workers.total": len(online), "workers.capable": capable},
            )

    def _end_wait(self, operation_id: str) -> None:
        waiting = self._waiting.pop(operation_id, None)
        if waiting is not None:
            waiting.span.set_attribute("dispatch.rounds_without_worker", waiting.rounds)
            waiting.span.end()

    def _select(
        self, op: QueuedOperation, online: Sequence[WorkerPublic]
    ) -> tuple[OperationPublic, WorkerPublic] | None:
        with tracer.start_as_current_span("workers.select") as span:
            kind = worker_kind(op) or ""
            capable = [w for w in online if kind in w.kinds]
            candidates = order_candidates(online, kind)
            span.set_attribute("worker.kind", kind)
            span.set_attribute("workers.total", len(online))
            span.set_attribute("workers.capable", len(capable))
            span.set_attribute("workers.available", len(candidates))
            for worker in candidates:
                claimed = self.operations.claim(op, worker.id)
                if claimed is not None:
                    span.set_attribute("worker.selected", worker.id)
                    span.set_attribute("outcome", "selected")
                    return claimed, worker
            outcome = "no_capable_workers" if not capable else "no_workers_available"
            span.set_attribute("outcome", outcome)
            return None

    async def _send(self, op: OperationPublic, worker: WorkerPublic, span: trace.Span) -> None:
        span.set_attribute("worker.id", worker.id)
        span.set_attribute("operation.attempt", op.attempt)
        try:
            with trace.use_span(span, end_on_exit=False):
                body = {
                    "operation_id": op.id,
                    "type": op.type.value,
                    "params": op.params,
                    "attempt": op.attempt,
                    "traceparent": current_trace().traceparent,
                }
                try:
                    # Encoded here, strictly: stored parameters that are not JSON (a NaN
                    # from before the API checked floats) fail the operation with that
                    # reason instead of crashing this task and stranding it as running.
                    content = json.dumps(body, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    span.record_exception(exc)
                    span.set_status(trace.StatusCode.ERROR, str(exc))
                    await asyncio.to_thread(self._unsendable, op, f"{type(exc).__name__}: {exc}")
                    return
                url = worker.url + get_spec(op.type).worker_start_path
                headers = {**self.auth_headers, "content-type": "application/json"}
                if url.startswith("http://"):
                    await self._push.post_json(url, content, headers)
                else:  # TLS to the worker: httpx (and its instrumentation)
                    response = await self.client.post(url, content=content, headers=headers)
                    response.raise_for_status()
                log.info("dispatched to %s", worker.id, extra={"operation_id": op.id})
            self.operations.events.operation_dispatched(
                op.type.value, worker.id, op.queue_wait_s or 0.0, op.trace_id
            )
        except httpx.HTTPError as exc:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR, str(exc))
            await asyncio.to_thread(self._dispatch_failed, op, worker, _describe(exc))
        except Exception as exc:  # a send must end in a recorded outcome, never a lost task
            log.exception("sending %s to %s failed", op.id, worker.id)
            span.record_exception(exc)
            await asyncio.to_thread(self._unsendable, op, f"{type(exc).__name__}: {exc}")
        finally:
            span.end()

    def _unsendable(self, op: OperationPublic, why: str) -> None:
        """The request to the worker cannot be built: retrying elsewhere would not help."""
        reason = f"could not be sent to a worker: {why}"
        log.error(reason, extra={"operation_id": op.id})
        # Cancelled meanwhile: leave it; the worker's heartbeat settles who holds what.
        with contextlib.suppress(IllegalTransition, OperationNotFound):
            self.operations.transition(op.id, OperationStatus.FAILED, reason=reason, error=reason)

    def _dispatch_failed(self, op: OperationPublic, worker: WorkerPublic, why: str) -> None:
        reason = f"dispatch to worker {worker.id} failed: {why}"
        log.warning(reason, extra={"operation_id": op.id})
        # A worker we cannot reach is treated as lost; if it is alive it gets 404 on its
        # next heartbeat, registers again and reports what it really runs.
        self.workers.store.mark_worker_gone(worker.id, WorkerState.LOST, reason, stale_before=None)
        try:
            current = self.operations.store.get_operation(op.id)
            if current.status == OperationStatus.RUNNING and current.worker_id == worker.id:
                self.operations.requeue_or_fail(current, reason)
        except (IllegalTransition, OperationNotFound):
            pass
        self.workers.store.release_worker(worker.id, op.id)

    async def send_cancel(self, worker: WorkerPublic, operation_id: str) -> None:
        """Best effort: the heartbeat reply repeats the cancel if this one is lost."""
        try:
            await self.client.post(
                f"{worker.url}/operations/{operation_id}/cancel", headers=self.auth_headers
            )
        except httpx.HTTPError as exc:
            log.info("cancel of %s on %s not delivered now: %s", operation_id, worker.id, exc)

    async def send_cancel_to(self, worker_id: str, operation_id: str) -> None:
        """Tell the worker by id (the campaign driver stops a campaign's running chunks)."""
        worker = await asyncio.to_thread(self.workers.store.get_worker, worker_id)
        if worker is not None:
            await self.send_cancel(worker, operation_id)

    async def close(self) -> None:
        for task in list(self._sends):
            task.cancel()
        self._push.close()
        for operation_id in list(self._waiting):
            self._end_wait(operation_id)


@dataclass
class _Waiting:
    span: trace.Span
    rounds: int = 0
    outcome: str = ""


def _operation_context(op: QueuedOperation) -> otel_context.Context:
    """The operation's own trace (its stored traceparent) as the parent context."""
    return _propagator.extract({"traceparent": op.traceparent} if op.traceparent else {})


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}: {exc.response.text[:200]}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
