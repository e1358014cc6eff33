"""`ktrdr strategy validate | explain`: check a strategy file, and see why it decides what
it decides on one bar (computed on a worker, through a one-bar backtest)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ktrdr.cli import ops
from ktrdr.cli.backtest import payload_to_frame, strategy_argument
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console, literal, print_error, print_json
from ktrdr.cli.state import (
    DEFAULT_URL,
    ExitCode,
    JsonOption,
    SetOption,
    SymbolOption,
    TimeframeOption,
    UrlOption,
    parse_overrides,
)

app = typer.Typer(help="Check strategy files and see why they decide.", no_args_is_help=True)


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="strategy YAML file")],
    set_: SetOption = None,
    json: JsonOption = False,
) -> None:
    """Check a strategy file; list every problem with its fix (exit 3 when there are any)."""
    from ktrdr.engine.errors import StrategyError
    from ktrdr.engine.strategy.loader import validate_strategy_text
    from ktrdr.engine.strategy.paths import apply_overrides

    if not file.is_file():
        raise typer.BadParameter(f"no strategy file {file}", param_hint="FILE")
    try:
        strategy = validate_strategy_text(file.read_text(encoding="utf-8"))
        overrides = parse_overrides(set_)
        if overrides:
            strategy = apply_overrides(strategy, overrides)
    except StrategyError as exc:
        if json:
            print_json({"valid": False, "problems": exc.problems})
        else:
            console.print(f"{file}: {len(exc.problems)} problem(s)", markup=False)
            for problem in exc.problems:
                print_error(problem, to_stderr=False)
        raise typer.Exit(ExitCode.REJECTED) from None
    if json:
        print_json({"valid": True, "problems": [], "name": strategy.name})
    else:
        decides = next(
            k for k in ("signals", "fuzzy_rules", "model")
            if getattr(strategy.decisions, k) is not None
        )  # fmt: skip
        console.print(
            f"{file}: valid — {strategy.name}, {len(strategy.indicators)} indicator(s), "
            f"{len(strategy.fuzzy_sets)} fuzzy variable(s), decides by {decides}",
            markup=False,
        )


@app.command("explain")
def explain(
    strategy: Annotated[str, typer.Argument(help="strategy YAML file, or an example name")],
    at: Annotated[str, typer.Option(help="the bar to explain, e.g. 2010-05-04")],
    symbol: SymbolOption = None,
    timeframe: TimeframeOption = None,
    set_: SetOption = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """One bar: indicator values, fuzzy memberships, which rules fired and how strongly,
    the action and the resulting target (indicators warmed up on the bars before it)."""
    body: dict[str, Any] = {
        "strategy": strategy_argument(strategy),
        "symbol": symbol,
        "timeframe": timeframe,
        "start": at,
        "end": at,
        "overrides": parse_overrides(set_),
        "debug_frames": True,
    }
    final = ops.submit_and_follow(
        ApiClient(url), "strategy_explain", "/backtests/start", body, quiet=True,
        strategy=strategy,
    )  # fmt: skip
    if final["status"] != "completed":
        print_error(final.get("error") or final["status"])
        raise typer.Exit(ExitCode.OPERATION_FAILED)
    frame = payload_to_frame(final["result"]["debug_frame"])
    row = frame.iloc[0]
    if json:
        print_json({"time": frame.index[0].isoformat(), **row.to_dict()})
        return
    result = final["result"]
    console.print(
        f"{result['strategy_name']} on {result['symbol']} {result['timeframe']} at "
        f"{frame.index[0].isoformat()}",
        markup=False,
    )
    table = Table(show_header=True, title_justify="left")
    for column in ("what", "name", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for name, value in row.items():
        if name in {"position", "equity"}:  # of this one-bar run only: not informative
            continue
        kind, _, label = str(name).rpartition(":")
        table.add_row(kind or "value", literal(label), _shown(value))
    console.print(table)
    if not row["action"]:
        console.print("no action: the position it had is kept", markup=False)
        return
    target = int(row["target"])
    side = {1: "long", 0: "flat", -1: "short"}[target]
    console.print(
        f"action {row['action']} → target {side} ({target:+d}), filled at the next bar's open",
        markup=False,
    )


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    return literal(value)
