"""Per-type start routes (the seed's `POST /backtests/start` and its siblings)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ktrdr.api.auth import Operator
from ktrdr.api.deps import OperationsDep
from ktrdr.api.routers.operations import IdempotencyKey, create_operation
from ktrdr.jobs.backtest import BacktestParams
from ktrdr.jobs.data_download import DataDownloadParams
from ktrdr.jobs.diagnostic import DiagnosticParams
from ktrdr.jobs.training import TrainingParams
from ktrdr.operations.model import OperationType
from ktrdr.operations.schemas import OperationPublic

router = APIRouter(tags=["start"])


@router.post("/diagnostics/start", status_code=202, response_model=OperationPublic)
async def start_diagnostic(
    body: DiagnosticParams, service: OperationsDep, who: Operator, key: IdempotencyKey = None
) -> Response:
    """Queue a diagnostic operation (platform self-test: N steps of M ms, can fail on purpose)."""
    return await create_operation(
        service, OperationType.DIAGNOSTIC, body.model_dump(mode="json"), key, who
    )


@router.post("/backtests/start", status_code=202, response_model=OperationPublic)
async def start_backtest(
    body: BacktestParams, service: OperationsDep, who: Operator, key: IdempotencyKey = None
) -> Response:
    """Queue a backtest; a bad strategy, date range or missing data is a 4xx at once."""
    return await create_operation(
        service, OperationType.BACKTESTING, body.model_dump(mode="json"), key, who
    )


@router.post("/data/downloads/start", status_code=202, response_model=OperationPublic)
async def start_data_download(
    body: DataDownloadParams, service: OperationsDep, who: Operator, key: IdempotencyKey = None
) -> Response:
    """Queue a data download (synthetic, Yahoo, or a CSV's text) into the data store."""
    return await create_operation(
        service, OperationType.DATA_DOWNLOAD, body.model_dump(mode="json"), key, who
    )


@router.post("/training/start", status_code=202, response_model=OperationPublic)
async def start_training(
    body: TrainingParams, service: OperationsDep, who: Operator, key: IdempotencyKey = None
) -> Response:
    """Queue a training run: a model on the strategy's fuzzy memberships, saved versioned."""
    return await create_operation(
        service, OperationType.TRAINING, body.model_dump(mode="json"), key, who
    )
