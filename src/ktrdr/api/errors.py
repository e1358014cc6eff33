"""The backend's domain errors and the HTTP status each one gets."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from ktrdr import http_errors
from ktrdr.artifacts import ArtifactCorrupt, ArtifactNotFound, ArtifactUnavailable
from ktrdr.jobs.specs import ParamsError
from ktrdr.operations.data_deletion import DataInUse, DatasetNotFound
from ktrdr.operations.model import IllegalTransition
from ktrdr.operations.results import NoSuchPart
from ktrdr.operations.store import IdempotencyConflict, OperationNotFound, StaleReport
from ktrdr.registry.service import (
    WorkerCredentialRequired,
    WorkerNotRegistered,
    WrongWorkerCredential,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[Exception], int] = {
    OperationNotFound: 404,
    WorkerNotRegistered: 404,
    WorkerCredentialRequired: 401,
    WrongWorkerCredential: 403,
    ParamsError: 422,
    IllegalTransition: 409,
    IdempotencyConflict: 409,
    StaleReport: 409,
    NoSuchPart: 404,
    DatasetNotFound: 404,
    DataInUse: 409,
    # A referenced artifact that is gone or damaged is the store's fault, not the client's.
    ArtifactNotFound: 410,
    ArtifactCorrupt: 500,
    # The object store is down or refuses us: retry later (not a bug, not the client).
    ArtifactUnavailable: 503,
}


def install_error_handlers(app: FastAPI) -> None:
    http_errors.install_error_handlers(app, STATUS_BY_ERROR)

    @app.exception_handler(OperationalError)
    def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        # Not the client's fault and not a bug: say so, and that a retry will do.
        log.error("database error on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse(
            {"detail": "the operations database is unreachable; retry shortly (see the API log)"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
