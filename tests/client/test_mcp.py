"""`ktrdr mcp` over stdio, driven by the SDK's own client against the real stack: the
tools list, validate/backtest/follow/results, and the same numbers as the API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from ktrdr.mcp.server import SWEEP_ROW_STATS
from tests.client.conftest import SYMBOL, WINDOW, ClientStack
from tests.client.test_campaigns import SWEEP_STRATEGY, api_rows
from tests.client.test_client import STRATEGY_WITH_TYPO

pytestmark = pytest.mark.integration


def _structured(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) else content
    return json.loads(result.content[0].text)


async def _session_calls(stack: ClientStack) -> dict[str, Any]:
    env = {
        **os.environ,
        "KTRDR_API_URL": stack.url,
        "KTRDR_API_KEY": stack.key("admin"),
    }
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "ktrdr.cli.main", "mcp"], env=env
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = sorted(t.name for t in (await session.list_tools()).tools)
        call = session.call_tool
        invalid = _structured(
            await call("validate_strategy", {"strategy_yaml": STRATEGY_WITH_TYPO})
        )
        valid = _structured(await call("validate_strategy", {"strategy_yaml": "sma_crossover"}))
        strategies = _structured(await call("list_strategies", {}))
        data = _structured(await call("list_data", {}))
        started = _structured(
            await call(
                "start_backtest",
                {"strategy": "sma_crossover", "symbol": SYMBOL, "timeframe": "1h", **WINDOW},
            )
        )
        followed = _structured(
            await call("follow_operation", {"operation_id": started["operation_id"]})
        )
        results = _structured(
            await call("backtest_results", {"operation_id": started["operation_id"], "top": 3})
        )
        bad_start = await call("start_backtest", {"strategy": "sma_crosover"})
        sweep = _structured(
            await call("start_sweep", {"strategy_yaml": SWEEP_STRATEGY, "min_trades": 1})
        )
        swept = _structured(await call("follow_operation", {"operation_id": sweep["operation_id"]}))
        top = _structured(
            await call("sweep_results", {"operation_id": sweep["operation_id"], "top": 3})
        )
        bad_sweep = await call("start_sweep", {"strategy_yaml": "sma_crossover"})
    return {
        "tools": tools,
        "invalid": invalid,
        "valid": valid,
        "strategies": strategies,
        "data": data,
        "followed": followed,
        "results": results,
        "bad_start": bad_start,
        "swept": swept,
        "top": top,
        "bad_sweep": bad_sweep,
    }


def test_mcp_tools_on_the_real_stack_give_the_api_numbers(client_stack: ClientStack) -> None:
    got = asyncio.run(_session_calls(client_stack))
    assert got["tools"] == [
        "backtest_results",
        "follow_operation",
        "list_data",
        "list_strategies",
        "start_backtest",
        "start_sweep",
        "sweep_results",
        "validate_strategy",
    ]
    api_error = httpx.post(
        f"{client_stack.url}/api/v1/backtests/start",
        json={"strategy": STRATEGY_WITH_TYPO},
        headers={"Authorization": f"Bearer {client_stack.key('admin')}"},
    ).json()["detail"]
    assert got["invalid"] == {"valid": False, "message": api_error}
    assert got["valid"] == {"valid": True, "message": "ok"}
    assert "sma_crossover" in [s["name"] for s in got["strategies"]]
    assert [(d["symbol"], d["rows"]) for d in got["data"]] == [(SYMBOL, 3000)]

    op_id = got["followed"]["operation_id"]
    assert got["followed"]["status"] == "completed" and got["followed"]["percent"] == 100
    api = client_stack.client
    assert got["results"]["statistics"] == api.results(op_id, "statistics")
    trades = api.results(op_id, "trades")
    assert got["results"]["num_trades"] == len(trades)
    by_pnl = sorted(trades, key=lambda t: t["net_pnl"])
    assert got["results"]["top_trades"] == {"best": by_pnl[::-1][:3], "worst": by_pnl[:3]}

    assert got["bad_start"].is_error
    assert "unknown strategy 'sma_crosover'" in got["bad_start"].content[0].text

    # The sweep: its top rows are the API's first rows, trimmed to the headline statistics.
    sweep_id = got["swept"]["operation_id"]
    assert got["swept"]["status"] == "completed"
    page = api_rows(client_stack, sweep_id)
    assert got["top"]["evaluated"] == page["count"] == 8
    assert (got["top"]["objective"], got["top"]["order"]) == ("sharpe", "desc")
    assert got["top"]["top"] == [
        {
            "key": r["key"],
            "params": r["params"],
            "statistics": {k: r["statistics"][k] for k in SWEEP_ROW_STATS},
        }
        for r in page["data"][:3]
    ]
    assert got["top"]["diagnostics"] == client_stack.client.get(sweep_id).result["diagnostics"]
    assert got["bad_sweep"].is_error
    assert "search" in got["bad_sweep"].content[0].text
