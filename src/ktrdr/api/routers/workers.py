"""Worker registry endpoints, and Prometheus service discovery of live workers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ktrdr.api.auth import ReadAccess, WorkerInstanceAuth
from ktrdr.api.deps import WorkerAuth, WorkersDep
from ktrdr.api.params import WorkerIdPath
from ktrdr.api.state_reader import visible_workers
from ktrdr.registry.schemas import (
    Heartbeat,
    HeartbeatReply,
    RegistrationReply,
    WorkerRegistration,
    WorkersPublic,
)

router = APIRouter(tags=["workers"])


@router.post("/workers/register", dependencies=[WorkerAuth], response_model=RegistrationReply)
def register(body: WorkerRegistration, workers: WorkersDep) -> RegistrationReply:
    """Register (or re-register) a worker; the reply carries this instance's credential."""
    return workers.register(body)


@router.post(
    "/workers/{worker_id}/heartbeat",
    dependencies=[WorkerInstanceAuth],
    response_model=HeartbeatReply,
)
def heartbeat(worker_id: WorkerIdPath, body: Heartbeat, workers: WorkersDep) -> HeartbeatReply:
    """Liveness and progress; 401/404 tell the worker to register again."""
    return workers.heartbeat(worker_id, body)


@router.delete("/workers/{worker_id}", dependencies=[WorkerInstanceAuth], status_code=204)
def deregister(worker_id: WorkerIdPath, workers: WorkersDep) -> None:
    """A worker leaving cleanly; its operation, if any, is re-queued."""
    workers.deregister(worker_id)


@router.get("/workers", dependencies=[ReadAccess], response_model=WorkersPublic)
def list_workers(
    workers: WorkersDep, include_gone: Annotated[bool, Query()] = False
) -> WorkersPublic:
    """Registered workers (online ones unless include_gone=true)."""
    items = workers.list_workers(include_gone=include_gone)
    return WorkersPublic(data=items, count=len(items))


class TargetGroup(BaseModel):
    """One entry of Prometheus' HTTP service-discovery format."""

    targets: list[str] = Field(description="host:port to scrape")
    labels: dict[str, str] = Field(description="worker_id and worker_kind")


@router.get("/sd/workers", response_model=list[TargetGroup])
def service_discovery(workers: WorkersDep) -> list[TargetGroup]:
    """Prometheus HTTP service discovery: online workers, and lost ones for an hour.

    Keeping a lost worker listed for a while lets its `up` series show 0 (a red cell on
    the health matrix) instead of silently vanishing; a clean deregistration drops it.
    Only labels fixed for a worker's life: its state is the `ktrdr_worker_state` metric
    (a state label here split one worker into an "online" and a "lost" series).
    """
    groups = []
    for worker in visible_workers(workers.list_workers(include_gone=True), datetime.now(UTC)):
        labels = {
            "worker_id": worker.id,
            "worker_kind": ",".join(sorted(k.value for k in worker.kinds)),
        }
        groups.append(TargetGroup(targets=[urlsplit(worker.url).netloc], labels=labels))
    return groups
