"""Indexes for the two hot reads: listings (newest first) and the queue (oldest pending).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_operations_created_at", "operations", ["created_at"])
    op.create_index("ix_operations_status_queued_at", "operations", ["status", "queued_at"])


def downgrade() -> None:
    op.drop_index("ix_operations_status_queued_at", table_name="operations")
    op.drop_index("ix_operations_created_at", table_name="operations")
