"""JSON error responses shared by the API and the workers: `{"detail": "..."}` that a
person can act on; validation errors list each field; nothing leaks a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ktrdr.validation_messages import field_problems, summarise

log = logging.getLogger(__name__)


def install_error_handlers(
    app: FastAPI, status_by_error: Mapping[type[Exception], int] | None = None
) -> None:
    """JSON errors everywhere; `status_by_error` maps domain exceptions to 4xx codes."""
    for error_type, status in (status_by_error or {}).items():

        def handler(_request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        app.add_exception_handler(error_type, handler)

    @app.exception_handler(RequestValidationError)
    def validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = field_problems(exc.errors())
        return JSONResponse(
            {"detail": summarise("request", problems), "errors": problems}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged with the traceback; the client gets one line, not a stack.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); see the service log"},
            status_code=500,
        )
