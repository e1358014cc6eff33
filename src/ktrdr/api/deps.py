"""FastAPI dependencies: the services live on app.state, built once in the lifespan."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ktrdr.config import ApiSettings
from ktrdr.dispatch.dispatcher import Dispatcher
from ktrdr.operations.service import OperationService
from ktrdr.registry.service import WorkerService


def _operations(request: Request) -> OperationService:
    service: OperationService = request.app.state.operations
    return service


def _workers(request: Request) -> WorkerService:
    service: WorkerService = request.app.state.workers
    return service


def _dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


OperationsDep = Annotated[OperationService, Depends(_operations)]
WorkersDep = Annotated[WorkerService, Depends(_workers)]
DispatcherDep = Annotated[Dispatcher, Depends(_dispatcher)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]


def require_worker_token(request: Request) -> None:
    """Only holders of the shared token may register workers or report on operations."""
    settings: ApiSettings = request.app.state.settings
    if not settings.api_token:
        return  # local mode, warned about at start-up
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token, settings.api_token):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong worker token: send 'Authorization: Bearer <KTRDR_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


WorkerAuth = Depends(require_worker_token)
