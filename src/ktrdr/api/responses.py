"""An operation's record as the JSON response of the hot routes, serialised once.

Returned as a model, FastAPI validated the record against the route's response model
again (a copy of every field) and then serialised it: a tenth of the API's CPU on a
start or a long-poll read. The record is an ``OperationPublic`` already; the routes keep
``response_model=OperationPublic`` for the OpenAPI document.
"""

from __future__ import annotations

from fastapi import Response

from ktrdr.operations.schemas import OperationPublic


def operation_json(
    operation: OperationPublic, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        operation.model_dump_json(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
