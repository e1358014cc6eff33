"""Campaigns: operations.parent_id (a chunk knows its sweep) and the results table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from ktrdr.db.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(64), nullable=True))
    op.create_index("ix_operations_parent_id", "operations", ["parent_id"])
    op.create_table(
        "campaign_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("parent_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("combination", sa.Integer, nullable=False),
        sa.Column("window", sa.Integer, nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("chunk_id", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("statistics", sa.JSON, nullable=False),
        sa.Column("extra", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("parent_id", "key", name="uq_campaign_results_key"),
    )


def downgrade() -> None:
    op.drop_table("campaign_results")
    op.drop_index("ix_operations_parent_id", table_name="operations")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("parent_id")
