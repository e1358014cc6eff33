"""Health of the API and its database."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from ktrdr import __version__
from ktrdr.api.deps import WorkersDep

router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    status: str = Field(description="ok, or degraded when the database is unreachable")
    version: str
    database: str = Field(description="ok, or unreachable: <error type>")
    workers_online: int
    uptime_s: float


@router.get("/health", response_model=HealthPublic)
def health(request: Request, workers: WorkersDep, response: Response) -> HealthPublic:
    """API status, database reachability and online workers; 503 if the database is down."""
    database = "ok"
    try:
        with workers.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # reported, not raised: health must always answer
        database = f"unreachable: {type(exc).__name__}"
        response.status_code = 503
    online = workers.store.list_workers() if database == "ok" else []
    return HealthPublic(
        status="ok" if database == "ok" else "degraded",
        version=__version__,
        database=database,
        workers_online=len(online),
        uptime_s=round(time.monotonic() - request.app.state.started_monotonic, 3),
    )
