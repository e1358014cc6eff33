"""Jinja2 with autoescape on for every template, and the console's display filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from ktrdr import __version__
from ktrdr.console.security import CONTENT_SECURITY_POLICY
from ktrdr.reports import fmt

# The header the browser sends the user's API key in, as `Bearer <key>` (what the CLI sends).
API_KEY_HEADER = "Authorization"

_NAME_LINE = re.compile(r"^name:\s*(.+?)\s*$", re.MULTILINE)


def strategy_label(params: dict[str, Any]) -> str | None:
    """The strategy's name: an example's name as given, or the `name:` of pasted YAML."""
    text = params.get("strategy")
    if not isinstance(text, str):
        return None
    if "\n" not in text:
        return text.strip()
    found = _NAME_LINE.search(text)
    if found is None:
        return "(pasted YAML)"
    return found.group(1).strip().strip("'\"")


def timestamp(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def age(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    return duration(max(((now or datetime.now(UTC)) - value).total_seconds(), 0.0)) + " ago"


def number(value: Any, pattern: str = "{:,.2f}") -> str:
    return fmt(value, pattern)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ktrdr.console", "templates"),
        autoescape=True,  # every template, whatever its name: no unescaped user text
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        timestamp=timestamp, duration=duration, age=age, number=number,
        strategy_label=strategy_label,
    )  # fmt: skip
    env.globals.update(version=__version__, api_key_header=API_KEY_HEADER)
    return env


def render(
    request: Request, name: str, *, status_code: int = 200, headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:  # fmt: skip
    html = (
        environment().get_template(name).render(request=request, path=request.url.path, **context)
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response
