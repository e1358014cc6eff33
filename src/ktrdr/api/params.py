"""Path parameters every route shares: ids are checked here, once, against what the
store can hold (length of the column, no NUL or control characters), so a bad id is a
422 naming it rather than a 500 from the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

from ktrdr.bounds import OperationId, WorkerId, json_problem

OperationIdPath = Annotated[
    OperationId, Path(description="operation id, e.g. op_backtesting_20260101_120000_1a2b3c4d")
]
WorkerIdPath = Annotated[WorkerId, Path(description="the worker's stable id, e.g. host-5003")]


def _storable_text(value: str) -> str:
    problem = json_problem(value)
    if problem:
        raise ValueError(problem.removeprefix("value: "))
    return value


# Free text in a query (a filter compared in SQL): no NUL, which PostgreSQL refuses.
QueryText = Annotated[str, AfterValidator(_storable_text)]
