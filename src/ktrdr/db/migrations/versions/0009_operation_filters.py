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
    bind = op.get_bind()
    last = ""
    while True:
        rows = bind.execute(
            sa.select(table.c.id, table.c.params)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for row_id, params in rows:
            keys = filter_keys(params or {}, FILTER_KEY_MAX)
            if any(keys.values()):
                bind.execute(table.update().where(table.c.id == row_id).values(**keys))
        last = rows[-1][0]


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="operations")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("strategy")
        batch.drop_column("symbol")
