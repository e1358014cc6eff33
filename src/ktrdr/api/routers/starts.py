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
def start_diagnostic(
    body: DiagnosticParams,
    service: OperationsDep,
    response: Response,
    who: Operator,
    key: IdempotencyKey = None,
) -> OperationPublic:
    """Queue a diagnostic operation (platform self-test: N steps of M ms, can fail on purpose)."""
    return create_operation(
        service, OperationType.DIAGNOSTIC, body.model_dump(mode="json"), key, response, who
    )


@router.post("/backtests/start", status_code=202, response_model=OperationPublic)
def start_backtest(
    body: BacktestParams,
    service: OperationsDep,
    response: Response,
    who: Operator,
    key: IdempotencyKey = None,
) -> OperationPublic:
    """Queue a backtest; a bad strategy, date range or missing data is a 4xx at once."""
    return create_operation(
        service, OperationType.BACKTESTING, body.model_dump(mode="json"), key, response, who
    )


@router.post("/data/downloads/start", status_code=202, response_model=OperationPublic)
def start_data_download(
    body: DataDownloadParams,
    service: OperationsDep,
    response: Response,
    who: Operator,
    key: IdempotencyKey = None,
) -> OperationPublic:
    """Queue a data download (synthetic, Yahoo, or a CSV's text) into the data store."""
    return create_operation(
        service, OperationType.DATA_DOWNLOAD, body.model_dump(mode="json"), key, response, who
    )


@router.post("/training/start", status_code=202, response_model=OperationPublic)
def start_training(
    body: TrainingParams,
    service: OperationsDep,
    response: Response,
    who: Operator,
    key: IdempotencyKey = None,
) -> OperationPublic:
    """Queue a training run: a model on the strategy's fuzzy memberships, saved versioned."""
    return create_operation(
        service, OperationType.TRAINING, body.model_dump(mode="json"), key, response, who
    )
