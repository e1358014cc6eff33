"""Reading campaigns for the API (no HTTP in here)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ktrdr.campaigns.ranking import sorted_by, statistics_key
from ktrdr.campaigns.results import CampaignResult, CampaignResults
from ktrdr.jobs.campaigns import CampaignSettings
from ktrdr.jobs.specs import ParamsError
from ktrdr.operations.model import CAMPAIGN_TYPES
from ktrdr.operations.store import Store


class ResultsPage(BaseModel):
    operation_id: str
    sort: str
    statistic: str = Field(description="the statistics key sorted by")
    order: str
    data: list[CampaignResult]
    count: int = Field(description="results stored so far (matching stage/window)")
    limit: int
    offset: int


def results_page(
    store: Store,
    operation_id: str,
    *,
    sort: str | None,
    order: str | None,
    limit: int,
    offset: int,
    stage: str | None = None,
    window: int | None = None,
) -> ResultsPage:
    op = store.get_operation(operation_id)
    if op.type not in CAMPAIGN_TYPES:
        raise ParamsError(
            f"operation {operation_id} is a {op.type.value}, not a sweep or walk-forward; "
            "sweep results exist only for campaigns (`ktrdr ops list --type sweep`)"
        )
    settings = CampaignSettings.model_validate(
        {k: v for k, v in op.params.items() if k in CampaignSettings.model_fields}
    )
    sort = sort or settings.objective
    if order is None:
        rule = settings.objective_rule
        maximize = rule.direction == "maximize" or sort != settings.objective
        order = "desc" if maximize else "asc"
    rows = CampaignResults(store).list(operation_id, stage=stage, window=window)
    try:
        statistic = statistics_key(sort)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None
    ordered = sorted_by(rows, sort, descending=order == "desc")
    return ResultsPage(
        operation_id=operation_id, sort=sort, statistic=statistic, order=order,
        data=ordered[offset : offset + limit], count=len(rows), limit=limit, offset=offset,
    )  # fmt: skip
