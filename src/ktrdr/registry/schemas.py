"""Worker registration, heartbeat and listing payloads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints

from ktrdr.bounds import VERSION_MAX, WORKER_URL_MAX, OperationId, RequestModel, WorkerId
from ktrdr.operations.model import OperationType
from ktrdr.operations.schemas import Progress


class WorkerState(StrEnum):
    ONLINE = "online"
    DRAINING = "draining"  # shutting down: finishes its job, takes no new one
    LOST = "lost"  # silent past the heartbeat timeout
    OFFLINE = "offline"  # deregistered on a clean shutdown


class WorkerRegistration(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "worker_id": "backtest-worker-5003", "kinds": ["backtesting"],
                    "url": "http://10.0.0.7:5003", "version": "0.1.0",
                }
            ]
        }
    )  # fmt: skip

    worker_id: WorkerId = Field(description="stable id")
    kinds: list[OperationType] = Field(min_length=1, max_length=len(OperationType))
    url: Annotated[HttpUrl, UrlConstraints(max_length=WORKER_URL_MAX)] = Field(
        description="where the backend reaches this worker"
    )
    version: str | None = Field(None, max_length=VERSION_MAX)
    current_operation_id: OperationId | None = Field(
        None, description="what it is running right now"
    )
    progress: Progress | None = None
    credential: str | None = Field(
        None,
        max_length=200,
        description="the credential this instance got at its last registration, if any: "
        "only then does the backend believe what it says it runs",
    )


# Workers that still heartbeat (and may own an operation).
LIVE_STATES = (WorkerState.ONLINE, WorkerState.DRAINING)


class Heartbeat(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "current_operation_id": "op_backtesting_20261202_010000_1a2b3c4d",
                    "progress": {"percent": 42.0, "phase": "simulation"},
                }
            ]
        }
    )

    current_operation_id: OperationId | None = None
    progress: Progress | None = None
    draining: bool = Field(False, description="shutting down: send no new jobs")


class HeartbeatReply(BaseModel):
    """What the backend wants the worker to stop doing (cancelled or re-assigned operations)."""

    cancel_operation_ids: list[str] = Field(default_factory=list)


class RegistrationReply(HeartbeatReply):
    """Registration also issues this instance's own credential (rotated every time)."""

    worker_credential: str = Field(
        description="send as 'Authorization: Bearer <credential>' on heartbeats, progress, "
        "reports and deregistration; the shared worker token only admits registration"
    )


class WorkerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kinds: list[OperationType]
    url: str
    state: WorkerState
    current_operation_id: str | None
    registered_at: datetime
    last_heartbeat_at: datetime
    last_assigned_at: datetime | None
    version: str | None
    lost_reason: str | None

    @property
    def busy(self) -> bool:
        return self.current_operation_id is not None


class WorkersPublic(BaseModel):
    data: list[WorkerPublic]
    count: int
