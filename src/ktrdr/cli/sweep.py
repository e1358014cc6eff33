"""`ktrdr sweep run | show` and `ktrdr walkforward run | show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ktrdr.cli import ops
from ktrdr.cli.backtest import strategy_argument
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console, print_json
from ktrdr.cli.state import (
    DEFAULT_URL,
    EndOption,
    JsonOption,
    StartOption,
    StrategyArgument,
    SymbolOption,
    TimeframeOption,
    UrlOption,
)
from ktrdr.cli.sweep_report import sweep_html, walkforward_html
from ktrdr.cli.tracing import cli_span
from ktrdr.reports import diagnostic_text, efficiency_text, fmt, utc_minute

app = typer.Typer(help="Parameter sweeps over a strategy's search: space.", no_args_is_help=True)
wf_app = typer.Typer(help="Walk-forward analysis: sweep in sample, test out of sample.",
                     no_args_is_help=True)  # fmt: skip

MethodOption = Annotated[str, typer.Option(help="grid | random | tpe")]
TrialsOption = Annotated[int | None, typer.Option(min=1, help="combinations (random, tpe)")]
ObjectiveOption = Annotated[str, typer.Option(help="sharpe, sortino, calmar, total_return, ...")]
DirectionOption = Annotated[str, typer.Option(help="maximize | minimize")]
SeedOption = Annotated[int, typer.Option(min=0, help="random and TPE are seeded")]
MinTradesOption = Annotated[int | None, typer.Option(min=0, help="fewer trades never rank best")]
ChunkOption = Annotated[
    int | None,
    typer.Option(min=1, help="combinations per chunk operation (default: one per idle worker)"),
]
TopOption = Annotated[int, typer.Option(min=1, max=10_000, help="rows of the results table")]
HtmlOption = Annotated[Path | None, typer.Option(help="write an HTML report here")]
AxisOption = Annotated[str | None, typer.Option(help="heatmap parameter (path or short name)")]


def campaign_body(strategy: str, **fields: Any) -> dict[str, Any]:
    return {"strategy": strategy_argument(strategy), **fields}


@app.command("run")
def run(
    strategy: StrategyArgument,
    method: MethodOption = "grid",
    trials: TrialsOption = None,
    objective: ObjectiveOption = "sharpe",
    direction: DirectionOption = "maximize",
    seed: SeedOption = 0,
    min_trades: MinTradesOption = None,
    chunk_size: ChunkOption = None,
    symbol: SymbolOption = None,
    timeframe: TimeframeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    capital: Annotated[float, typer.Option(min=0.01)] = 100_000.0,
    commission: Annotated[float | None, typer.Option(help="fraction per side")] = None,
    top: TopOption = 10,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Queue a sweep, follow it (progress with the best so far), then show the top results."""
    body = campaign_body(
        strategy, method=method, trials=trials, objective=objective, direction=direction,
        seed=seed, min_trades=min_trades, chunk_size=chunk_size, symbol=symbol,
        timeframe=timeframe, start=start, end=end, capital=capital, commission=commission,
    )  # fmt: skip
    client = ApiClient(url)
    final = ops.submit_and_follow(client, "sweep_run", "/sweeps/start", body, quiet=json)
    ops.print_outcome_and_exit(final, json=json, show=lambda op: show_sweep(client, op, top))


def results_table(rows: list[dict[str, Any]], objective: str, key: str, title: str) -> Table:
    table = compact_table(title)
    names = list(rows[0]["params"]) if rows else []
    table.add_column("#", justify="right", no_wrap=True)
    for name in names:
        table.add_column(header(name), justify="right", no_wrap=True)
    for label in (objective, "return %", "max DD %", "trades"):
        table.add_column(label, justify="right", no_wrap=True)
    for row in rows:
        stats = row["statistics"]
        table.add_row(
            str(row["combination"]),
            *[fmt(row["params"][n], "{}") for n in names],
            fmt(stats.get(key), "{:.4f}"),
            fmt(stats.get("total_return_pct"), "{:.2f}"),
            fmt(stats.get("max_drawdown_pct"), "{:.2f}"),
            fmt(stats.get("num_trades"), "{:,}"),
        )
    return table


def compact_table(title: str) -> Table:
    """A results table without vertical rules: a window's two timestamps, two parameters
    and the figures fit an 80-column terminal (boxed, the parameters were cut to
    "sma_fast.…")."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                 pad_edge=False, collapse_padding=True)  # fmt: skip


def header(path: str) -> str:
    """A parameter's column header: sma_fast.period on two lines (the values are short)."""
    return short(path).replace(".", "\n", 1)


def short(path: str) -> str:
    """indicators.sma_fast.params.period -> sma_fast.period (as constraints name it)."""
    parts = path.split(".")
    if len(parts) == 4 and parts[0] == "indicators" and parts[2] == "params":
        return f"{parts[1]}.{parts[3]}"
    return path


def show_sweep(client: ApiClient, op: dict[str, Any], top: int) -> None:
    summary = op["result"] or {}
    page = client.get(f"/operations/{op['id']}/sweep-results", limit=top)
    objective = summary.get("objective", page["sort"])
    title = (
        f"{summary.get('method', '?')} sweep: top {len(page['data'])} of {page['count']} "
        f"by {objective} ({summary.get('direction', '')})"
    )
    console.print(results_table(page["data"], objective, page["statistic"], title))
    best = summary.get("best")
    if best:
        params = ", ".join(f"{short(k)}={v}" for k, v in best["params"].items())
        console.print(f"best: {params} ({objective} {fmt(best['objective'], '{:.4f}')})")
    for name, value in (summary.get("diagnostics") or {}).items():
        console.print(f"{name}: {diagnostic_text(value)}")
    console.print(f"[dim]report: ktrdr sweep show {op['id']} --html report.html[/]")


@app.command("show")
def show(
    operation_id: str,
    top: TopOption = 20,
    html: HtmlOption = None,
    x: AxisOption = None,
    y: AxisOption = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """A sweep's top results (and optionally its HTML report: heatmap, sensitivity, top N)."""
    client = ApiClient(url)
    with cli_span("sweep_show", **{"operation.id": operation_id}):
        op = client.get(f"/operations/{operation_id}")
        everything = client.get(f"/operations/{operation_id}/sweep-results", limit=10_000)
    if json:
        print_json({"operation": op, "results": everything})
        return
    show_sweep(client, op, top)
    if html is not None:
        html.write_text(sweep_html(op, everything["data"], x=x, y=y, top=top))
        console.print(f"report written to {html}")


@wf_app.command("run")
def wf_run(
    strategy: StrategyArgument,
    train_bars: Annotated[
        int | None, typer.Option(min=10, help="in-sample bars per window")
    ] = None,
    test_bars: Annotated[
        int | None, typer.Option(min=2, help="out-of-sample bars per window")
    ] = None,
    step_bars: Annotated[int | None, typer.Option(min=1, help="default: test bars")] = None,
    train_period: Annotated[
        str | None, typer.Option(help="in-sample duration instead of bars, e.g. 365D")
    ] = None,
    test_period: Annotated[
        str | None, typer.Option(help="out-of-sample duration instead of bars, e.g. 90D")
    ] = None,
    step_period: Annotated[str | None, typer.Option(help="default: the test period")] = None,
    anchored: Annotated[
        bool, typer.Option(help="in-sample windows start at the first bar")
    ] = False,
    method: MethodOption = "grid",
    trials: TrialsOption = None,
    objective: ObjectiveOption = "sharpe",
    seed: SeedOption = 0,
    min_trades: MinTradesOption = None,
    symbol: SymbolOption = None,
    timeframe: TimeframeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Queue a walk-forward analysis and follow it; then show each window and the total."""
    body = campaign_body(
        strategy, train_bars=train_bars, test_bars=test_bars, step_bars=step_bars,
        train_period=train_period, test_period=test_period, step_period=step_period,
        anchored=anchored, method=method, trials=trials, objective=objective, seed=seed,
        min_trades=min_trades, symbol=symbol, timeframe=timeframe, start=start, end=end,
    )  # fmt: skip
    final = ops.submit_and_follow(
        ApiClient(url), "walkforward_run", "/walkforwards/start", body, quiet=json
    )
    ops.print_outcome_and_exit(final, json=json, show=show_walkforward)


def show_walkforward(op: dict[str, Any]) -> None:
    result = op["result"] or {}
    windows = result.get("windows", [])
    # One column per chosen parameter (as the sweep table has them): "a=1, b=2" in one
    # cell was cut to "sma_fast.…" on an 80-column terminal.
    names = list(windows[0]["params"]) if windows else []
    table = compact_table(f"walk-forward by {result.get('objective')}")
    table.add_column("#", justify="right", no_wrap=True)
    for column in ("test from (UTC)", "test to"):
        table.add_column(column, no_wrap=True)
    for name in names:
        table.add_column(header(name), justify="right", no_wrap=True)
    for column in ("IS", "OOS", "OOS\nret %"):
        table.add_column(column, justify="right", no_wrap=True)
    for w in windows:
        table.add_row(
            str(w["window"]), utc_minute(w["test_start"]), utc_minute(w["test_end"]),
            *[fmt(w["params"].get(n), "{}") for n in names],
            fmt(w["in_sample_objective"], "{:.2f}"), fmt(w["out_of_sample_objective"], "{:.2f}"),
            fmt(w["out_of_sample"].get("total_return_pct"), "{:.2f}"),
        )  # fmt: skip
    console.print(table)
    stitched = result.get("stitched") or {}
    console.print(
        f"stitched out of sample: return {fmt(stitched.get('total_return_pct'), '{:.2f}')}%, "
        f"walk-forward efficiency {efficiency_text(result)}"
    )


@wf_app.command("show")
def wf_show(
    operation_id: str,
    html: HtmlOption = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """A walk-forward's windows, stitched out-of-sample result and (optionally) HTML report."""
    with cli_span("walkforward_show", **{"operation.id": operation_id}):
        op = ApiClient(url).get(f"/operations/{operation_id}")
    if json:
        print_json(op)
        return
    show_walkforward(op)
    if html is not None:
        html.write_text(walkforward_html(op))
        console.print(f"report written to {html}")
