"""`KtrdrClient`: the blocking client (scripts, notebooks)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ktrdr.client import calls
from ktrdr.client.calls import Call, body_of, operation_id
from ktrdr.client.campaigns import SweepResult, WalkforwardResult
from ktrdr.client.models import Dataset, DeletedData, Operation, OperationPage, Worker
from ktrdr.client.progress import Follower
from ktrdr.client.results import BacktestResult

T = TypeVar("T")
OpRef = str | Operation


class KtrdrClient:
    """Typed client of the KTRDR API.

    `base_url` defaults to KTRDR_API_URL (else http://127.0.0.1:8000) and `api_key` to
    KTRDR_API_KEY, sent as `Authorization: Bearer`. Connection errors are retried
    `retries` times with exponential backoff from `backoff_s`; starts carry an
    idempotency key so a retried start never queues a second operation."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ):
        self.settings = calls.Settings.resolve(base_url, api_key, timeout_s, retries, backoff_s)
        self._http = httpx.Client(transport=transport, **self.settings.http_options())

    def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
            except httpx.TransportError as exc:
                time.sleep(self.settings.retry_delay_s(call, exc, attempt))
                attempt += 1
                continue
            return calls.finish(call, response)

    # ----------------------------------------------------------------- operations

    def start(
        self, op_type: str, params: dict[str, Any], *, idempotency_key: str | None = None
    ) -> Operation:
        """Queue an operation of any type with its parameters."""
        return self.send(calls.start(op_type, params, idempotency_key))

    def start_backtest(
        self,
        strategy: str,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        capital: float | None = None,
        commission: float | None = None,
        slippage: float | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Queue a backtest of an example strategy's name or a strategy YAML text."""
        params = body_of(
            strategy=strategy, symbol=symbol, timeframe=timeframe, start=start, end=end,
            capital=capital, commission=commission, slippage=slippage,
        )  # fmt: skip
        return self.start("backtesting", params, idempotency_key=idempotency_key)

    def start_training(
        self, strategy: str, *, idempotency_key: str | None = None, **params: Any
    ) -> Operation:
        """Queue a training run (see the API's TrainingParams for the options)."""
        body = body_of(strategy=strategy, **params)
        return self.start("training", body, idempotency_key=idempotency_key)

    def start_data_download(
        self,
        symbol: str,
        timeframe: str,
        *,
        provider: str = "synthetic",
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Operation:
        """Queue a data download (synthetic, yahoo, or csv with csv_text=...)."""
        body = body_of(symbol=symbol, timeframe=timeframe, provider=provider, **params)
        return self.start("data_download", body, idempotency_key=idempotency_key)

    def operations(
        self,
        *,
        status: list[str] | str | None = None,
        type: list[str] | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> OperationPage:
        """Operations newest first; items may be summaries, `get()` has the full record."""
        return self.send(calls.list_operations(status, type, limit, offset))

    def get(self, operation: OpRef) -> Operation:
        return self.send(calls.get_operation(operation_id(operation)))

    def cancel(self, operation: OpRef) -> Operation:
        """Cancel a pending or running operation (Conflict if it has already ended)."""
        return self.send(calls.cancel(operation_id(operation)))

    def follow(
        self,
        operation: OpRef,
        *,
        progress: bool = False,
        poll_s: float = 0.25,
        timeout_s: float | None = None,
    ) -> Iterator[Operation]:
        """Yield the operation at each change until it ends; `progress=True` draws a bar."""
        follower = Follower(bar=progress, timeout_s=timeout_s, poll_s=poll_s)
        try:
            while True:
                op = self.get(operation)
                if follower.changed(op):
                    yield op
                if op.done:
                    return
                follower.check_deadline(op)
                time.sleep(follower.poll_s)
        finally:
            follower.close()

    def wait(
        self, operation: OpRef, *, progress: bool = False, timeout_s: float | None = None
    ) -> Operation:
        """The completed operation; OperationFailed if it failed or was cancelled."""
        last = None
        for op in self.follow(operation, progress=progress, timeout_s=timeout_s):
            last = op
        assert last is not None  # follow yields at least once
        return calls.ensure_completed(last)

    def results(self, operation: OpRef, part: str | None = None) -> Any:
        """The stored result (or one top-level part of it) of a completed operation."""
        return self.send(calls.results(operation_id(operation), part))

    def backtest_result(self, operation: OpRef) -> BacktestResult:
        op = self.get(operation)
        stats, trades, equity = (self.results(op.id, part) for part in calls.BACKTEST_PARTS)
        return BacktestResult(op, stats, trades, equity)

    def run_backtest(
        self, strategy: str, *, progress: bool = False, timeout_s: float | None = None, **kw: Any
    ) -> BacktestResult:
        """Start a backtest, wait for it, and return its result."""
        op = self.start_backtest(strategy, **kw)
        return self.backtest_result(self.wait(op, progress=progress, timeout_s=timeout_s))

    # ---------------------------------------------------- sweeps and walk-forwards

    def start_sweep(
        self, strategy: str, *, idempotency_key: str | None = None, **params: Any
    ) -> Operation:
        """Queue a sweep of a strategy YAML's `search:` space (method, trials, objective,
        min_trades, symbol, start, end, ...: the API's SweepParams)."""
        body = body_of(strategy=strategy, **params)
        return self.start("sweep", body, idempotency_key=idempotency_key)

    def start_walkforward(
        self,
        strategy: str,
        *,
        train_bars: int,
        test_bars: int,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Operation:
        """Queue a walk-forward: sweep in sample per window, run the best out of sample."""
        body = body_of(strategy=strategy, train_bars=train_bars, test_bars=test_bars, **params)
        return self.start("walkforward", body, idempotency_key=idempotency_key)

    def sweeps(self, *, status: list[str] | str | None = None, limit: int = 50) -> OperationPage:
        return self.operations(status=status, type="sweep", limit=limit)

    def walkforwards(
        self, *, status: list[str] | str | None = None, limit: int = 50
    ) -> OperationPage:
        return self.operations(status=status, type="walkforward", limit=limit)

    def sweep_rows(
        self, operation: OpRef, *, sort: str | None = None, stage: str | None = None,
        window: int | None = None, page_size: int = calls.RESULTS_PAGE_MAX,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Every evaluated parameter set of a campaign, as the API orders them (all pages)."""
        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = self.send(
                calls.sweep_results(
                    operation_id(operation), sort=sort, stage=stage, window=window,
                    limit=page_size, offset=offset,
                )
            )  # fmt: skip
            rows += page["data"]
            offset = calls.next_offset(page)
        return rows

    def sweep_result(self, operation: OpRef) -> SweepResult:
        op = calls.ensure_campaign(self.get(operation), "sweep")
        return SweepResult(op, self.sweep_rows(op.id))

    def walkforward_result(self, operation: OpRef) -> WalkforwardResult:
        op = calls.ensure_campaign(self.get(operation), "walkforward")
        return WalkforwardResult(op, self.sweep_rows(op.id))

    def run_sweep(
        self, strategy: str, *, progress: bool = False, timeout_s: float | None = None, **kw: Any
    ) -> SweepResult:
        """Start a sweep, wait for it, and return its results."""
        op = self.start_sweep(strategy, **kw)
        return self.sweep_result(self.wait(op, progress=progress, timeout_s=timeout_s))

    # ------------------------------------------------------------- other resources

    def workers(self, *, include_gone: bool = False) -> list[Worker]:
        return self.send(calls.workers(include_gone))

    def datasets(self) -> list[Dataset]:
        """The data catalog: every stored (symbol, timeframe) series."""
        return self.send(calls.datasets())

    def delete_data(self, symbol: str, timeframe: str) -> DeletedData:
        """Delete a stored series (NotFound if unknown, Conflict while an operation uses it)."""
        return self.send(calls.delete_data(symbol, timeframe))

    def health(self) -> dict[str, Any]:
        return self.send(calls.health())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KtrdrClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
