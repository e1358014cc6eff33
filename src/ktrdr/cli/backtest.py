"""`ktrdr backtest run | show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from ktrdr.cli import ops, runs
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console, print_json
from ktrdr.cli.report import (
    equity_values,
    model_line,
    sparkline,
    statistics_table,
    symbols_table,
    trades_table,
)
from ktrdr.cli.state import (
    DEFAULT_URL,
    CancelOnInterruptOption,
    EndOption,
    ExitCode,
    JsonOption,
    SetOption,
    StartOption,
    StrategyArgument,
    SymbolOption,
    SymbolsOption,
    TimeframeOption,
    UrlOption,
    parse_overrides,
    split_symbols,
)
from ktrdr.cli.tracing import cli_span

app = typer.Typer(help="Run backtests and look at their results.", no_args_is_help=True)


def strategy_argument(strategy: str) -> str:
    """A strategy file's text; a packaged example's name, or YAML text itself, as is."""
    if "\n" in strategy:  # YAML pasted or scripted inline: no file has such a name
        return strategy
    path = Path(strategy)
    try:
        exists = path.exists()
    except OSError:  # a name too long for the file system cannot be a file
        exists = False
    if path.suffix in {".yaml", ".yml"} or exists:
        if not path.is_file():
            raise typer.BadParameter(f"no strategy file {strategy}")
        return path.read_text()
    return strategy


@app.command("run")
def run(
    strategy: StrategyArgument,
    symbol: SymbolOption = None,
    symbols: SymbolsOption = None,
    portfolio: Annotated[
        bool,
        typer.Option(
            "--portfolio", help="trade --symbols from one cash account (default: a universe)"
        ),
    ] = False,
    weights: Annotated[
        str | None,
        typer.Option(help="portfolio weights A=0.5,B=0.3,C=0.2 (adding up to 1; default: equal)"),
    ] = None,
    rebalance: Annotated[
        str | None,
        typer.Option(help="portfolio rebalancing: on_signal, every_n_bars, daily, weekly, monthly"),
    ] = None,
    every_bars: Annotated[
        int | None, typer.Option(help="bars between rebalances (--rebalance every_n_bars)")
    ] = None,
    timeframe: TimeframeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    capital: Annotated[float, typer.Option(min=0.01)] = 100_000.0,
    commission: Annotated[float | None, typer.Option(help="fraction per side")] = None,
    slippage: Annotated[float | None, typer.Option(help="fraction per side")] = None,
    trades: Annotated[int, typer.Option(help="trades to list")] = 10,
    set_: SetOption = None,
    debug_frames: Annotated[
        Path | None,
        typer.Option(
            help="write per-bar indicators, memberships, rules, target, position "
            "to this Parquet (or .csv) file"
        ),
    ] = None,
    cancel_on_interrupt: CancelOnInterruptOption = False,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Queue a backtest, follow it with a progress bar, then show its results."""
    body: dict[str, Any] = {
        "strategy": strategy_argument(strategy),
        "overrides": parse_overrides(set_),
        "symbol": symbol,
        "symbols": split_symbols(symbols),
        "portfolio": portfolio_section(portfolio, weights, rebalance, every_bars),
        "timeframe": timeframe,
        "start": start,
        "end": end,
        "capital": capital,
        "commission": commission,
        "slippage": slippage,
        "debug_frames": True if debug_frames is not None else None,
    }
    client = ApiClient(url)
    final = ops.submit_and_follow(
        client,
        "backtest_run",
        "/backtests/start",
        body,
        quiet=json,
        strategy=strategy,
        cancel_on_interrupt=cancel_on_interrupt,
    )
    if debug_frames is not None and final["status"] == "completed":
        write_debug_frame(final["result"].pop("debug_frame"), debug_frames, quiet=json)
    ops.print_outcome_and_exit(
        final, json=json, show=lambda op: show_result(op["id"], full_result(client, op), trades)
    )


def portfolio_section(
    portfolio: bool, weights: str | None, rebalance: str | None, every_bars: int | None
) -> dict[str, Any] | None:
    """The request's ``portfolio`` from the command line (None: not a portfolio)."""
    if not portfolio:
        if weights or rebalance or every_bars:
            raise typer.BadParameter(
                "--weights, --rebalance and --every-bars are portfolio settings; add --portfolio"
            )
        return None
    section: dict[str, Any] = {}
    if weights:
        section["weights"] = {}
        for item in weights.split(","):
            name, sep, value = item.partition("=")
            try:
                section["weights"][name.strip()] = float(value)
            except ValueError:
                raise typer.BadParameter(
                    f"{item!r} is not SYMBOL=WEIGHT (e.g. --weights EURUSD=0.6,GBPUSD=0.4)",
                    param_hint="--weights",
                ) from None
            if not sep:
                raise typer.BadParameter(f"{item!r} has no '='", param_hint="--weights")
    if rebalance:
        section["rebalance"] = rebalance
    if every_bars is not None:
        section["every_bars"] = every_bars
    return section


def payload_to_frame(payload: dict[str, Any]) -> Any:
    """A result's debug frame (index, columns, data) as a DataFrame on a UTC time index."""
    import pandas as pd

    index = pd.DatetimeIndex([pd.Timestamp(t) for t in payload["index"]], name="time")
    return pd.DataFrame(payload["data"], columns=payload["columns"], index=index)


def write_debug_frame(payload: dict[str, Any], path: Path, *, quiet: bool) -> None:
    frame = payload_to_frame(payload)
    if path.suffix == ".csv":
        frame.to_csv(path)
    else:
        frame.to_parquet(path)
    if not quiet:
        console.print(f"debug frame ({len(frame):,} bars × {frame.shape[1]} columns) in {path}")


def full_result(client: ApiClient, op: dict[str, Any]) -> dict[str, Any]:
    """The record keeps statistics and table references; the API resolves the tables."""
    result: dict[str, Any] = client.get(f"/operations/{op['id']}/results")
    return result


def show_result(
    operation_id: str, result: dict[str, Any], trades: int, *, hint: bool = True
) -> None:
    console.print(statistics_table(result))
    model = result.get("model")
    if model:
        console.print(model_line(model), markup=False)
    for warning in result.get("warnings") or []:
        console.print(Text.assemble(("warning: ", "yellow"), warning))
    if result.get("per_symbol"):
        console.print(symbols_table(result))
    values = equity_values(result)
    if values:
        console.print(f"equity {values[0]:,.0f} → {values[-1]:,.0f}")
        console.print(sparkline(values, width=min(60, console.width)))
    if trades > 0 and result.get("trades") is not None:
        console.print(trades_table(result["trades"], trades))
    if hint:
        console.print(f"[dim]report: ktrdr backtest show {operation_id} --html report.html[/]")


@app.command("show")
def show(
    operation_id: str,
    trades: Annotated[int, typer.Option(help="trades to list")] = 10,
    html: Annotated[Path | None, typer.Option(help="write an HTML report here")] = None,
    csv: Annotated[
        Path | None, typer.Option(help="write trades.csv and equity.csv into this folder")
    ] = None,
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
    if csv is not None:
        for path in runs.write_csv(csv, result):
            console.print(f"wrote {path}")


app.command("list")(runs.list_backtests)
app.command("compare")(runs.compare_backtests)


def html_report(operation_id: str, result: dict[str, Any]) -> str:
    # Imported when a report is written: pandas and plotly stay out of every other command.
    from ktrdr.cli.html_report import backtest_report

    return backtest_report(operation_id, result)
