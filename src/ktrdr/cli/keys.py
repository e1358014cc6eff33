"""`ktrdr keys new`: make a user API key and the hashed line the operator configures."""

from __future__ import annotations

from typing import Annotated

import typer

from ktrdr.credentials import ApiKeyEntry, Scope, hash_secret, new_secret, parse_api_keys

app = typer.Typer(help="User API keys (for people and scripts).", no_args_is_help=True)


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="who or what uses it; shown in the audit log")],
    scope: Annotated[
        list[Scope] | None, typer.Option(help="read (list, inspect) / operate (start, cancel)")
    ] = None,
) -> None:
    """Print a new key (give it to its user) and its line for KTRDR_API_KEYS (keep that)."""
    key = new_secret()
    entry = ApiKeyEntry(name, frozenset(scope or [Scope.READ]), hash_secret(key))
    line = entry.line()
    parse_api_keys(line, "the new key")  # a bad name fails here, not at the API's start
    # Plain echo, not Rich: a wrapped line would be copied with a break in the hash.
    typer.echo("# the key (shown once; its user sets KTRDR_API_KEY or passes --api-key):")
    typer.echo(key)
    typer.echo("# the line for KTRDR_API_KEYS or KTRDR_API_KEYS_FILE (a hash, not the key):")
    typer.echo(line)
