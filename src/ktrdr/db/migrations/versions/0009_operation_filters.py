"""operations.symbol / strategy: the listing filters' keys, indexed.

Filtering a listing by symbol or strategy used to read every operation's parameters (a
JSON extraction, and a LIKE over pasted strategy files); these columns are set once at
creation and picked from indexes like the status and type filters. Existing rows get
theirs here.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from ktrdr.db.migrations.backfill import backfill
from ktrdr.db.tables import FILTER_KEY_MAX
from ktrdr.operations.summary import filter_keys

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 500
_INDEXES = {
    "ix_operations_listing_symbol": ["symbol", "created_at", "id"],
    "ix_operations_listing_strategy": ["strategy", "created_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("symbol", sa.String(FILTER_KEY_MAX), nullable=True))
        batch.add_column(sa.Column("strategy", sa.String(FILTER_KEY_MAX), nullable=True))
    for name, columns in _INDEXES.items():
        op.create_index(name, "operations", columns)
    table = sa.table(
        "operations",
        sa.column("id", sa.String),
        sa.column("params", sa.JSON),
        sa.column("symbol", sa.String),
        sa.column("strategy", sa.String),
    )
    # Only rows with a key get a write: most operations (downloads, diagnostics) have none.
    backfill(
        op.get_bind(),
        table,
        ["params"],
        lambda params: {k: v for k, v in filter_keys(params or {}, FILTER_KEY_MAX).items() if v},
    )


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="operations")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("strategy")
        batch.drop_column("symbol")
