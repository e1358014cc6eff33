"""`ktrdr train run | show | compare | list`: models on fuzzy features, trained on workers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ktrdr.cli import ops
from ktrdr.cli.backtest import strategy_argument
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console, print_json
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
from ktrdr.cli.train_report import compare_rows, curve_lines, latest_metric

app = typer.Typer(help="Train models for model-driven strategies.", no_args_is_help=True)


@app.command("run")
def run(
    strategy: StrategyArgument,
    symbol: SymbolOption = None,
    symbols: SymbolsOption = None,
    timeframe: TimeframeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, max=1000, help="default: the strategy's training.epochs")
    ] = None,
    set_: SetOption = None,
    cancel_on_interrupt: CancelOnInterruptOption = False,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Queue a training run, follow it epoch by epoch, then show how the model did."""
    body: dict[str, Any] = {
        "strategy": strategy_argument(strategy),
        "overrides": parse_overrides(set_),
        "symbol": symbol,
        "symbols": split_symbols(symbols),
        "timeframe": timeframe,
        "start": start,
        "end": end,
        "epochs": epochs,
    }
    client = ApiClient(url)
    final = ops.submit_and_follow(
        client,
        "train_run",
        "/training/start",
        body,
        quiet=json,
        strategy=strategy,
        cancel_on_interrupt=cancel_on_interrupt,
        detail=lambda op_id: latest_metric(client.get(f"/operations/{op_id}/curve")),
    )
    ops.print_outcome_and_exit(final, json=json, show=lambda op: show_evaluation(op["result"]))


@app.command("show")
def show(
    operation_id: str,
    html: Annotated[
        Path | None, typer.Option("--html", help="write an HTML report with the curves here")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """A training run's learning curve (sparklines) and, once finished, how its model did
    on the test split and where it is saved; --html writes loss/accuracy curves and the
    confusion matrix as an offline page."""
    client = ApiClient(url)
    with cli_span("train_show", **{"operation.id": operation_id}):
        op = client.get(f"/operations/{operation_id}")
        if op["type"] != "training":
            console.print(f"{operation_id} is a {op['type']} operation, not a training run")
            raise typer.Exit(ExitCode.REJECTED)
        curve = client.get(f"/operations/{operation_id}/curve")
        result = client.get(f"/operations/{operation_id}/results") if op["result"] else None
    if json:
        print_json({"operation": op, "curve": curve, "result": result})
        return
    for line in curve_lines(curve):
        console.print(line, markup=False)
    if result is not None:
        show_evaluation(result)
    else:
        console.print(f"{operation_id} is {op['status']}: no model yet")
    if html is not None:
        from ktrdr.cli.train_report import training_report

        html.write_text(training_report({**op, "result": result}, curve), encoding="utf-8")
        console.print(f"wrote {html}")


@app.command("compare")
def compare(
    operation_ids: Annotated[list[str], typer.Argument(help="two or more training runs")],
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Training runs side by side: parameters, data ranges and metrics."""
    if len(operation_ids) < 2:
        console.print("give at least two training runs to compare")
        raise typer.Exit(ExitCode.REJECTED)
    client = ApiClient(url)
    with cli_span("train_compare"):
        runs = [client.get(f"/operations/{op_id}") for op_id in operation_ids]
    wrong = [op["id"] for op in runs if op["type"] != "training"]
    if wrong:
        console.print(f"not training runs: {', '.join(wrong)}")
        raise typer.Exit(ExitCode.REJECTED)
    rows = compare_rows(runs)
    if json:
        print_json({"operations": operation_ids, "rows": dict(rows)})
        return
    table = Table(title=f"{len(runs)} training runs")
    table.add_column("")
    for op in runs:
        table.add_column(op["id"], justify="right", no_wrap=True)
    for label, cells in rows:
        table.add_row(label, *cells)
    console.print(table)


@app.command("list")
def list_models(url: UrlOption = DEFAULT_URL, json: JsonOption = False) -> None:
    """Models from completed training runs, newest first."""
    with cli_span("train_list"):
        page = ApiClient(url).get("/operations", type=["training"], status=["completed"], limit=500)
    rows = [_model_row(op) for op in page["data"]]
    if json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} trained model(s)")
    for column in ("model", "version", "symbol", "timeframe", "test acc.", "baseline", "beats"):
        table.add_column(column)
    table.add_column("operation", no_wrap=True)
    for row in rows:
        table.add_row(
            row["model"], str(row["version"]), row["symbol"], row["timeframe"],
            f"{row['test_accuracy']:.1%}", f"{row['baseline_accuracy']:.1%}",
            "yes" if row["beats_baseline"] else "no", row["operation_id"],
        )  # fmt: skip
    console.print(table)


def _model_row(op: dict[str, Any]) -> dict[str, Any]:
    # A listing may carry the full result or its short summary: both have these keys.
    result = op.get("result") or op.get("result_summary") or {}
    return {
        "model": result["model"]["name"],
        "version": result["model"]["version"],
        "symbol": result["symbol"],
        "timeframe": result["timeframe"],
        "test_accuracy": result["metrics"]["test_accuracy"],
        "baseline_accuracy": result["metrics"]["baseline_accuracy"],
        "beats_baseline": result["model"].get(
            "beats_baseline",
            result["metrics"]["test_accuracy"] > result["metrics"]["baseline_accuracy"],
        ),
        "operation_id": op["id"],
    }


def symbols_table(per_symbol: dict[str, dict[str, Any]]) -> Table:
    """A run on several symbols: each symbol's own split and its test accuracy."""
    table = Table(title="Per symbol (each split on its own)", title_justify="left")
    for column in ("symbol", "train", "test from", "test rows", "test accuracy"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for symbol, figures in per_symbol.items():
        ranges = figures["date_ranges"]
        table.add_row(
            symbol, f"{ranges['train']['rows']:,}", ranges["test"]["start"][:10],
            f"{ranges['test']['rows']:,}", f"{figures['test_accuracy']:.1%}",
        )  # fmt: skip
    return table


def show_evaluation(result: dict[str, Any]) -> None:
    """Test-split accuracy against always guessing the commonest class, then per class."""
    metrics, model = result["metrics"], result["model"]
    console.print(
        f"test accuracy {metrics['test_accuracy']:.1%} (always the commonest class: "
        f"{metrics['baseline_accuracy']:.1%}); best epoch {metrics['best_epoch']} "
        f"of {metrics['epochs_run']}"
    )
    table = Table()
    for column in ("class", "precision", "recall", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, figures in result["evaluation"]["per_class"].items():
        table.add_row(
            name, f"{figures['precision']:.1%}", f"{figures['recall']:.1%}",
            str(figures["support"]),
        )  # fmt: skip
    console.print(table)
    if result.get("per_symbol"):
        console.print(symbols_table(result["per_symbol"]))
    if model.get("beats_baseline", True):
        console.print(
            f"saved model {model['name']} v{model['version']}: it beats its baseline, so "
            f"strategies whose decisions say 'model: {{name: {model['name']}}}' trade on it "
            f"(e.g. ktrdr backtest run {result['strategy']})"
        )
    else:
        console.print(
            f"saved model {model['name']} v{model['version']}, but it does NOT beat its "
            "baseline (always guessing the commonest class), so backtests will not use it by "
            "default; pin it with decisions.model.version: "
            f"{model['version']} (or --set decisions.model.version={model['version']}) "
            "to trade on it anyway",
            markup=False,
        )
