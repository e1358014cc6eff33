"""FastAPI dependencies: the services live on app.state, built once in the lifespan.

`async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, one
hop (a thread and the interpreter lock to wait for) per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ktrdr.api import auth
from ktrdr.artifacts import ArtifactStore
from ktrdr.config import ApiSettings
from ktrdr.dispatch.dispatcher import Dispatcher
from ktrdr.operations.service import OperationService
from ktrdr.registry.service import WorkerService


async def _operations(request: Request) -> OperationService:
    service: OperationService = request.app.state.operations
    return service


async def _workers(request: Request) -> WorkerService:
    service: WorkerService = request.app.state.workers
    return service


async def _dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


async def _artifacts(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.artifacts
    return store


async def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


OperationsDep = Annotated[OperationService, Depends(_operations)]
WorkersDep = Annotated[WorkerService, Depends(_workers)]
DispatcherDep = Annotated[Dispatcher, Depends(_dispatcher)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
ArtifactsDep = Annotated[ArtifactStore, Depends(_artifacts)]


# Credentials live in one module; re-exported here where the routes have always found it.
WorkerAuth = auth.WorkerAuth
