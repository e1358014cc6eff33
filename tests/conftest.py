"""Shared fixtures: free ports, a throw-away PostgreSQL database, the local stack."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.s3 import S3Server  # noqa: E402
from tests.support.stack import StackFactory  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_reason() -> str | None:
    """None if the server answers, else why not (shown as the skip reason)."""
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return None
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432 (database test) not reachable: {exc}"


def _scratch_database() -> Iterator[str]:
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"ktrdr_test_{uuid.uuid4().hex[:10]}"
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database on the machine's PostgreSQL server for the session, dropped afterwards.
    Shared: store tests empty its tables first."""
    yield from _scratch_database()


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """A database of its own for one test module (a stack shared by its tests)."""
    yield from _scratch_database()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own for one test (a stack must not meet another's workers)."""
    yield from _scratch_database()


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[StackFactory]:
    """Starts the real API and workers as processes on free ports; stops them after."""
    factory = StackFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (moto's standalone server) for the session; tests take
    a bucket of their own from it (``new_bucket``)."""
    server = S3Server(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()
