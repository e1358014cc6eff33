"""Finding and comparing backtests: `ktrdr backtest list | compare`, and CSV exports.

Listings read whatever an operation listing carries: the full record, or the short
``params_summary`` / ``result_summary`` a bounded listing gives (both shapes are read)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console, literal, print_json, short_time
from ktrdr.cli.report import STAT_ROWS
from ktrdr.cli.state import DEFAULT_URL, JsonOption, UrlOption
from ktrdr.cli.tracing import cli_span
from ktrdr.reports import fmt

# --sort names → the row key, and whether bigger comes first.
SORT_KEYS = {
    "when": ("completed_at", True),
    "return": ("total_return_pct", True),
    "sharpe": ("sharpe_ratio", True),
    "drawdown": ("max_drawdown_pct", True),  # drawdowns are negative: shallowest first
    "trades": ("num_trades", True),
    "strategy": ("strategy", False),
}
COMPARE_KEYS = [row for row in STAT_ROWS if row[0] not in {"start", "end"}]


def _strategy_name(text: str) -> str:
    """An example's name, or a strategy file's ``name:`` line."""
    if "\n" not in text:
        return text.strip()
    for line in text.splitlines():
        if line.startswith("name:"):
            return line.partition(":")[2].split("#")[0].strip().strip("'\"")
    return "(strategy file)"


def backtest_row(op: dict[str, Any]) -> dict[str, Any]:
    """One completed backtest as a listing row."""
    params = op.get("params") or op.get("params_summary") or {}
    result = op.get("result") or op.get("result_summary") or {}
    stats = result.get("statistics") or {}
    strategy = result.get("strategy_name") or _strategy_name(str(params.get("strategy", "")))
    return {
        "operation_id": op["id"],
        "strategy": strategy,
        "symbol": result.get("symbol") or params.get("symbol"),
        "timeframe": result.get("timeframe") or params.get("timeframe"),
        "start": stats.get("start") or params.get("start"),
        "end": stats.get("end") or params.get("end"),
        "total_return_pct": stats.get("total_return_pct"),
        "sharpe_ratio": stats.get("sharpe_ratio"),
        "max_drawdown_pct": stats.get("max_drawdown_pct"),
        "num_trades": stats.get("num_trades"),
        "completed_at": op.get("completed_at"),
    }


def _sorted(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    key, descending = SORT_KEYS[sort]
    present = [r for r in rows if r[key] is not None]
    missing = [r for r in rows if r[key] is None]  # always last, whatever the order
    return sorted(present, key=lambda r: r[key], reverse=descending) + missing


def list_backtests(
    strategy: Annotated[str | None, typer.Option(help="only this strategy name")] = None,
    symbol: Annotated[str | None, typer.Option(help="only this symbol")] = None,
    timeframe: Annotated[str | None, typer.Option(help="only this timeframe")] = None,
    sort: Annotated[
        str, typer.Option(help=f"order by: {', '.join(SORT_KEYS)} (best first)")
    ] = "when",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Completed backtests: strategy, symbol, window, return, Sharpe, max drawdown, trades."""
    if sort not in SORT_KEYS:
        raise typer.BadParameter(f"use one of: {', '.join(SORT_KEYS)}", param_hint="--sort")
    with cli_span("backtest_list"):
        page = ApiClient(url).get(
            "/operations", type=["backtesting"], status=["completed"], limit=500
        )
    rows = [backtest_row(op) for op in page["data"]]
    rows = [
        r
        for r in rows
        if (strategy is None or r["strategy"] == strategy)
        and (symbol is None or (r["symbol"] or "").upper() == symbol.upper())
        and (timeframe is None or r["timeframe"] == timeframe)
    ]
    rows = _sorted(rows, sort)[:limit]
    if json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} backtest(s), by {sort}", title_justify="left")
    for column in ("operation", "strategy", "symbol", "tf", "window", "return", "Sharpe",
                   "max DD", "trades", "when"):  # fmt: skip
        table.add_column(column, no_wrap=column != "strategy")
    for r in rows:
        window = f"{(r['start'] or '…')[:10]}..{(r['end'] or '…')[:10]}"
        table.add_row(
            r["operation_id"], literal(r["strategy"]), r["symbol"] or "-", r["timeframe"] or "-",
            window, fmt(r["total_return_pct"], "{:.2f}%"), fmt(r["sharpe_ratio"], "{:.2f}"),
            fmt(r["max_drawdown_pct"], "{:.2f}%"), fmt(r["num_trades"], "{:,}"),
            short_time(r["completed_at"]),
        )  # fmt: skip
    console.print(table)


def compare_backtests(
    operation_ids: Annotated[list[str], typer.Argument(help="two or more backtest ids")],
    html: Annotated[
        Path | None, typer.Option(help="write an HTML report with the equity curves overlaid")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Statistics of several backtests side by side (and their equity curves in --html)."""
    from ktrdr.cli.html_report import compare_report

    if len(operation_ids) < 2:
        raise typer.BadParameter("give at least two operation ids", param_hint="OPERATION_IDS")
    client = ApiClient(url)
    with cli_span("backtest_compare"):
        results = {op_id: client.get(f"/operations/{op_id}/results") for op_id in operation_ids}
    for op_id, result in results.items():
        if "statistics" not in result:
            raise typer.BadParameter(f"{op_id} is not a backtest", param_hint="OPERATION_IDS")
    if json:
        print_json({op_id: r["statistics"] for op_id, r in results.items()})
    else:
        table = Table(title="Backtests compared", title_justify="left")
        table.add_column("")
        for op_id, r in results.items():
            table.add_column(f"{r['strategy_name']}\n{r['symbol']} {r['timeframe']}\n{op_id}",
                             justify="right")  # fmt: skip
        table.add_row("window", *(
            f"{r['statistics']['start'][:10]}..{r['statistics']['end'][:10]}"
            for r in results.values()
        ))  # fmt: skip
        for key, label, pattern in COMPARE_KEYS:
            table.add_row(
                label, *(fmt(r["statistics"].get(key), pattern) for r in results.values())
            )
        console.print(table)
    if html is not None:
        html.write_text(compare_report(results), encoding="utf-8")
        if not json:
            console.print(f"report written to {html}")


def write_csv(directory: Path, result: dict[str, Any]) -> list[Path]:
    """``trades.csv`` and ``equity.csv`` of a backtest result in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in (("trades", result["trades"]), ("equity", result["equity_curve"])):
        path = directory / f"{name}.csv"
        columns = list(rows[0]) if rows else []
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    return written
