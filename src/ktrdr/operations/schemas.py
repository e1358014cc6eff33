"""Typed views of operations, shared by the store, the API and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ktrdr.operations.model import OperationStatus, OperationType


class Progress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    percent: float = Field(0.0, ge=0.0, le=100.0, description="0 to 100")
    phase: str | None = Field(None, max_length=64)
    message: str | None = Field(None, max_length=2000)
    items_done: int | None = Field(None, ge=0)
    items_total: int | None = Field(None, ge=0)


class OperationPublic(BaseModel):
    """An operation as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    type: OperationType
    status: OperationStatus
    params: dict[str, Any]
    worker_id: str | None
    attempt: int
    max_attempts: int
    created_at: datetime
    queued_at: datetime = Field(description="place in the queue; kept when re-queued")
    pending_since: datetime = Field(description="when it last became pending")
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    progress: Progress
    result: dict[str, Any] | None
    error: str | None
    status_reason: str | None
    trace_id: str | None
    # W3C context of the creating request: continues the operation's trace at dispatch.
    traceparent: str | None = Field(None, exclude=True)
    parent_id: str | None = Field(None, description="the campaign a chunk belongs to")

    @property
    def queue_wait_s(self) -> float | None:
        """Time the current attempt waited for a worker (None until it starts)."""
        if self.started_at is None:
            return None
        return max((self.started_at - self.pending_since).total_seconds(), 0.0)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()


class OperationsPublic(BaseModel):
    data: list[OperationPublic]
    count: int = Field(description="total matching the filters, across all pages")
    limit: int
    offset: int


class OperationCreate(BaseModel):
    """Generic creation request: a type and its parameters (validated per type)."""

    model_config = ConfigDict(extra="forbid")

    type: OperationType
    params: dict[str, Any] = Field(default_factory=dict)
