"""Campaigns: start sweeps and walk-forwards; read a campaign's results table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ktrdr.api.auth import Operator, ReadAccess
from ktrdr.api.deps import OperationsDep
from ktrdr.api.routers.operations import IdempotencyKey, create_operation
from ktrdr.campaigns.service import ResultsPage, results_page
from ktrdr.jobs.campaigns import SweepParams, WalkforwardParams
from ktrdr.operations.model import OperationType
from ktrdr.operations.schemas import OperationPublic

router = APIRouter(tags=["campaigns"])


@router.post("/sweeps/start", status_code=202, response_model=OperationPublic)
async def start_sweep(
    body: SweepParams, service: OperationsDep, who: Operator, key: IdempotencyKey = None
) -> Response:
    """Queue a sweep of the strategy's search space (grid, random or TPE) over workers."""
    return await create_operation(
        service, OperationType.SWEEP, body.model_dump(mode="json"), key, who
    )


@router.post("/walkforwards/start", status_code=202, response_model=OperationPublic)
async def start_walkforward(
    body: WalkforwardParams, service: OperationsDep, who: Operator, key: IdempotencyKey = None
) -> Response:
    """Queue a walk-forward: sweep in sample per window, run the best out of sample."""
    return await create_operation(
        service, OperationType.WALKFORWARD, body.model_dump(mode="json"), key, who
    )


@router.get(
    "/operations/{operation_id}/sweep-results",
    dependencies=[ReadAccess],
    response_model=ResultsPage,
)
def sweep_results(
    operation_id: str,
    service: OperationsDep,
    sort: Annotated[
        str | None, Query(description="objective or statistic; default: the campaign's objective")
    ] = None,
    order: Annotated[
        str | None, Query(pattern="^(asc|desc)$", description="default: best first")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    stage: Annotated[str | None, Query(pattern="^(sweep|in_sample|out_of_sample)$")] = None,
    window: Annotated[int | None, Query(ge=0)] = None,
) -> ResultsPage:
    """A campaign's evaluated parameter sets, sorted (best first by default), paged."""
    return results_page(
        service.store, operation_id, sort=sort, order=order, limit=limit, offset=offset,
        stage=stage, window=window,
    )  # fmt: skip
