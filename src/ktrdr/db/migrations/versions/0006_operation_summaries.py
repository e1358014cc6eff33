"""operations.params_summary / result_summary: what listings show, stored once.

Listings read these small columns instead of whole parameters and results (which held
strategy files, CSV text and thousands of trades), and pick their page from covering
indexes. Existing rows are summarised here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from ktrdr.db.migrations.backfill import backfill
from ktrdr.operations.summary import summarise_params, summarise_result

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# A page of a listing is chosen from these alone (covering: filter, order and id).
_LISTING_INDEXES = {
    "ix_operations_listing": ["created_at", "id"],
    "ix_operations_listing_status": ["status", "created_at", "id"],
    "ix_operations_listing_type_status": ["type", "status", "created_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("params_summary", sa.JSON, nullable=True))
        batch.add_column(sa.Column("result_summary", sa.JSON, nullable=True))
    for name, columns in _LISTING_INDEXES.items():
        op.create_index(name, "operations", columns)
    table = sa.table(
        "operations",
        sa.column("id", sa.String),
        sa.column("params", sa.JSON),
        sa.column("result", sa.JSON),
        sa.column("params_summary", sa.JSON),
        sa.column("result_summary", sa.JSON),
    )
    backfill(
        op.get_bind(),
        table,
        ["params", "result"],
        lambda params, result: {
            "params_summary": summarise_params(params or {}),
            "result_summary": summarise_result(result),
        },
    )


def downgrade() -> None:
    for name in _LISTING_INDEXES:
        op.drop_index(name, table_name="operations")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("result_summary")
        batch.drop_column("params_summary")
