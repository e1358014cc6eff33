"""The API's database disappears (real PostgreSQL): clear 503s, no 500s, health says so."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import _postgres_reason
from tests.support.stack import StackFactory

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def test_lost_database_gives_503_with_retry_advice(stack_factory: StackFactory) -> None:
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"ktrdr_outage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    _, api = stack_factory.start(workers=0, env={"KTRDR_DATABASE_URL": url})
    assert api.http.get("/operations").status_code == 200

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    listing = api.http.get("/operations")
    assert listing.status_code == 503
    assert "database is unreachable" in listing.json()["detail"]
    assert listing.headers["retry-after"] == "5"
    create = api.http.post("/diagnostics/start", json={"steps": 1})
    assert create.status_code == 503
    health = api.http.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
