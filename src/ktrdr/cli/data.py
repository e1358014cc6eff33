"""`ktrdr data download | import | list | show | delete`: market data through the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from ktrdr.cli import ops
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console, literal, print_json
from ktrdr.cli.state import DEFAULT_URL, ExitCode, JsonOption, UrlOption
from ktrdr.cli.tracing import cli_span

app = typer.Typer(help="Market data: download, import, list, delete.", no_args_is_help=True)


def _submit(
    body: dict[str, Any], url: str, json: bool, command: str, client: ApiClient | None = None
) -> None:
    final = ops.submit_and_follow(
        client or ApiClient(url), command, "/data/downloads/start", body, quiet=json,
        symbol=body["symbol"],
    )  # fmt: skip
    ops.print_outcome_and_exit(final, json=json, show=_print_dataset)


def _print_dataset(op: dict[str, Any]) -> None:
    dataset = op["result"]["dataset"]
    console.print(
        f"{dataset['symbol']} {dataset['timeframe']}: {dataset['rows']:,} bars "
        f"from {dataset['first']} to {dataset['last']} ({dataset['source']})"
    )
    gaps = op["result"].get("gaps")
    if gaps is not None and "market" in dataset:
        console.print(f"{gaps} gap(s) against the {dataset['market']} calendar", markup=False)
    for note in op["result"].get("notes") or []:
        console.print(note, markup=False)


@app.command("download")
def download(
    symbol: str,
    timeframe: Annotated[str, typer.Option(help="1m 5m 15m 30m 1h 4h 1d 1w")] = "1h",
    provider: Annotated[
        str, typer.Option(help="synthetic (generated, offline) or yahoo (market data)")
    ] = "synthetic",
    start: Annotated[
        str | None, typer.Option(help="yahoo: first day; synthetic: first bar")
    ] = None,
    end: Annotated[str | None, typer.Option(help="yahoo: end day (exclusive)")] = None,
    bars: Annotated[int, typer.Option(help="synthetic: number of bars")] = 5000,
    seed: Annotated[int, typer.Option(help="synthetic: random seed")] = 0,
    merge: Annotated[bool, typer.Option(help="keep bars already stored")] = False,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Download (or generate synthetic) bars into the data store, as an operation."""
    body: dict[str, Any] = {
        "symbol": symbol, "timeframe": timeframe, "provider": provider, "start": start,
        "end": end, "bars": bars, "seed": seed, "merge": merge,
    }  # fmt: skip
    _submit({k: v for k, v in body.items() if v is not None}, url, json, "data_download")


@app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    symbol: Annotated[str, typer.Option()],
    timeframe: Annotated[
        str | None, typer.Option(help="default: inferred from the timestamps")
    ] = None,
    merge: Annotated[bool, typer.Option(help="keep bars already stored")] = False,
    delimiter: Annotated[str | None, typer.Option(help="default: detected (, ; tab |)")] = None,
    decimal: Annotated[str | None, typer.Option(help="default: detected (. or ,)")] = None,
    adjusted: Annotated[
        bool, typer.Option(help="use the Adj Close column (open/high/low scaled alike)")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Import a date,open,high,low,close,volume CSV; every bad row is reported with a fix."""
    client = ApiClient(url)
    # The file goes up once as an artifact; the operation refers to it by key and checksum.
    with cli_span("data_upload", symbol=symbol):
        upload = client.upload("/data/uploads", file.read_bytes(), "text/csv")
    body = {
        "symbol": symbol, "timeframe": timeframe, "provider": "csv",
        "upload_key": upload["key"], "upload_sha256": upload["sha256"], "merge": merge,
        "csv_delimiter": delimiter, "csv_decimal": decimal, "adjusted": adjusted,
    }  # fmt: skip
    _submit({k: v for k, v in body.items() if v is not None}, url, json, "data_import", client)


@app.command("list")
def list_data(url: UrlOption = DEFAULT_URL, json: JsonOption = False) -> None:
    """Stored series: symbol, timeframe, range, rows, source."""
    with cli_span("data_list"):
        body = ApiClient(url).get("/data")
    if json:
        print_json(body)
        return
    table = Table(title=f"Data ({body['count']})", title_justify="left")
    for column in ("symbol", "timeframe", "first", "last", "rows", "source", "market", "gaps"):
        table.add_column(column)
    for d in body["data"]:
        table.add_row(
            d["symbol"], d["timeframe"], d["first"][:16], d["last"][:16], f"{d['rows']:,}",
            d["source"], d.get("market", "-"), str(d.get("gaps", "")),
        )  # fmt: skip
    console.print(table)


@app.command("show")
def show(
    symbol: str,
    timeframe: Annotated[str, typer.Option()] = "1h",
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """One stored series."""
    with cli_span("data_show", symbol=symbol):
        body = ApiClient(url).get("/data")
    found = [
        d for d in body["data"] if d["symbol"] == symbol.upper() and d["timeframe"] == timeframe
    ]
    if not found:
        console.print(
            f"no data for {symbol.upper()} {timeframe}; "
            f"run `ktrdr data download {symbol.upper()} --timeframe {timeframe}`"
        )
        raise typer.Exit(ExitCode.REJECTED)
    if json:
        print_json(found[0])
    else:
        for key, value in found[0].items():
            console.print(f"[bold]{key:>10}[/] {literal(value)}")


@app.command("delete")
def delete(
    symbol: str,
    timeframe: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Delete a stored series (its bars and catalog entry); refused while an operation uses it."""
    what = f"{symbol.upper()} {timeframe}"
    if not yes and not typer.confirm(f"Delete {what}: its bars and catalog entry?"):
        console.print("nothing deleted", markup=False)
        raise typer.Exit(ExitCode.REJECTED)
    with cli_span("data_delete", symbol=symbol):
        path = f"/data/{quote(symbol, safe='')}/{quote(timeframe, safe='')}"
        body = ApiClient(url).request("DELETE", path)
    if json:
        print_json(body)
        return
    console.print(
        f"deleted {body['symbol']} {body['timeframe']}: {body['rows']:,} bars", markup=False
    )
