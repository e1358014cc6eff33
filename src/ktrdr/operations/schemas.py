"""Typed views of operations, shared by the store, the API and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ktrdr.bounds import INT32_MAX, MESSAGE_MAX, PHASE_MAX, RequestModel
from ktrdr.operations.model import OperationStatus, OperationType


class Progress(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"percent": 42.0, "phase": "simulation", "message": "bar 4,200 of 10,000",
                 "items_done": 4200, "items_total": 10000}
            ]
        }
    )  # fmt: skip

    percent: float = Field(0.0, ge=0.0, le=100.0, description="0 to 100")
    phase: str | None = Field(None, max_length=PHASE_MAX)
    message: str | None = Field(None, max_length=MESSAGE_MAX)
    items_done: int | None = Field(None, ge=0, le=INT32_MAX)
    items_total: int | None = Field(None, ge=0, le=INT32_MAX)


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


class OperationSummary(BaseModel):
    """An operation as a listing shows it: what a table needs, bounded in size whatever the
    operation holds. The full parameters and result are at GET /operations/{id}."""

    id: str
    type: OperationType
    status: OperationStatus
    progress: Progress
    worker_id: str | None
    attempt: int
    max_attempts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    params_summary: dict[str, Any] = Field(
        description="strategy name, symbol, timeframe, window and other short parameters"
    )
    result_summary: dict[str, Any] | None = Field(
        description="headline figures of the result (e.g. return, Sharpe, trades)"
    )
    error: str | None = Field(description="first line of the error, shortened")
    status_reason: str | None
    trace_id: str | None
    parent_id: str | None = Field(None, description="the campaign a chunk belongs to")

    @property
    def params(self) -> dict[str, Any]:
        """The parameter summary, where views written for full records look for params."""
        return self.params_summary

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()


class OperationsPublic(BaseModel):
    data: list[OperationSummary]
    count: int = Field(description="total matching the filters, across all pages")
    limit: int
    offset: int


class OperationCreate(RequestModel):
    """Generic creation request: a type and its parameters (validated per type)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "diagnostic", "params": {"steps": 5, "step_ms": 50}}]
        }
    )

    type: OperationType
    params: dict[str, Any] = Field(default_factory=dict)


class ResultTable(BaseModel):
    """A result table stored as an artifact (served whole by GET /results/{table})."""

    model_config = ConfigDict(extra="allow")

    key: str
    sha256: str
    size_bytes: int
    rows: int | None = None
    preview_points: int | None = Field(None, description="inline copies are thinned to this")


class OperationResult(BaseModel):
    """A completed operation's result. Its parts depend on the type: backtests have
    statistics, trades and equity_curve; training runs model, metrics, evaluation and
    history (per epoch, from its artifact); data downloads dataset, rows_written, gaps and
    notes; campaigns a summary.
    Tables stored as artifacts are inline here (thinned to a preview where the worker
    asked for one) and listed under `artifacts`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "statistics": {"total_return_pct": 3.2, "sharpe_ratio": 1.1, "num_trades": 14},
                    "trades": [
                        {"entry_time": "2020-02-03T10:00:00+00:00",
                         "exit_time": "2020-02-04T09:00:00+00:00", "side": "long",
                         "net_pnl": 120.5}
                    ],
                    "equity_curve": [{"timestamp": "2020-02-03T10:00:00+00:00",
                                      "equity": 50_000.0}],
                }
            ]
        },
    )  # fmt: skip

    statistics: dict[str, Any] | None = Field(None, description="backtests: the statistics")
    trades: list[dict[str, Any]] | None = Field(None, description="backtests: one per trade")
    equity_curve: list[dict[str, Any]] | None = Field(
        None, description="backtests: {timestamp, equity} per stored bar"
    )
    artifacts: dict[str, ResultTable] | None = None
    metrics: dict[str, Any] | None = Field(None, description="what GET /metrics serves")
    dataset: dict[str, Any] | None = Field(None, description="data downloads: the series")
    model: dict[str, Any] | None = Field(None, description="training: the saved model")
    history: list[dict[str, Any]] | None = Field(
        None, description="training: {epoch, epochs, train_loss, val_loss, val_accuracy} per epoch"
    )
