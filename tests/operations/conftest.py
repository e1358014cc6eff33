"""One migrated store per test, on SQLite and on PostgreSQL (the shared test database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr.db.engine import make_engine, upgrade_schema
from ktrdr.db.tables import Base
from ktrdr.operations.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ktrdr.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade_schema(engine)
    # The PostgreSQL database is shared by the session: every test starts from empty tables.
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    yield Store(engine)
    engine.dispose()
