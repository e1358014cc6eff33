"""Plain typed records of the API's resources, parsed tolerantly.

List items may be summaries (no params/result, or abbreviated ones): every field that a
summary can omit is optional here, and `KtrdrClient.get()` returns the full record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Progress:
    percent: float = 0.0
    phase: str | None = None
    message: str | None = None
    items_done: int | None = None
    items_total: int | None = None

    @classmethod
    def from_api(cls, body: Any) -> Progress:
        if not isinstance(body, dict):
            return cls()
        return cls(
            percent=float(body.get("percent") or 0.0),
            phase=body.get("phase"),
            message=body.get("message"),
            items_done=body.get("items_done"),
            items_total=body.get("items_total"),
        )


@dataclass(frozen=True)
class Operation:
    """One operation (backtest, training run, data download, ...)."""

    id: str
    type: str
    status: str
    progress: Progress
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    status_reason: str | None = None
    worker_id: str | None = None
    attempt: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    trace_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Operation:
        params, result = body.get("params"), body.get("result")
        return cls(
            id=str(body["id"]),
            type=str(body.get("type", "")),
            status=str(body.get("status", "")),
            progress=Progress.from_api(body.get("progress")),
            params=params if isinstance(params, dict) else None,
            result=result if isinstance(result, dict) else None,
            error=body.get("error"),
            status_reason=body.get("status_reason"),
            worker_id=body.get("worker_id"),
            attempt=body.get("attempt"),
            created_at=parse_time(body.get("created_at")),
            started_at=parse_time(body.get("started_at")),
            completed_at=parse_time(body.get("completed_at")),
            trace_id=body.get("trace_id"),
            raw=body,
        )

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class OperationPage:
    data: list[Operation]
    count: int
    limit: int
    offset: int

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> OperationPage:
        data = [Operation.from_api(item) for item in body.get("data", [])]
        return cls(
            data=data,
            count=int(body.get("count", len(data))),
            limit=int(body.get("limit", len(data))),
            offset=int(body.get("offset", 0)),
        )


@dataclass(frozen=True)
class Worker:
    id: str
    kinds: list[str]
    state: str
    url: str | None = None
    current_operation_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Worker:
        return cls(
            id=str(body["id"]),
            kinds=[str(k) for k in body.get("kinds", [])],
            state=str(body.get("state", "")),
            url=body.get("url"),
            current_operation_id=body.get("current_operation_id"),
            raw=body,
        )


@dataclass(frozen=True)
class Dataset:
    """One stored series of the data catalog."""

    symbol: str
    timeframe: str
    rows: int
    first: datetime | None
    last: datetime | None
    source: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Dataset:
        return cls(
            symbol=str(body["symbol"]),
            timeframe=str(body["timeframe"]),
            rows=int(body.get("rows", 0)),
            first=parse_time(body.get("first")),
            last=parse_time(body.get("last")),
            source=body.get("source"),
            raw=body,
        )


@dataclass(frozen=True)
class DeletedData:
    """What `delete_data` removed."""

    symbol: str
    timeframe: str
    rows: int
    deleted_at: datetime | None
    bars_removed: bool

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> DeletedData:
        return cls(
            symbol=str(body["symbol"]),
            timeframe=str(body["timeframe"]),
            rows=int(body.get("rows", 0)),
            deleted_at=parse_time(body.get("deleted_at")),
            bars_removed=bool(body.get("bars_removed")),
        )
