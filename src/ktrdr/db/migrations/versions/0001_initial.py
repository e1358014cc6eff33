"""Operations store and worker registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from ktrdr.db.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("worker_id", sa.String(200)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("queued_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("completed_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("progress_percent", sa.Float, nullable=False),
        sa.Column("progress_phase", sa.String(64)),
        sa.Column("progress_message", sa.Text),
        sa.Column("items_done", sa.Integer),
        sa.Column("items_total", sa.Integer),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("status_reason", sa.Text),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("traceparent", sa.String(64)),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("kinds", sa.JSON, nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("current_operation_id", sa.String(64)),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime, nullable=False),
        sa.Column("last_assigned_at", UTCDateTime),
        sa.Column("version", sa.String(32)),
        sa.Column("lost_reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("operations")
