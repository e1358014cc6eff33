"""Options every command shares, and the exit codes scripts can rely on."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import typer

from ktrdr.constants import DEFAULT_API_URL


class ExitCode(IntEnum):
    OK = 0
    OPERATION_FAILED = 1  # the operation ended failed or cancelled
    USAGE = 2  # bad command line (Typer's own code)
    REJECTED = 3  # the API refused the request (4xx)
    UNAVAILABLE = 4  # the API could not be reached or failed (5xx)
    INTERRUPTED = 130  # Ctrl-C while following (the shell's 128 + SIGINT)


UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="KTRDR_API_URL", help="API base URL", show_default=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
DEFAULT_URL = DEFAULT_API_URL

# What `backtest run` and `train run` share: a strategy and the bars to run it on.
StrategyArgument = Annotated[str, typer.Argument(help="strategy YAML file, or an example name")]
SymbolOption = Annotated[str | None, typer.Option(help="default: the strategy's")]
TimeframeOption = Annotated[str | None, typer.Option(help="default: the strategy's")]
SymbolsOption = Annotated[
    str | None,
    typer.Option(help="several symbols, comma-separated (A,B,C), instead of --symbol"),
]


def split_symbols(text: str | None) -> list[str] | None:
    """``"eurusd, GBPUSD"`` → ``["eurusd", "GBPUSD"]`` (the API upper-cases and checks)."""
    if text is None:
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


StartOption = Annotated[str | None, typer.Option(help="first bar, e.g. 2020-03-01")]
EndOption = Annotated[str | None, typer.Option(help="last bar (inclusive)")]
CancelOnInterruptOption = Annotated[
    bool,
    typer.Option(
        "--cancel-on-interrupt",
        help="Ctrl-C cancels the operation (default: stop following, leave it running)",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="PATH=VALUE override in the strategy, repeatable "
        "(indicators.rsi.params.period=21, costs.commission=0.0002); VALUE is YAML",
    ),
]


def parse_overrides(items: list[str] | None) -> dict[str, object] | None:
    """``["a.b=21", "c=[1, 2]"]`` → ``{"a.b": 21, "c": [1, 2]}`` (values read as YAML)."""
    import yaml

    if not items:
        return None
    out: dict[str, object] = {}
    for item in items:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise typer.BadParameter(
                f"{item!r} is not PATH=VALUE (e.g. --set indicators.rsi.params.period=21)",
                param_hint="--set",
            )
        try:
            out[path.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            out[path.strip()] = text
    return out
