"""Renderings of results shared by the CLI's report files and the web console.

Pure functions from result dicts to text, SVG or HTML fragments (every user-supplied
string escaped), so `ktrdr sweep show --html` and the console's report page draw the same
picture from one copy of the code. Imports nothing from the backend, the engine or Rich.
"""

from __future__ import annotations

from typing import Any


def fmt(value: Any, pattern: str) -> str:
    """`pattern.format(value)`, "n/a" for a missing value, the value as text if it does not fit."""
    if value is None:
        return "n/a"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)
