"""Data deletions: the catalog's record of deleted (symbol, timeframe) series.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from ktrdr.db.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_deletions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("deleted_at", UTCDateTime, nullable=False),
        sa.Column("token", sa.String(32), nullable=False, unique=True),
        sa.Column("rows", sa.Integer, nullable=True),
    )
    op.create_index("ix_data_deletions_key", "data_deletions", ["symbol", "timeframe"])


def downgrade() -> None:
    op.drop_index("ix_data_deletions_key", table_name="data_deletions")
    op.drop_table("data_deletions")
