"""`ktrdr backtest run | show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ktrdr.cli import ops
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console, print_json
from ktrdr.cli.report import (
    equity_values,
    html_report,
    sparkline,
    statistics_table,
    trades_table,
)
from ktrdr.cli.state import (
    DEFAULT_URL,
    EndOption,
    ExitCode,
    JsonOption,
    StartOption,
    StrategyArgument,
    SymbolOption,
    TimeframeOption,
    UrlOption,
)
from ktrdr.cli.tracing import cli_span

app = typer.Typer(help="Run backtests and look at their results.", no_args_is_help=True)


def strategy_argument(strategy: str) -> str:
    """A strategy file's text, or the name of a packaged example as is."""
    path = Path(strategy)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise typer.BadParameter(f"no strategy file {strategy}")
        return path.read_text()
    return strategy


@app.command("run")
def run(
    strategy: StrategyArgument,
    symbol: SymbolOption = None,
    timeframe: TimeframeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    capital: Annotated[float, typer.Option(min=0.01)] = 100_000.0,
    commission: Annotated[float | None, typer.Option(help="fraction per side")] = None,
    slippage: Annotated[float | None, typer.Option(help="fraction per side")] = None,
    trades: Annotated[int, typer.Option(help="trades to list")] = 10,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Queue a backtest, follow it with a progress bar, then show its results."""
    body: dict[str, Any] = {
        "strategy": strategy_argument(strategy),
        "symbol": symbol,
        "timeframe": timeframe,
        "start": start,
        "end": end,
        "capital": capital,
        "commission": commission,
        "slippage": slippage,
    }
    client = ApiClient(url)
    final = ops.submit_and_follow(
        client, "backtest_run", "/backtests/start", body, quiet=json, strategy=strategy
    )
    ops.print_outcome_and_exit(
        final, json=json, show=lambda op: show_result(op["id"], full_result(client, op), trades)
    )


def full_result(client: ApiClient, op: dict[str, Any]) -> dict[str, Any]:
    """The record keeps statistics and table references; the API resolves the tables."""
    result: dict[str, Any] = client.get(f"/operations/{op['id']}/results")
    return result


def show_result(
    operation_id: str, result: dict[str, Any], trades: int, *, hint: bool = True
) -> None:
    console.print(statistics_table(result))
    values = equity_values(result)
    if values:
        console.print(f"equity {values[0]:,.0f} → {values[-1]:,.0f}")
        console.print(sparkline(values, width=min(60, console.width)))
    if trades > 0:
        console.print(trades_table(result["trades"], trades))
    if hint:
        console.print(f"[dim]report: ktrdr backtest show {operation_id} --html report.html[/]")


@app.command("show")
def show(
    operation_id: str,
    trades: Annotated[int, typer.Option(help="trades to list")] = 10,
    html: Annotated[Path | None, typer.Option(help="write an HTML report here")] = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Statistics, trades and the equity curve of a finished backtest."""
    with cli_span("backtest_show", **{"operation.id": operation_id}):
        result = ApiClient(url).get(f"/operations/{operation_id}/results")
    if json:
        print_json(result)
        return
    if "statistics" not in result:
        console.print(f"{operation_id} is not a backtest")
        raise typer.Exit(ExitCode.REJECTED)
    show_result(operation_id, result, trades)
    if html is not None:
        html.write_text(html_report(operation_id, result))
        console.print(f"report written to {html}")
