"""SQLAlchemy table definitions for the operations store and the worker registry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ktrdr.bounds import (
    IDEMPOTENCY_KEY_MAX,
    OPERATION_ID_MAX,
    PHASE_MAX,
    VERSION_MAX,
    WORKER_ID_MAX,
    WORKER_URL_MAX,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no time zone, PostgreSQL does."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: UTCDateTime,
    }


# Longest symbol / strategy name kept as a filter key (longer ones are cut).
FILTER_KEY_MAX = 128


class OperationRow(Base):
    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_created_at", "created_at"),
        Index("ix_operations_status_queued_at", "status", "queued_at"),
        # Listings: pick a page (filtered by status and/or type, newest first) from these
        # indexes alone, never touching the rows' large parameters and results.
        Index("ix_operations_listing", "created_at", "id"),
        Index("ix_operations_listing_status", "status", "created_at", "id"),
        Index("ix_operations_listing_type_status", "type", "status", "created_at", "id"),
        # The console's and CLI's symbol / strategy filters, by index instead of a scan
        # of every operation's parameters.
        Index("ix_operations_listing_symbol", "symbol", "created_at", "id"),
        Index("ix_operations_listing_strategy", "strategy", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(OPERATION_ID_MAX), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    params_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX), unique=True)
    worker_id: Mapped[str | None] = mapped_column(String(WORKER_ID_MAX))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # queued_at is the place in the queue (kept on a re-queue); pending_since is when the
    # operation last became pending, so a queue wait never includes an earlier attempt.
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pending_since: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    progress_phase: Mapped[str | None] = mapped_column(String(PHASE_MAX))
    progress_message: Mapped[str | None] = mapped_column(Text)
    items_done: Mapped[int | None] = mapped_column(Integer)
    items_total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What listings show (ktrdr.operations.summary): a listing never reads params/result.
    params_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Filter keys, set once at creation (ktrdr.operations.summary.filter_keys).
    symbol: Mapped[str | None] = mapped_column(String(FILTER_KEY_MAX))
    strategy: Mapped[str | None] = mapped_column(String(FILTER_KEY_MAX))
    error: Mapped[str | None] = mapped_column(Text)
    status_reason: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    traceparent: Mapped[str | None] = mapped_column(String(64))
    # The campaign (sweep / walk-forward) a chunk belongs to; None for top-level work.
    parent_id: Mapped[str | None] = mapped_column(String(64), index=True)


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(WORKER_ID_MAX), primary_key=True)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    url: Mapped[str] = mapped_column(String(WORKER_URL_MAX))
    state: Mapped[str] = mapped_column(String(16), index=True)
    current_operation_id: Mapped[str | None] = mapped_column(String(OPERATION_ID_MAX))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[str | None] = mapped_column(String(VERSION_MAX))
    lost_reason: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the credential issued to the instance that registered last (see
    # ktrdr.credentials); rotated on every registration, never returned by the API.
    credential_hash: Mapped[str | None] = mapped_column(String(64))


class OperationEventRow(Base):
    """What happened to an operation, when: dispatches, phase changes and status changes.

    Written in the same transaction as the change it records, so the timeline can never
    show a dispatch or a re-queue that the operation row does not also show. No foreign
    key: a history row is a log line, and clearing operations must not need it first.
    """

    __tablename__ = "operation_events"
    __table_args__ = (Index("ix_operation_events_operation_id", "operation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # dispatched | phase | status
    kind: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    # phase name for `phase`, the new status for `status`
    name: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class CampaignResultRow(Base):
    """One evaluated parameter set of a campaign. (parent_id, key) is unique, so a chunk
    that runs twice (its worker was killed) can never store a combination twice."""

    __tablename__ = "campaign_results"
    __table_args__ = (UniqueConstraint("parent_id", "key", name="uq_campaign_results_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Reads by campaign use the unique constraint's index (parent_id first).
    parent_id: Mapped[str] = mapped_column(String(64))
    # "17" for combination 17 of a sweep; "w2/17", "w2/oos" inside walk-forward window 2.
    key: Mapped[str] = mapped_column(String(64))
    combination: Mapped[int] = mapped_column(Integer)
    window: Mapped[int | None] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    chunk_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    statistics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Extra per-combination data a chunk returned (compact returns for PBO, OOS equity).
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataDeletionRow(Base):
    """A deleted (symbol, timeframe): the catalog hides every download of it that completed
    before ``deleted_at`` (a later download brings the series back). ``token`` names the
    bar file's parking place while the deletion commits (ktrdr.operations.data_deletion)."""

    __tablename__ = "data_deletions"
    __table_args__ = (Index("ix_data_deletions_key", "symbol", "timeframe"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(16))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    rows: Mapped[int | None] = mapped_column(Integer)
