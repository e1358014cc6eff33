"""KTRDR from Python: a typed client of the API (sync and async), results as pandas.

    from ktrdr.client import KtrdrClient
    with KtrdrClient() as k:                      # KTRDR_API_URL, KTRDR_API_KEY
        result = k.run_backtest("sma_crossover", symbol="EURUSD", progress=True)
        result.trades, result.equity, result.stats

It imports nothing of the backend or the engine (tests/test_boundaries.py)."""

from ktrdr.client.aio import AsyncKtrdrClient
from ktrdr.client.campaigns import SweepResult, WalkforwardResult
from ktrdr.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    KtrdrError,
    NotFound,
    OperationFailed,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from ktrdr.client.models import Dataset, DeletedData, Operation, OperationPage, Progress, Worker
from ktrdr.client.results import BacktestResult
from ktrdr.client.sync import KtrdrClient

__all__ = [
    "ApiError",
    "AsyncKtrdrClient",
    "BacktestResult",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Dataset",
    "DeletedData",
    "Forbidden",
    "KtrdrClient",
    "KtrdrError",
    "NotFound",
    "Operation",
    "OperationFailed",
    "OperationPage",
    "Progress",
    "ServerError",
    "SweepResult",
    "Unauthorized",
    "ValidationFailed",
    "WalkforwardResult",
    "Worker",
]
