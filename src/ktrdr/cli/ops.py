"""`ktrdr ops list | show | follow | cancel`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import (
    console,
    err_console,
    operation_panel,
    operations_table,
    print_error,
    print_json,
    status_text,
)
from ktrdr.cli.state import (
    DEFAULT_URL,
    CancelOnInterruptOption,
    ExitCode,
    JsonOption,
    UrlOption,
)
from ktrdr.cli.tracing import cli_span

app = typer.Typer(help="Inspect and control operations.", no_args_is_help=True)

TERMINAL = {"completed", "failed", "cancelled"}


@app.command("list")
def list_operations(
    status: Annotated[list[str] | None, typer.Option(help="filter, repeatable")] = None,
    type: Annotated[list[str] | None, typer.Option(help="filter, repeatable")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    chunks: Annotated[
        bool, typer.Option(help="also the chunk operations campaigns run on the workers")
    ] = False,
    parent: Annotated[
        str | None, typer.Option(help="only this campaign's chunks (a sweep or walk-forward id)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """List operations, newest first (campaigns without their chunks unless asked)."""
    with cli_span("ops_list"):
        page = ApiClient(url).get(
            "/operations", status=status, type=type, limit=limit, offset=offset,
            parent_id=parent, top_level=not (chunks or parent),
        )  # fmt: skip
    if json:
        print_json(page)
    else:
        console.print(operations_table(page["data"], page["count"]))


@app.command("show")
def show(operation_id: str, url: UrlOption = DEFAULT_URL, json: JsonOption = False) -> None:
    """One operation: status, progress, worker, error, trace id."""
    from ktrdr.config import CliSettings

    with cli_span("ops_show", **{"operation.id": operation_id}):
        op = ApiClient(url).get(f"/operations/{operation_id}")
    if json:
        print_json(op)
    else:
        console.print(operation_panel(op, CliSettings().jaeger_ui_url))


@app.command("cancel")
def cancel(operation_id: str, url: UrlOption = DEFAULT_URL, json: JsonOption = False) -> None:
    """Cancel a pending or running operation."""
    with cli_span("ops_cancel", **{"operation.id": operation_id}):
        op = ApiClient(url).post(f"/operations/{operation_id}/cancel")
    if json:
        print_json(op)
    else:
        console.print(f"{op['id']}: {status_text(op['status'])}")


@app.command("resume")
def resume(operation_id: str, url: UrlOption = DEFAULT_URL, json: JsonOption = False) -> None:
    """Continue a cancelled or failed training run from its last checkpoint."""
    with cli_span("ops_resume", **{"operation.id": operation_id}):
        op = ApiClient(url).post(f"/operations/{operation_id}/resume")
    if json:
        print_json(op)
    else:
        console.print(f"{op['id']}: {status_text(op['status'])} (resumes {operation_id})")
        console.print(f"follow it with: ktrdr ops follow {op['id']}")


@app.command("follow")
def follow_command(
    operation_id: str,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
    interval_s: Annotated[float, typer.Option(min=0.05)] = 0.25,
    cancel_on_interrupt: CancelOnInterruptOption = False,
) -> None:
    """Follow an operation with a live progress bar until it ends; exit 1 unless completed."""
    with cli_span("ops_follow", **{"operation.id": operation_id}):
        op = follow(
            ApiClient(url), operation_id, interval_s=interval_s, quiet=json,
            cancel_on_interrupt=cancel_on_interrupt,
        )  # fmt: skip
    if json:
        print_json(op)
    raise typer.Exit(exit_code_for(op))


def submit_and_follow(
    client: ApiClient,
    command: str,
    path: str,
    body: dict[str, Any],
    *,
    quiet: bool,
    cancel_on_interrupt: bool = False,
    detail: Callable[[str], str] | None = None,
    **span_attributes: str,
) -> dict[str, Any]:
    """Start an operation (fields left as None are not sent) and follow it to its end,
    all inside the command's span, which then carries the operation id."""
    with cli_span(command, **span_attributes) as span:
        op = client.post(path, {k: v for k, v in body.items() if v is not None})
        if span is not None:
            span.set_attribute("operation.id", op["id"])
        if not quiet:
            console.print(f"queued {op['id']}")
        return follow(
            client, op["id"], quiet=quiet, cancel_on_interrupt=cancel_on_interrupt, detail=detail
        )


def print_outcome_and_exit(
    final: dict[str, Any], *, json: bool, show: Callable[[dict[str, Any]], None]
) -> NoReturn:
    """The end of every submit-and-follow command: the operation as JSON, or ``show`` of a
    completed one; then the exit code its status calls for."""
    if json:
        print_json(final)
    elif final["status"] == "completed":
        show(final)
    raise typer.Exit(exit_code_for(final))


def exit_code_for(op: dict[str, Any]) -> int:
    return ExitCode.OK if op["status"] == "completed" else ExitCode.OPERATION_FAILED


def follow(
    client: ApiClient,
    operation_id: str,
    *,
    interval_s: float = 0.25,
    quiet: bool = False,
    cancel_on_interrupt: bool = False,
    detail: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Poll until the operation ends, drawing a progress bar unless quiet. Ctrl-C stops
    following and says so: the operation goes on unless ``cancel_on_interrupt``.
    ``detail(operation_id)``: a column of its own beside the bar (e.g. the newest
    validation metric of a training run), asked for once the operation has started."""
    last: dict[str, Any] = {"status": "running"}
    try:
        return _poll(client, operation_id, interval_s, quiet, last, detail)
    except KeyboardInterrupt:
        _interrupted(client, operation_id, last["status"], cancel_on_interrupt)


def _interrupted(client: ApiClient, operation_id: str, status: str, cancel: bool) -> NoReturn:
    if cancel:
        op = client.post(f"/operations/{operation_id}/cancel")
        err_console.print(
            Text(f"stopped following; {operation_id} is {op['status']}"), soft_wrap=True
        )
    else:
        err_console.print(
            Text(
                f"stopped following; {operation_id} is still {status} — "
                f"`ktrdr ops cancel {operation_id}` to stop it"
            ),
            soft_wrap=True,
        )
    raise typer.Exit(ExitCode.INTERRUPTED)


def _poll(
    client: ApiClient,
    operation_id: str,
    interval_s: float,
    quiet: bool,
    last: dict[str, Any],
    detail: Callable[[str], str] | None,
) -> dict[str, Any]:
    if quiet:
        while (op := client.get(f"/operations/{operation_id}"))["status"] not in TERMINAL:
            last["status"] = op["status"]
            time.sleep(interval_s)
        return op
    columns = (
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}", markup=False),
        TextColumn("{task.description}", markup=False),  # worker text, printed as is
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("", total=100, status="pending", detail="")
        while True:
            op = client.get(f"/operations/{operation_id}")
            last["status"] = op["status"]
            progress = op["progress"]
            text = " ".join(filter(None, [progress.get("phase"), progress.get("message")]))
            if op["status"] == "pending" and op.get("status_reason"):
                text = op["status_reason"]
            # Asked once more at the end: the bar left on screen shows the final figures.
            extra = detail(operation_id) if detail and op["status"] != "pending" else None
            bar.update(task, completed=progress["percent"], status=op["status"], description=text)
            if extra is not None:
                bar.update(task, detail=extra)
            if op["status"] in TERMINAL:
                break
            time.sleep(interval_s)
    console.print(f"{op['id']}: {status_text(op['status'])}")
    if op.get("error"):
        print_error(op["error"], to_stderr=False)
    return op
