"""Backfilling a new column from existing rows, for migrations.

A data migration must not read a large table whole (operations held strategy files, CSV
text and thousands of trades per row): it walks the rows in primary-key order, a batch at
a time, so memory stays bounded by the batch whatever the table holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

BATCH = 500


def backfill(
    bind: Connection,
    table: sa.TableClause,
    read: Sequence[str],
    values_for: Callable[..., dict[str, Any]],
    *,
    batch: int = BATCH,
) -> None:
    """Set each row's new columns to ``values_for(*row[read])``; empty dicts write nothing."""
    key = table.c.id
    columns = [table.c[name] for name in read]
    last = ""
    while True:
        rows = bind.execute(
            sa.select(key, *columns).where(key > last).order_by(key).limit(batch)
        ).all()
        if not rows:
            return
        for row_id, *row in rows:
            values = values_for(*row)
            if values:
                bind.execute(table.update().where(key == row_id).values(**values))
        last = rows[-1][0]
