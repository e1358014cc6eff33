"""An operation's timeline from its history: created → queued → dispatched to a worker →
each phase with its duration → the result; a re-queue starts a second attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ktrdr.operations.history import EventKind, OperationEvent
from ktrdr.operations.model import OperationStatus
from ktrdr.operations.schemas import OperationPublic


@dataclass
class Step:
    label: str
    # created | wait | dispatched | starting | phase | requeued | completed | failed | cancelled
    kind: str
    start: datetime
    end: datetime | None = None  # None: an instant
    detail: str | None = None
    running: bool = False  # still going on now
    left_pct: float = 0.0
    width_pct: float = 0.0

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()


@dataclass
class Attempt:
    number: int  # 0: before the first dispatch
    worker_id: str | None
    steps: list[Step] = field(default_factory=list)


def _ending(event: OperationEvent) -> Step:
    status = OperationStatus(event.name or "failed")
    if status == OperationStatus.PENDING:
        return Step("re-queued", "requeued", event.at, detail=event.detail)
    return Step(status.value, status.value, event.at, detail=event.detail)


def _close(open_step: Step | None, at: datetime) -> None:
    if open_step is not None and open_step.end is None:
        open_step.end = at


def build_timeline(
    op: OperationPublic, events: list[OperationEvent], now: datetime
) -> list[Attempt]:
    """Attempts in order, each with its steps; intervals carry their share of the whole."""
    before = Attempt(0, None, [Step("created", "created", op.created_at)])
    waiting = Step("queued, waiting for a worker", "wait", op.queued_at)
    before.steps.append(waiting)
    attempts = [before]
    current = before
    open_step: Step | None = waiting
    for event in events:
        if event.kind == EventKind.DISPATCHED:
            _close(open_step, event.at)
            current = Attempt(event.attempt, event.worker_id)
            attempts.append(current)
            current.steps.append(Step(f"dispatched to {event.worker_id}", "dispatched", event.at))
            open_step = Step("starting", "starting", event.at)
            current.steps.append(open_step)
        elif event.kind == EventKind.PHASE:
            if open_step is not None and open_step.label == "starting":
                # The worker's first report: "starting" is only the gap before it.
                open_step.end = event.at
            _close(open_step, event.at)
            open_step = Step(event.name or "?", "phase", event.at)
            current.steps.append(open_step)
        else:
            _close(open_step, event.at)
            current.steps.append(_ending(event))
            open_step = None
            if event.name == OperationStatus.PENDING.value:
                open_step = Step("queued again", "wait", event.at)
                current.steps.append(open_step)
    if not events and op.started_at is not None:
        # Recorded before the history existed: what the operation row still knows.
        _close(waiting, op.started_at)
        current = Attempt(
            op.attempt,
            op.worker_id,
            [Step(f"dispatched to {op.worker_id}", "dispatched", op.started_at)],
        )
        attempts.append(current)
        open_step = Step(op.progress.phase or "running", "phase", op.started_at)
        current.steps.append(open_step)
        if op.completed_at is not None:
            open_step.end = op.completed_at
            current.steps.append(
                Step(op.status.value, op.status.value, op.completed_at, detail=op.status_reason)
            )
    if open_step is not None and open_step.end is None:
        open_step.end = op.completed_at or now
        open_step.running = not op.status.is_terminal
    _drop_empty_starts(attempts)
    _place(attempts, op.created_at, op.completed_at or now)
    return attempts


def _drop_empty_starts(attempts: list[Attempt]) -> None:
    for attempt in attempts:
        attempt.steps = [
            s for s in attempt.steps if not (s.label == "starting" and s.duration_s == 0)
        ]


def _place(attempts: list[Attempt], first: datetime, last: datetime) -> None:
    total = max((last - first).total_seconds(), 1e-6)
    for attempt in attempts:
        for step in attempt.steps:
            step.left_pct = min(max((step.start - first).total_seconds() / total * 100, 0), 100)
            width = (step.duration_s or 0.0) / total * 100
            step.width_pct = min(max(width, 0.4 if step.end else 0.0), 100 - step.left_pct)
