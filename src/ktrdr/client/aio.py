"""`AsyncKtrdrClient`: the asyncio twin of `KtrdrClient`, sending the same `Call`s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


class AsyncKtrdrClient:
    """Async client of the KTRDR API; same arguments and methods as `KtrdrClient`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.settings = calls.Settings.resolve(base_url, api_key, timeout_s, retries, backoff_s)
        self._http = httpx.AsyncClient(transport=transport, **self.settings.http_options())

    async def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
            except httpx.TransportError as exc:
                await asyncio.sleep(self.settings.retry_delay_s(call, exc, attempt))
                attempt += 1
                continue
            return calls.finish(call, response)

    async def start(
        self, op_type: str, params: dict[str, Any], *, idempotency_key: str | None = None
    ) -> Operation:
        return await self.send(calls.start(op_type, params, idempotency_key))

    async def start_backtest(
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
        params = body_of(
            strategy=strategy, symbol=symbol, timeframe=timeframe, start=start, end=end,
            capital=capital, commission=commission, slippage=slippage,
        )  # fmt: skip
        return await self.start("backtesting", params, idempotency_key=idempotency_key)

    async def start_training(
        self, strategy: str, *, idempotency_key: str | None = None, **params: Any
    ) -> Operation:
        body = body_of(strategy=strategy, **params)
        return await self.start("training", body, idempotency_key=idempotency_key)

    async def start_data_download(
        self,
        symbol: str,
        timeframe: str,
        *,
        provider: str = "synthetic",
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Operation:
        body = body_of(symbol=symbol, timeframe=timeframe, provider=provider, **params)
        return await self.start("data_download", body, idempotency_key=idempotency_key)

    async def operations(
        self,
        *,
        status: list[str] | str | None = None,
        type: list[str] | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> OperationPage:
        return await self.send(calls.list_operations(status, type, limit, offset))

    async def get(self, operation: OpRef) -> Operation:
        return await self.send(calls.get_operation(operation_id(operation)))

    async def cancel(self, operation: OpRef) -> Operation:
        return await self.send(calls.cancel(operation_id(operation)))

    async def follow(
        self,
        operation: OpRef,
        *,
        progress: bool = False,
        poll_s: float = 0.25,
        timeout_s: float | None = None,
    ) -> AsyncIterator[Operation]:
        follower = Follower(bar=progress, timeout_s=timeout_s, poll_s=poll_s)
        try:
            while True:
                op = await self.get(operation)
                if follower.changed(op):
                    yield op
                if op.done:
                    return
                follower.check_deadline(op)
                await asyncio.sleep(follower.poll_s)
        finally:
            follower.close()

    async def wait(
        self, operation: OpRef, *, progress: bool = False, timeout_s: float | None = None
    ) -> Operation:
        last = None
        async for op in self.follow(operation, progress=progress, timeout_s=timeout_s):
            last = op
        assert last is not None  # follow yields at least once
        return calls.ensure_completed(last)

    async def results(self, operation: OpRef, part: str | None = None) -> Any:
        return await self.send(calls.results(operation_id(operation), part))

    async def backtest_result(self, operation: OpRef) -> BacktestResult:
        op = await self.get(operation)
        parts = [await self.results(op.id, part) for part in calls.BACKTEST_PARTS]
        return BacktestResult(op, *parts)

    async def run_backtest(
        self, strategy: str, *, progress: bool = False, timeout_s: float | None = None, **kw: Any
    ) -> BacktestResult:
        op = await self.start_backtest(strategy, **kw)
        return await self.backtest_result(
            await self.wait(op, progress=progress, timeout_s=timeout_s)
        )

    async def start_sweep(
        self, strategy: str, *, idempotency_key: str | None = None, **params: Any
    ) -> Operation:
        body = body_of(strategy=strategy, **params)
        return await self.start("sweep", body, idempotency_key=idempotency_key)

    async def start_walkforward(
        self,
        strategy: str,
        *,
        train_bars: int,
        test_bars: int,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Operation:
        body = body_of(strategy=strategy, train_bars=train_bars, test_bars=test_bars, **params)
        return await self.start("walkforward", body, idempotency_key=idempotency_key)

    async def sweeps(
        self, *, status: list[str] | str | None = None, limit: int = 50
    ) -> OperationPage:
        return await self.operations(status=status, type="sweep", limit=limit)

    async def walkforwards(
        self, *, status: list[str] | str | None = None, limit: int = 50
    ) -> OperationPage:
        return await self.operations(status=status, type="walkforward", limit=limit)

    async def sweep_rows(
        self, operation: OpRef, *, sort: str | None = None, stage: str | None = None,
        window: int | None = None, page_size: int = calls.RESULTS_PAGE_MAX,
    ) -> list[dict[str, Any]]:  # fmt: skip
        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = await self.send(
                calls.sweep_results(
                    operation_id(operation), sort=sort, stage=stage, window=window,
                    limit=page_size, offset=offset,
                )
            )  # fmt: skip
            rows += page["data"]
            offset = calls.next_offset(page)
        return rows

    async def sweep_result(self, operation: OpRef) -> SweepResult:
        op = calls.ensure_campaign(await self.get(operation), "sweep")
        return SweepResult(op, await self.sweep_rows(op.id))

    async def walkforward_result(self, operation: OpRef) -> WalkforwardResult:
        op = calls.ensure_campaign(await self.get(operation), "walkforward")
        return WalkforwardResult(op, await self.sweep_rows(op.id))

    async def run_sweep(
        self, strategy: str, *, progress: bool = False, timeout_s: float | None = None, **kw: Any
    ) -> SweepResult:
        op = await self.start_sweep(strategy, **kw)
        return await self.sweep_result(await self.wait(op, progress=progress, timeout_s=timeout_s))

    async def workers(self, *, include_gone: bool = False) -> list[Worker]:
        return await self.send(calls.workers(include_gone))

    async def datasets(self) -> list[Dataset]:
        return await self.send(calls.datasets())

    async def delete_data(self, symbol: str, timeframe: str) -> DeletedData:
        return await self.send(calls.delete_data(symbol, timeframe))

    async def health(self) -> dict[str, Any]:
        return await self.send(calls.health())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncKtrdrClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
