"""Alembic environment: runs on the connection handed in by ktrdr.db.engine.upgrade_schema,
or on KTRDR_DATABASE_URL when run from the alembic command line."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from ktrdr.db.tables import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = os.environ.get("KTRDR_DATABASE_URL")
    if not url:
        raise SystemExit("set KTRDR_DATABASE_URL to run migrations from the command line")
    with create_engine(url).begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
