"""The campaign driver: one asyncio task in the API process, beside the dispatcher.

Each round it reads every live campaign (sweep / walk-forward parent) from the store and
moves it on: pending -> running, creates the chunk children it still needs (ordinary
operations with a `parent_id`, dispatched by the dispatcher to backtesting workers),
collects completed chunks into the results table, reports aggregated progress, and
completes the parent with its summary. It keeps no state of its own (caches only), so an
API restart resumes every campaign from the store. A cancelled or failed parent gets its
pending and running children cancelled, their workers told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ktrdr.campaigns.chunks import CampaignFailed, ChunkRequest, campaign_progress
from ktrdr.campaigns.results import CampaignResult, CampaignResults
from ktrdr.campaigns.sweep import drive_sweep
from ktrdr.campaigns.walkforward import drive_walkforward
from ktrdr.jobs.specs import get_spec
from ktrdr.operations.model import (
    CAMPAIGN_TYPES,
    IllegalTransition,
    OperationStatus,
    OperationType,
)
from ktrdr.operations.schemas import OperationPublic, Progress
from ktrdr.operations.service import CurrentTrace, OperationService
from ktrdr.registry.schemas import WorkerState

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ktrdr.campaigns")
_propagator = TraceContextTextMapPropagator()

_LIVE = [OperationStatus.PENDING, OperationStatus.RUNNING]
# Children listed per campaign per round; far above any campaign's chunk count.
_MAX_CHILDREN = 1_000_000


class CampaignEvents(Protocol):
    """Campaign metrics, counted by the backend only (ktrdr.telemetry.metrics)."""

    def chunk_collected(
        self, campaign_type: str, combinations: int, duration_s: float | None
    ) -> None: ...


class NoCampaignEvents:
    def chunk_collected(
        self, campaign_type: str, combinations: int, duration_s: float | None
    ) -> None:
        pass


class CampaignDriver:
    def __init__(
        self,
        operations: OperationService,
        *,
        poll_s: float,
        events: CampaignEvents | None = None,
        send_cancel: Callable[[str, str], Any] | None = None,
    ):
        self.operations = operations
        self.store = operations.store
        self.results = CampaignResults(operations.store)
        self.artifacts = operations.artifacts
        self.poll_s = poll_s
        self.events: CampaignEvents = events or NoCampaignEvents()
        # (worker_id, operation_id) -> awaitable that tells the worker to stop.
        self.send_cancel = send_cancel
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.cache: dict[Any, Any] = {}
        self._collected: dict[str, frozenset[str]] = {}  # parent id -> chunks collected
        self._live: frozenset[str] = frozenset()  # campaigns live in the last round

    def wake(self) -> None:
        """Thread-safe: every transition (a chunk finished, a cancel) wakes the driver."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            polled = False
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except TimeoutError:
                polled = True
            self._wake.clear()
            try:
                to_cancel = await asyncio.to_thread(self.drive_all, polled)
                for worker_id, operation_id in to_cancel:
                    if self.send_cancel is not None:
                        await self.send_cancel(worker_id, operation_id)
            except Exception:  # a bad round must not stop driving for good
                log.exception("campaign round failed; retrying in %.1fs", self.poll_s)

    # ------------------------------------------------------------------ one round

    def drive_all(self, polled: bool = True) -> list[tuple[str, str]]:
        """Advance every live campaign; returns running children whose workers must stop.
        Orphans (live chunks of an ended campaign) are looked for when a campaign seen live
        last round is not any more, and on every ``polled`` round (another replica's
        changes): not in the rounds that each chunk's start and end wake, where those two
        queries had been a third of a round."""
        stop: list[tuple[str, str]] = []
        parents = self.store.full_operations(statuses=_LIVE, types=CAMPAIGN_TYPES, limit=500)
        live = frozenset(p.id for p in parents)
        ended, self._live = self._live - live, live
        for parent in parents:
            try:
                stop.extend(self.drive(parent))
            except CampaignFailed as exc:
                stop.extend(self.finish(parent, OperationStatus.FAILED, error=str(exc)))
            except Exception as exc:
                log.exception("campaign %s could not advance", parent.id)
                why = f"the campaign driver failed: {type(exc).__name__}: {exc}"
                stop.extend(self.finish(parent, OperationStatus.FAILED, error=why))
        if polled or ended:
            stop.extend(self.stop_orphans())
        return stop

    def drive(self, parent: OperationPublic) -> list[tuple[str, str]]:
        if parent.status == OperationStatus.PENDING:
            parent = self.operations.transition(
                parent.id, OperationStatus.RUNNING, reason="planning chunks"
            ).operation
        # Without results: a chunk's (its rows) are read once, when collected.
        children = self.store.full_operations(
            parent_id=parent.id, limit=_MAX_CHILDREN, with_results=False
        )
        self.collect(parent, children)
        drive = drive_sweep if parent.type == OperationType.SWEEP else drive_walkforward
        return drive(self, parent, children)

    def collect(self, parent: OperationPublic, children: list[OperationPublic]) -> None:
        """Completed chunks' results into the results table (idempotent); failures end it."""
        collected = self.results.collected_chunks(parent.id)
        for child in children:
            if child.status == OperationStatus.COMPLETED and child.id not in collected:
                rows = self.result_of(child).get("results") or []
                new = self.results.insert(parent.id, child.id, rows, self.operations.clock())
                collected.add(child.id)
                if new:
                    self.events.chunk_collected(parent.type.value, new, child.duration_s)
            elif child.status == OperationStatus.FAILED:
                raise CampaignFailed(
                    f"chunk {child.id} failed: {child.error or child.status_reason}"
                )
            elif child.status == OperationStatus.CANCELLED:
                raise CampaignFailed(
                    f"chunk {child.id} was cancelled ({child.status_reason}); "
                    "cancel the campaign itself to stop it"
                )
        self._collected[parent.id] = frozenset(collected)

    def stored_results(self, parent: OperationPublic) -> list[CampaignResult]:
        """The campaign's stored results, read again only when the chunks they came from
        changed (by this round's collection or another replica's): a round that collected
        nothing new does not re-read and re-parse every row."""
        chunks = self._collected.get(parent.id, frozenset())
        cached = self.cache.get(("results", parent.id))
        if cached is None or cached[0] != chunks:
            cached = self.cache[("results", parent.id)] = (chunks, self.results.list(parent.id))
        results: list[CampaignResult] = cached[1]
        return results

    def result_of(self, child: OperationPublic) -> dict[str, Any]:
        """A child's stored result (the rounds read children without theirs)."""
        return self.store.get_operation(child.id).result or {}

    def create_chunks(self, parent: OperationPublic, requests: list[ChunkRequest]) -> None:
        if not requests:
            return
        ids = CurrentTrace(parent.trace_id, parent.traceparent)
        with self.in_trace(parent, "campaign.chunks_created") as span:
            span.set_attribute("campaign.chunks", len(requests))
            for request in requests:
                self.operations.create(
                    OperationType.SWEEP_CHUNK,
                    request.body,
                    idempotency_key=f"{parent.id}/{request.first_key}",
                    parent_id=parent.id,
                    trace_ids=ids,
                )

    def capable_workers(self) -> int:
        """Online workers that run sweep chunks: the idle ones, else all (busy with other
        work they free up soon), for sizing a campaign's chunks."""
        kind = get_spec(OperationType.SWEEP_CHUNK).worker_kind
        online = [
            w for w in self.store.list_workers()
            if w.state == WorkerState.ONLINE and kind in w.kinds
        ]  # fmt: skip
        return sum(1 for w in online if not w.busy) or len(online)

    def report_progress(self, parent: OperationPublic, done: int, total: int, text: str) -> None:
        progress = campaign_progress(done, total, text)
        if progress != parent.progress:
            self.store.record_driver_progress(parent.id, progress, self.operations.clock())

    def finish(
        self,
        parent: OperationPublic,
        status: OperationStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        progress: Progress | None = None,
        children_done: bool = False,
    ) -> list[tuple[str, str]]:
        """End the campaign (completed with its result, or failed) and stop its children;
        ``children_done``: the caller saw every child completed, so none is looked for."""
        with self.in_trace(parent, f"campaign.{status.value}") as span:
            span.set_attribute("operation.id", parent.id)
            try:
                self.operations.transition(
                    parent.id, status, result=result, error=error, reason=error,
                    progress=progress,
                )  # fmt: skip
            except IllegalTransition:
                log.info("campaign %s changed meanwhile; left as is", parent.id)
        # Its plan and parameters are cached by (what, parent id, ...): not needed again.
        for key in [k for k in self.cache if isinstance(k, tuple) and parent.id in k[1:2]]:
            del self.cache[key]
        self._collected.pop(parent.id, None)
        if children_done:
            return []
        return self.stop_children(parent.id, f"campaign {parent.id} {status.value}")

    def stop_children(self, parent_id: str, reason: str) -> list[tuple[str, str]]:
        """Cancel the campaign's live children; returns (worker, op) pairs to tell."""
        live, _ = self.store.list_operations(
            parent_id=parent_id, statuses=_LIVE, limit=_MAX_CHILDREN
        )
        stop: list[tuple[str, str]] = []
        for child in live:
            try:
                self.operations.cancel(child.id, reason=reason)
            except IllegalTransition:
                continue  # it ended meanwhile
            if child.status == OperationStatus.RUNNING and child.worker_id:
                stop.append((child.worker_id, child.id))
        return stop

    def stop_orphans(self) -> list[tuple[str, str]]:
        """Live chunks of a campaign that has ended (cancelled by the user, or failed)."""
        live = self.store.full_operations(
            statuses=_LIVE, types=[OperationType.SWEEP_CHUNK], limit=_MAX_CHILDREN
        )
        stop: list[tuple[str, str]] = []
        ended: set[str] = set()
        for parent_id in {c.parent_id for c in live if c.parent_id}:
            if self.store.get_operation(parent_id).status.is_terminal:
                ended.add(parent_id)
        for parent_id in ended:
            parent = self.store.get_operation(parent_id)
            stop.extend(self.stop_children(parent_id, f"campaign {parent_id} {parent.status}"))
        return stop

    @contextlib.contextmanager
    def in_trace(self, parent: OperationPublic, name: str) -> Iterator[trace.Span]:
        """A span in the campaign's own trace (the parent has one trace)."""
        carrier = {"traceparent": parent.traceparent} if parent.traceparent else {}
        with tracer.start_as_current_span(name, context=_propagator.extract(carrier)) as span:
            span.set_attribute("operation.id", parent.id)
            span.set_attribute("operation.type", parent.type.value)
            yield span
