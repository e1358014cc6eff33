"""The client on a real stack: a backtest through it equals the engine run directly
(trades and equity, exactly); errors are typed and carry the API's message."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import httpx
import pandas as pd
import pytest

from ktrdr.client import (
    AsyncKtrdrClient,
    Conflict,
    ConnectionFailed,
    Forbidden,
    KtrdrClient,
    NotFound,
    OperationFailed,
    Unauthorized,
    ValidationFailed,
)
from ktrdr.engine.backtest import BacktestResult as EngineResult
from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import DataStore
from ktrdr.engine.strategy import load_strategy
from ktrdr.worker.runners.backtest import MAX_STORED_EQUITY_POINTS
from tests.client.conftest import SYMBOL, WINDOW, ClientStack, backtest_params
from tests.support.stack import free_port

pytestmark = pytest.mark.integration
STRATEGY = "sma_crossover"


def engine_run(stack: ClientStack, name: str) -> EngineResult:
    strategy = load_strategy(name)
    strategy = strategy.model_copy(
        update={"data": strategy.data.model_copy(update={"symbol": SYMBOL, "timeframe": "1h"})}
    )
    bars = DataStore(stack.local.data_home / "data").load(
        SYMBOL, "1h", WINDOW["start"], WINDOW["end"], warmup_bars=strategy.warmup_bars()
    )
    return run_backtest(strategy, bars, capital=50_000.0, **WINDOW)


def test_backtest_through_the_client_equals_the_engine_run_directly(
    client_stack: ClientStack,
) -> None:
    result = client_stack.client.run_backtest(
        STRATEGY, progress=True, timeout_s=60, **backtest_params()
    )
    engine = engine_run(client_stack, STRATEGY)
    assert len(engine.equity_curve) < MAX_STORED_EQUITY_POINTS, "the stored curve is not thinned"
    assert len(engine.trades) > 3, "the window must trade to compare trades"

    expected_trades = pd.DataFrame([asdict(t) for t in engine.trades])
    expected_trades["exit_time"] = pd.DatetimeIndex(expected_trades["exit_time"]).as_unit("ns")
    expected_trades.index = pd.DatetimeIndex(expected_trades.pop("entry_time")).as_unit("ns")
    expected_trades.index.name = "entry_time"
    pd.testing.assert_frame_equal(result.trades, expected_trades, check_exact=True)

    curve = engine.equity_curve
    expected_equity = pd.DataFrame(
        {"equity": curve.to_numpy()},
        index=pd.DatetimeIndex(curve.index).as_unit("ns").rename("timestamp"),
    )
    pd.testing.assert_frame_equal(
        result.equity, expected_equity, check_exact=True, check_freq=False
    )

    assert result.statistics == json.loads(json.dumps(engine.statistics.to_dict()))
    assert result.stats["num_trades"] == len(engine.trades)
    # The window opens on a Saturday; synthetic FX has no weekend bars (first: Sunday 22:00).
    assert result.stats["start"] == engine.statistics.start


def test_follow_yields_progress_to_completion_and_async_gets_the_same(
    client_stack: ClientStack,
) -> None:
    client = client_stack.client
    op = client.start_backtest(STRATEGY, **backtest_params())
    seen = list(client.follow(op, timeout_s=60))
    assert seen[-1].status == "completed" and seen[-1].progress.percent == 100
    percents = [o.progress.percent for o in seen]
    assert percents == sorted(percents)
    assert len({(o.status, o.progress.phase, o.progress.percent) for o in seen}) == len(seen)
    sync_result = client.backtest_result(op)

    async def through_async() -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
        async with AsyncKtrdrClient(client_stack.url, api_key=client_stack.key("admin")) as ac:
            result = await ac.backtest_result(op.id)
            page = await ac.operations(type="backtesting", limit=500)
            followed = [o.status async for o in ac.follow(op.id)]
            return result.trades, result.equity, [o.id for o in page.data], followed

    trades, equity, listed, followed = asyncio.run(through_async())
    pd.testing.assert_frame_equal(trades, sync_result.trades, check_exact=True)
    pd.testing.assert_frame_equal(equity, sync_result.equity, check_exact=True)
    assert op.id in listed and followed == ["completed"]


def test_catalog_and_workers(client_stack: ClientStack) -> None:
    datasets = client_stack.client.datasets()
    assert [(d.symbol, d.timeframe, d.rows, d.source) for d in datasets] == [
        (SYMBOL, "1h", 3000, "synthetic")
    ]
    workers = client_stack.client.workers()
    assert len(workers) == 2 and {w.state for w in workers} == {"online"}
    assert all("backtesting" in w.kinds for w in workers)


STRATEGY_WITH_TYPO = """
name: typo
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: fast, type: sma, params: {perod: 10}}
  - {id: slow, type: sma, params: {period: 30}}
decisions:
  signals:
    - crossover: {fast: fast, slow: slow}
"""


def test_errors_are_typed_and_carry_the_api_message(client_stack: ClientStack) -> None:
    client = client_stack.client
    raw = httpx.post(
        f"{client_stack.url}/api/v1/backtests/start",
        json={"strategy": STRATEGY_WITH_TYPO},
        headers={"Authorization": f"Bearer {client_stack.key('admin')}"},
    )
    with pytest.raises(ValidationFailed) as invalid:
        client.start_backtest(STRATEGY_WITH_TYPO)
    assert invalid.value.status == 422 and str(invalid.value) == raw.json()["detail"]
    assert "did you mean 'period'" in str(invalid.value)
    assert invalid.value.errors == raw.json()["errors"]

    with pytest.raises(NotFound) as missing:
        client.get("no-such-operation")
    assert "no-such-operation" in str(missing.value)

    op = client.start("diagnostic", {"steps": 400, "step_ms": 100})
    with pytest.raises(Conflict) as early:
        client.results(op)
    assert f"operation {op.id} is" in str(early.value) and "ktrdr ops follow" in str(early.value)
    cancelled = client.cancel(op)
    assert cancelled.status == "cancelled"
    with pytest.raises(OperationFailed) as ended:
        client.wait(op, timeout_s=30)
    assert ended.value.operation.status == "cancelled"
    assert f"operation {op.id} ended cancelled" in str(ended.value)
    done = client.operations(status="completed", limit=1).data[0]
    with pytest.raises(Conflict) as ended_already:
        client.cancel(done)
    assert ended_already.value.status == 409 and done.id in str(ended_already.value)


def test_keys_unauthorized_and_forbidden(client_stack: ClientStack) -> None:
    with (
        KtrdrClient(client_stack.url, api_key="") as anonymous,
        pytest.raises(Unauthorized) as no_key,
    ):
        anonymous.operations()
    assert "Authorization" in str(no_key.value) or "key" in str(no_key.value)
    with KtrdrClient(client_stack.url, api_key=client_stack.key("reader")) as reader:
        assert reader.operations().count >= 1
        with pytest.raises(Forbidden) as scope:
            reader.start("diagnostic", {"steps": 1})
    assert "operate" in str(scope.value)


class LosesFirstReply(httpx.HTTPTransport):
    """The API receives and acts on the first POST, then the reply is lost on the way."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and not self.lost:
            response.read()
            response.close()
            self.lost.append(request.headers["Idempotency-Key"])
            raise httpx.ReadError("connection reset after the request", request=request)
        return response


def test_a_start_retried_after_a_lost_reply_queues_one_operation(
    client_stack: ClientStack,
) -> None:
    before = client_stack.client.operations(type="diagnostic").count
    transport = LosesFirstReply()
    with KtrdrClient(
        client_stack.url, api_key=client_stack.key("admin"), transport=transport, backoff_s=0.01
    ) as flaky:
        op = flaky.start("diagnostic", {"steps": 1, "step_ms": 1})
    assert len(transport.lost) == 1
    assert client_stack.client.operations(type="diagnostic").count == before + 1
    assert client_stack.client.wait(op, timeout_s=30).id == op.id

    nobody = KtrdrClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    with nobody, pytest.raises(ConnectionFailed) as down:
        nobody.health()
    assert "after 3 attempt(s)" in str(down.value) and "ktrdr up" in str(down.value)
