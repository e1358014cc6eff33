"""`ktrdr mcp`: serve the MCP tools over stdio (needs the `mcp` extra)."""

from __future__ import annotations

import typer

from ktrdr.cli import client as cli_client
from ktrdr.cli.state import DEFAULT_URL, UrlOption


def mcp(url: UrlOption = DEFAULT_URL) -> None:
    """Serve KTRDR's research tools to AI assistants over MCP (stdio).

    The tools call the API at --url with the key of --api-key / KTRDR_API_KEY."""
    try:
        from ktrdr.mcp.server import serve
    except ImportError as exc:
        raise typer.BadParameter(
            f"ktrdr mcp needs the mcp extra: pip install 'ktrdr[mcp]' ({exc})"
        ) from exc
    serve(url, cli_client.current_api_key())
