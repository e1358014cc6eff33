"""Pydantic validation errors as short lines a person can act on (one rule for the API,
the job parameters and the CLI's settings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Where FastAPI says the value came from; not part of the field's name for a person.
_SOURCES = {"body", "query", "path", "header"}


def field_problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """[{"field": "steps", "problem": "..."}] for each pydantic error."""
    problems: list[dict[str, str]] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "parse error")
            problems.append(
                {"field": "body", "problem": f"request body is not valid JSON ({reason})"}
            )
            continue
        loc = [str(p) for p in err.get("loc", ())]
        field = ".".join(p for p in loc if p not in _SOURCES) or "body"
        if err.get("type") == "extra_forbidden":
            message = "unknown field; remove it (check the spelling against the API docs at /docs)"
        else:
            given = err.get("input")
            shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
            # Pydantic prefixes a validator's ValueError with "Value error, ": not for people.
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            message = f"{msg}{shown}"
        problems.append({"field": field, "problem": message})
    return problems


def summarise(what: str, problems: list[dict[str, str]]) -> str:
    """One line; a single problem with the request as a whole (a cross-field check, which
    already says what is wrong and how to fix it) is shown as it is, without a prefix."""
    if len(problems) == 1 and problems[0]["field"] == "body":
        return problems[0]["problem"]
    return f"invalid {what}: " + "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
