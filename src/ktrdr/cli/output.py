"""Rendering for people (Rich) and for scripts (--json)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)

STATUS_STYLE = {
    "pending": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def error_text(message: object) -> Text:
    """'error: …' with the message printed literally: text from the API or an exception may
    hold square brackets (`pip install 'ktrdr[download]'`, `[a, b]`) that Rich would
    otherwise read as markup and delete."""
    return Text.assemble(("error: ", "red"), str(message))


def print_error(message: object, *, to_stderr: bool = True) -> None:
    (err_console if to_stderr else console).print(error_text(message), soft_wrap=True)


def literal(value: object) -> str:
    """A value from the API made safe to put inside a Rich markup string."""
    return escape(str(value))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def short_time(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def _ran(op: dict[str, Any]) -> str:
    """What the operation ran, from its parameter summary: strategy, symbol, timeframe."""
    params = op.get("params_summary") or {}
    parts = [params.get("strategy"), params.get("symbol"), params.get("timeframe")]
    if op["type"] == "data_download":
        parts = [params.get("provider"), params.get("symbol"), params.get("timeframe")]
    elif params.get("label"):
        parts.append(params["label"])
    return " ".join(str(p) for p in parts if p) or "-"


def _outcome(op: dict[str, Any]) -> str:
    """The headline of the result summary (backtests: return, Sharpe, trades)."""
    result = op.get("result_summary") or {}
    stats = result.get("statistics") or {}
    if stats:
        ret, sharpe = stats.get("total_return_pct"), stats.get("sharpe_ratio")
        return (
            f"{'n/a' if ret is None else f'{ret:+.2f}%'} · Sharpe "
            f"{'n/a' if sharpe is None else f'{sharpe:.2f}'} · {stats.get('num_trades', 0)} trades"
        )
    metrics = result.get("metrics") or {}
    if "test_accuracy" in metrics:
        return f"test accuracy {metrics['test_accuracy']:.1%}"
    if "rows_written" in metrics:
        return f"{metrics['rows_written']:,} rows"
    return (op.get("error") or "").splitlines()[0][:60] if op.get("error") else ""


def operations_table(ops: list[dict[str, Any]], total: int) -> Table:
    # Ids are what people copy into the next command: never wrapped or cut, so the table
    # keeps to four columns and stacks the rest in two-line cells.
    table = Table(title=f"Operations ({len(ops)} of {total})", title_justify="left", box=None)
    id_width = max((len(op["id"]) for op in ops), default=2)
    table.add_column("id", no_wrap=True, min_width=id_width, overflow="ignore")
    table.add_column("status")
    table.add_column("ran / result")
    table.add_column("created", no_wrap=True)
    for op in ops:
        status = status_text(op["status"])
        if op["status"] == "running":
            status += f" {op['progress']['percent']:.0f}%"
        worker = op.get("worker_id")
        outcome = _outcome(op)
        table.add_row(
            op["id"],
            status + (f"\n[dim]{worker}[/]" if worker else ""),
            _ran(op) + (f"\n{outcome}" if outcome else ""),
            datetime.fromisoformat(op["created_at"]).strftime("%m-%d %H:%M"),
        )
    return table


def workers_table(workers: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Workers ({len(workers)})", title_justify="left")
    for column in ("id", "kinds", "state", "running", "url", "last heartbeat"):
        table.add_column(column)
    for worker in workers:
        table.add_row(
            worker["id"],
            ", ".join(worker["kinds"]),
            worker["state"],
            worker.get("current_operation_id") or "[dim]idle[/]",
            worker["url"],
            short_time(worker["last_heartbeat_at"]),
        )
    return table


def operation_panel(op: dict[str, Any], jaeger_url: str | None) -> Table:
    table = Table(show_header=False, box=None, title=op["id"], title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    progress = op["progress"]
    rows = [
        ("type", op["type"]),
        ("status", status_text(op["status"])),
        ("progress", f"{progress['percent']:.1f}% {progress.get('phase') or ''} "
                     f"{literal(progress.get('message') or '')}".rstrip()),
        ("worker", op.get("worker_id") or "-"),
        ("attempt", f"{op['attempt']} of {op['max_attempts']}"),
        ("created", short_time(op["created_at"])),
        ("started", short_time(op.get("started_at"))),
        ("completed", short_time(op.get("completed_at"))),
        ("reason", literal(op.get("status_reason") or "-")),
        ("error", literal(op.get("error") or "-")),
        ("trace id", op.get("trace_id") or "-"),
        ("parameters", ""),
    ]  # fmt: skip
    rows.extend((f"  {k}", literal(v)) for k, v in params_lines(op.get("params") or {}))
    if jaeger_url and op.get("trace_id"):
        rows.append(("trace", f"{jaeger_url.rstrip('/')}/trace/{op['trace_id']}"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def params_lines(params: dict[str, Any]) -> list[tuple[str, str]]:
    """An operation's parameters as (name, value) lines: a strategy file's text as its name
    and size, overrides one per line, long values cut."""
    lines: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None or value == {}:
            continue
        if key == "strategy" and isinstance(value, str) and "\n" in value:
            name = next(
                (ln.partition(":")[2].strip() for ln in value.splitlines()
                 if ln.startswith("name:")),
                "?",
            )  # fmt: skip
            lines.append((key, f"{name} (file, {len(value.splitlines())} lines)"))
        elif key == "overrides" and isinstance(value, dict):
            lines.extend(("set", f"{path}={json.dumps(v)}") for path, v in value.items())
        elif key == "model" and isinstance(value, dict):
            lines.append(
                (key, f"{value.get('name')} v{value.get('version')} (trained on "
                      f"{value.get('symbol')} {value.get('timeframe')})")
            )  # fmt: skip
        elif key == "csv_text":
            lines.append((key, f"({len(str(value)):,} characters)"))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            lines.append((key, text if len(text) <= 120 else text[:119] + "…"))
    return lines
