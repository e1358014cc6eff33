"""Typed errors of the KTRDR client: each carries the API's own message (`detail`)."""

from __future__ import annotations

from typing import Any


class KtrdrError(Exception):
    """Base of every client error; `message` is the API's text, ready to show a person."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class ConnectionFailed(KtrdrError):
    """The API could not be reached, even after the retries."""


class ApiError(KtrdrError):
    """The API answered with an error status."""


class BadRequest(ApiError):
    """400: the request cannot be served as sent."""


class ValidationFailed(BadRequest):
    """422: the parameters were rejected; `errors` lists each field's problem."""

    @property
    def errors(self) -> list[Any]:
        found = self.body.get("errors") if isinstance(self.body, dict) else None
        return list(found or [])


class Unauthorized(ApiError):
    """401: no API key or a wrong one (set KTRDR_API_KEY or pass api_key=)."""


class Forbidden(ApiError):
    """403: the key lacks the scope (read / operate) this call needs."""


class NotFound(ApiError):
    """404: no such operation, worker or result part."""


class Conflict(ApiError):
    """409: the operation is in the wrong state (e.g. results before it completed)."""


class ServerError(ApiError):
    """5xx: the API failed; its log has the details."""


class OperationFailed(KtrdrError):
    """A followed operation ended failed or cancelled; `operation` is its last record."""

    def __init__(self, message: str, operation: Any):
        super().__init__(message)
        self.operation = operation


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
}


def error_for(status: int, body: Any, text: str) -> ApiError:
    """The typed error for an error response; the message is the API's `detail`."""
    detail = body.get("detail") if isinstance(body, dict) else None
    message = str(detail) if detail else (text[:300] or f"HTTP {status}")
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(message, status, body)
