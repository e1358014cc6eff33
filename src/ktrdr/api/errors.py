"""The backend's domain errors and the HTTP status each one gets."""

from __future__ import annotations

from fastapi import FastAPI

from ktrdr import http_errors
from ktrdr.jobs.specs import ParamsError
from ktrdr.operations.model import IllegalTransition
from ktrdr.operations.store import IdempotencyConflict, OperationNotFound, StaleReport
from ktrdr.workers.service import WorkerNotRegistered

STATUS_BY_ERROR: dict[type[Exception], int] = {
    OperationNotFound: 404,
    WorkerNotRegistered: 404,
    ParamsError: 422,
    IllegalTransition: 409,
    IdempotencyConflict: 409,
    StaleReport: 409,
}


def install_error_handlers(app: FastAPI) -> None:
    http_errors.install_error_handlers(app, STATUS_BY_ERROR)
