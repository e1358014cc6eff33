"""operations.pending_since: when an operation last became pending.

Queue wait was measured from queued_at, which a re-queue keeps (the operation keeps its
place), so a re-queued operation's wait included its lost first attempt.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from ktrdr.db.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite cannot make a column NOT NULL in place.
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("pending_since", UTCDateTime, nullable=True))
    # Existing rows: the best known answer is their place in the queue.
    op.execute("UPDATE operations SET pending_since = queued_at")
    with op.batch_alter_table("operations") as batch:
        batch.alter_column("pending_since", existing_type=UTCDateTime, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("pending_since")
