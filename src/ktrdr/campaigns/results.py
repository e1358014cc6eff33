"""The results table of campaigns: one row per evaluated parameter set.

Inserts are idempotent (`ON CONFLICT (parent_id, key) DO NOTHING`): a chunk whose worker
was killed runs again, and a result collected twice (a backend restart mid-collection)
still leaves every combination stored exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from ktrdr.db.tables import CampaignResultRow
from ktrdr.operations.store import Store


class CampaignResult(BaseModel):
    """One evaluated parameter set as the API returns it."""

    key: str
    combination: int
    window: int | None
    stage: str
    chunk_id: str
    params: dict[str, Any]
    statistics: dict[str, Any]
    extra: dict[str, Any] | None = None


_t = CampaignResultRow.__table__
_COLUMNS = (_t.c.key, _t.c.combination, _t.c.window, _t.c.stage, _t.c.chunk_id, _t.c.params,
            _t.c.statistics, _t.c.extra)  # fmt: skip
_FIELDS = tuple(c.name for c in _COLUMNS)


class CampaignResults:
    def __init__(self, store: Store):
        self.store = store

    def insert(
        self, parent_id: str, chunk_id: str, rows: Sequence[dict[str, Any]], now: datetime
    ) -> int:
        """Store a chunk's results; returns how many were new."""
        if not rows:
            return 0
        values = [
            {
                "parent_id": parent_id,
                "chunk_id": chunk_id,
                "key": r["key"],
                "combination": r["index"],
                "window": r.get("window"),
                "stage": r.get("stage", "sweep"),
                "params": r["params"],
                "statistics": r["statistics"],
                "extra": r.get("extra"),
                "created_at": now,
            }
            for r in rows
        ]
        dialect = self.store.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # RETURNING gives the rows that were new (rowcount is not reliable for a multi-row
        # insert); a Core statement on one connection, no ORM unit of work per row.
        statement = (
            insert(CampaignResultRow).on_conflict_do_nothing(index_elements=["parent_id", "key"])
            .returning(CampaignResultRow.key)
        )  # fmt: skip
        with self.store.engine.begin() as conn:
            return len(conn.execute(statement, values).all())

    def list(
        self, parent_id: str, *, stage: str | None = None, window: int | None = None
    ) -> list[CampaignResult]:
        """In combination order. Rows as stored (the chunk runner's, validated when the
        chunk's report was): built without validating them again, read with Core (no ORM
        objects), since a sweep's summary reads them all once its last chunk is in."""
        conditions = [_t.c.parent_id == parent_id]
        if stage is not None:
            conditions.append(_t.c.stage == stage)
        if window is not None:
            conditions.append(_t.c.window == window)
        query = select(*_COLUMNS).where(*conditions).order_by(_t.c.window, _t.c.combination)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [CampaignResult.model_construct(**dict(zip(_FIELDS, r, strict=True))) for r in rows]

    def collected_chunks(self, parent_id: str) -> set[str]:
        """Chunks whose results are stored (a chunk's results arrive in one insert)."""
        with self.store.session() as session:
            return set(
                session.scalars(
                    select(CampaignResultRow.chunk_id)
                    .where(CampaignResultRow.parent_id == parent_id)
                    .distinct()
                ).all()
            )

    def count(self, parent_id: str, *, stage: str | None = None) -> int:
        conditions = [CampaignResultRow.parent_id == parent_id]
        if stage is not None:
            conditions.append(CampaignResultRow.stage == stage)
        with self.store.session() as session:
            total = session.scalar(
                select(func.count()).select_from(CampaignResultRow).where(*conditions)
            )
            return int(total or 0)
