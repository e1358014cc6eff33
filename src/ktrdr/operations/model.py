"""Operation types, states, ids and the one transition guard."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum


class OperationType(StrEnum):
    BACKTESTING = "backtesting"
    TRAINING = "training"
    DATA_DOWNLOAD = "data_download"
    # Platform self-test: N steps of M ms with progress, optionally failing. Used by the
    # platform's own tests, `ktrdr doctor` and the latency benchmark.
    DIAGNOSTIC = "diagnostic"
    # Campaigns: parents driven by the backend (never dispatched), whose work is
    # `sweep_chunk` children run by backtesting workers (see ktrdr.campaigns).
    SWEEP = "sweep"
    WALKFORWARD = "walkforward"
    SWEEP_CHUNK = "sweep_chunk"


# Backend-driven parents (their children carry `parent_id`).
CAMPAIGN_TYPES = (OperationType.SWEEP, OperationType.WALKFORWARD)


class OperationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED}
)

# The only legal moves. RUNNING -> PENDING is the re-queue after a worker is lost.
_ALLOWED: dict[OperationStatus, frozenset[OperationStatus]] = {
    OperationStatus.PENDING: frozenset({OperationStatus.RUNNING, OperationStatus.CANCELLED}),
    OperationStatus.RUNNING: frozenset(
        {
            OperationStatus.COMPLETED,
            OperationStatus.FAILED,
            OperationStatus.CANCELLED,
            OperationStatus.PENDING,
        }
    ),
    OperationStatus.COMPLETED: frozenset(),
    OperationStatus.FAILED: frozenset(),
    OperationStatus.CANCELLED: frozenset(),
}


class Outcome(StrEnum):
    """How a job ended on the worker. `interrupted`: the worker stopped before the end
    (shutdown) and the work should run again elsewhere."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class IllegalTransition(Exception):
    """A state change the operation model forbids (e.g. completed -> running)."""

    def __init__(self, operation_id: str, current: OperationStatus, target: OperationStatus):
        self.operation_id = operation_id
        self.current = current
        self.target = target
        allowed = ", ".join(sorted(_ALLOWED[current])) or "none (it is final)"
        super().__init__(
            f"operation {operation_id} is {current} and cannot become {target}; "
            f"allowed from {current}: {allowed}"
        )


def allowed_targets(current: OperationStatus) -> frozenset[OperationStatus]:
    return _ALLOWED[current]


def check_transition(operation_id: str, current: OperationStatus, target: OperationStatus) -> None:
    """Raise IllegalTransition unless current -> target is a legal move."""
    if target not in _ALLOWED[current]:
        raise IllegalTransition(operation_id, current, target)


def new_operation_id(op_type: OperationType, now: datetime | None = None) -> str:
    """`op_{type}_{YYYYMMDD_HHMMSS}_{8 hex}`: sortable by creation time, unique by the suffix."""
    stamp = (now or utcnow()).strftime("%Y%m%d_%H%M%S")
    return f"op_{op_type.value}_{stamp}_{secrets.token_hex(4)}"


def utcnow() -> datetime:
    return datetime.now(UTC)
