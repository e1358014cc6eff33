"""The MCP server: one more client of the API, built on `ktrdr.client`.

Answers are trimmed for a model to read: statistics and the top trades, never the whole
equity curve. A strategy YAML is checked with the API's own parameter model and message
text (ktrdr.jobs.strategy_run, ktrdr.validation_messages), so the words are the API's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from ktrdr.client import AsyncKtrdrClient, KtrdrError, Operation, calls

TOP_TRADES = 5
TOP_SWEEP_ROWS = 10
# The statistics a sweep row keeps for a model to read (the API's keys).
SWEEP_ROW_STATS = (
    "total_return_pct", "sharpe_ratio", "max_drawdown_pct", "num_trades", "win_rate_pct",
    "profit_factor",
)  # fmt: skip
INSTRUCTIONS = (
    "KTRDR runs trading-strategy backtests on a platform of workers. List strategies and "
    "data, validate a strategy YAML, start a backtest, follow it until it completes, then "
    "read its statistics and top trades. A strategy with a `search:` space can be swept: "
    "start_sweep, follow it, then read the top parameter sets with sweep_results."
)


@contextmanager
def api_errors() -> Iterator[None]:
    """The API's message reaches the model as the tool's error (not a generic crash)."""
    try:
        yield
    except KtrdrError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc


def operation_view(op: Operation) -> dict[str, Any]:
    return {
        "operation_id": op.id,
        "type": op.type,
        "status": op.status,
        "percent": op.progress.percent,
        "phase": op.progress.phase,
        "error": op.error,
    }


def top_trades(trades: list[dict[str, Any]], n: int) -> dict[str, list[dict[str, Any]]]:
    ranked = sorted(trades, key=lambda t: t.get("net_pnl") or 0.0)
    return {"best": ranked[::-1][:n], "worst": ranked[:n]}


def sweep_row(row: dict[str, Any]) -> dict[str, Any]:
    """One evaluated parameter set, trimmed to its parameters and headline statistics."""
    stats = row["statistics"]
    return {
        "key": row["key"],
        "params": row["params"],
        "statistics": {k: stats[k] for k in SWEEP_ROW_STATS if k in stats},
    }


def build_server(client: AsyncKtrdrClient | None = None) -> MCPServer:
    server = MCPServer("ktrdr", instructions=INSTRUCTIONS)
    api = client or AsyncKtrdrClient()

    @server.tool()
    def list_strategies() -> list[dict[str, Any]]:
        """The example strategies shipped with KTRDR: name, symbol, timeframe, indicators."""
        from ktrdr.engine.strategy import builtin_strategy_names, load_strategy

        views = []
        for name in builtin_strategy_names():
            s = load_strategy(name)
            views.append(
                {
                    "name": name,
                    "description": s.description,
                    "symbol": s.data.symbol,
                    "timeframe": s.data.timeframe,
                    "indicators": [i.type for i in s.indicators],
                    "needs_model": s.decisions.model is not None,
                }
            )
        return views

    @server.tool()
    async def list_data() -> list[dict[str, Any]]:
        """Stored market data: symbol, timeframe, first and last bar, rows, source."""
        return [
            {
                "symbol": d.symbol,
                "timeframe": d.timeframe,
                "rows": d.rows,
                "first": d.first.isoformat() if d.first else None,
                "last": d.last.isoformat() if d.last else None,
                "source": d.source,
            }
            for d in await _datasets()
        ]

    async def _datasets() -> list[Any]:
        with api_errors():
            return await api.datasets()

    @server.tool()
    def validate_strategy(strategy_yaml: str) -> dict[str, Any]:
        """Check a strategy YAML (or an example's name); the message says how to fix it."""
        from ktrdr.jobs.strategy_run import StrategyRunParams
        from ktrdr.validation_messages import field_problems, summarise

        try:
            StrategyRunParams(strategy=strategy_yaml)
        except ValidationError as exc:
            problems = field_problems(exc.errors())
            return {"valid": False, "message": summarise("request", problems)}
        return {"valid": True, "message": "ok"}

    @server.tool()
    async def start_backtest(
        strategy: str,
        symbol: str | None = None,
        timeframe: str | None = None,
        start: str | None = None,
        end: str | None = None,
        capital: float | None = None,
    ) -> dict[str, Any]:
        """Queue a backtest of an example's name or a strategy YAML; returns its id."""
        with api_errors():
            op = await api.start_backtest(
                strategy, symbol=symbol, timeframe=timeframe, start=start, end=end, capital=capital
            )
        return operation_view(op)

    @server.tool()
    async def follow_operation(operation_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """Wait until the operation ends (or timeout_s passes); its last state."""
        with api_errors():
            last = await api.get(operation_id)
            try:
                async for op in api.follow(operation_id, timeout_s=timeout_s):
                    last = op
            except TimeoutError:
                pass  # the model gets the state so far and may follow again
        return operation_view(last)

    @server.tool()
    async def backtest_results(operation_id: str, top: int = TOP_TRADES) -> dict[str, Any]:
        """Statistics and the best and worst trades of a completed backtest."""
        with api_errors():
            statistics = await api.results(operation_id, "statistics")
            trades = await api.results(operation_id, "trades")
        return {
            "operation_id": operation_id,
            "statistics": statistics,
            "num_trades": len(trades),
            "top_trades": top_trades(trades, max(0, min(top, 50))),
        }

    add_sweep_tools(server, api)
    return server


def add_sweep_tools(server: MCPServer, api: AsyncKtrdrClient) -> None:
    """Sweeps: start one over a strategy's `search:` space, read its top rows."""

    @server.tool()
    async def start_sweep(
        strategy_yaml: str,
        method: str = "grid",
        trials: int | None = None,
        objective: str | None = None,
        min_trades: int | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> dict[str, Any]:
        """Queue a sweep of a strategy YAML's `search:` space (grid, or random / tpe with
        trials) over the workers; returns its id. Follow it, then call sweep_results."""
        with api_errors():
            op = await api.start_sweep(
                strategy_yaml, method=method, trials=trials, objective=objective,
                min_trades=min_trades, symbol=symbol, timeframe=timeframe, start=start, end=end,
            )  # fmt: skip
        return operation_view(op)

    @server.tool()
    async def sweep_results(operation_id: str, top: int = TOP_SWEEP_ROWS) -> dict[str, Any]:
        """The best parameter sets of a sweep (best first by its objective) with headline
        statistics, and how many were evaluated."""
        with api_errors():
            op = await api.get(operation_id)
            page = await api.send(calls.sweep_results(operation_id, limit=max(1, min(top, 50))))
        summary = op.result or {}
        return {
            "operation_id": operation_id,
            "status": op.status,
            "objective": page["sort"],
            "order": page["order"],
            "evaluated": page["count"],
            "top": [sweep_row(r) for r in page["data"]],
            "diagnostics": summary.get("diagnostics"),
        }


def serve(base_url: str | None = None, api_key: str | None = None) -> None:
    build_server(AsyncKtrdrClient(base_url, api_key=api_key)).run("stdio")
