"""`ktrdr`: the command line. Exit codes: see ktrdr.cli.state.ExitCode."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from ktrdr.cli import backtest, data, keys, mcp, ops, servers, strategy, sweep, train
from ktrdr.cli.client import API_KEY_ENV, ApiClient, ApiError, ApiUnreachable, use_api_key
from ktrdr.cli.output import console, print_error, print_json, workers_table
from ktrdr.cli.state import DEFAULT_URL, ExitCode, JsonOption, UrlOption
from ktrdr.cli.tracing import cli_span
from ktrdr.jobs.specs import describe_validation_error

app = typer.Typer(
    help="KTRDR: trading-strategy research on self-registering workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from ktrdr import __version__

        print(f"ktrdr {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            help="user API key sent to the API (not KTRDR_API_TOKEN, the workers' secret)",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="API base URL for every subcommand (or KTRDR_API_URL)"),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="print it"),
    ] = False,
) -> None:
    """KTRDR: trading-strategy research on self-registering workers."""
    use_api_key(api_key)
    if url:
        # `ktrdr --url U ops list` as the README shows: each subcommand's own --url reads
        # KTRDR_API_URL when it is not given, and Click parses the subcommand after this
        # group callback runs, so setting it here reaches every command.
        os.environ["KTRDR_API_URL"] = url


app.add_typer(ops.app, name="ops")
app.add_typer(backtest.app, name="backtest")
app.add_typer(data.app, name="data")
app.add_typer(train.app, name="train")
app.add_typer(keys.app, name="keys")
app.add_typer(strategy.app, name="strategy")
app.add_typer(sweep.app, name="sweep")
app.add_typer(sweep.wf_app, name="walkforward")


app.command()(servers.api)
app.command()(servers.worker)
app.command()(servers.up)
app.command()(mcp.mcp)


@app.command("workers")
def list_workers(
    all: Annotated[bool, typer.Option("--all", help="include lost and offline")] = False,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """List registered workers."""
    with cli_span("workers"):
        body = ApiClient(url).get("/workers", include_gone=str(all).lower())
    if json:
        print_json(body)
    else:
        console.print(workers_table(body["data"]))


@app.command()
def doctor(
    steps: Annotated[int, typer.Option(min=0)] = 5,
    step_ms: Annotated[int, typer.Option(min=0)] = 100,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Smoke-check a running platform: health, workers, and one diagnostic operation."""
    client = ApiClient(url)
    with cli_span("doctor") as span:
        health = client.get("/health")
        console.print(f"API {health['version']}: {health['status']}, database {health['database']}")
        workers = client.get("/workers")
        capable = [w for w in workers["data"] if "diagnostic" in w["kinds"]]
        console.print(f"workers online: {workers['count']} ({len(capable)} run diagnostics)")
        op = client.post("/diagnostics/start", {"steps": steps, "step_ms": step_ms})
        if span is not None:
            span.set_attribute("operation.id", op["id"])
        final = ops.follow(client, op["id"])
    raise typer.Exit(ops.exit_code_for(final))


@app.command()
def demo(
    workers: Annotated[int, typer.Option(min=1, max=4)] = 2,
    api_port: Annotated[int, typer.Option()] = 8000,
    worker_port: Annotated[int, typer.Option()] = 5003,
) -> None:
    """Start the local stack, run the demo job through it, show the result, stop."""
    from ktrdr.cli.demo import run_demo

    raise typer.Exit(run_demo(workers=workers, api_port=api_port, worker_port=worker_port))


def main() -> None:
    """Console-script entry: API errors become one line and an exit code, not a traceback."""
    try:
        app()
    except ApiUnreachable as exc:
        print_error(exc)
        sys.exit(ExitCode.UNAVAILABLE)
    except ApiError as exc:
        print_error(exc)
        code = ExitCode.REJECTED if exc.status and exc.status < 500 else ExitCode.UNAVAILABLE
        sys.exit(code)
    except ValidationError as exc:  # settings or options that do not validate
        print_error(describe_validation_error(exc, "settings"))
        sys.exit(ExitCode.USAGE)
    except ValueError as exc:
        print_error(str(exc).splitlines()[0])
        sys.exit(ExitCode.USAGE)


if __name__ == "__main__":
    main()
