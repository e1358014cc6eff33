"""workers.credential_hash: each registered worker instance has a credential of its own.

The shared worker token admitted every report from anyone holding it; now registration
issues a random credential per instance and only its hash is stored here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get NULL: such a worker's next heartbeat is refused with 401 and it
    # registers again, which issues its credential.
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("credential_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("credential_hash")
