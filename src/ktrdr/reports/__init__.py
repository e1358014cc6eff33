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


def diagnostic_text(value: Any) -> str:
    """A sweep diagnostic as shown: a count as a count (trials: 15), a ratio to 4 places."""
    return fmt(value, "{:,}" if isinstance(value, int) else "{:.4f}")


def utc_minute(stamp: str) -> str:
    """2020-10-28T07:00:00+00:00 -> 2020-10-28 07:00 (campaign windows are in UTC)."""
    return str(stamp)[:16].replace("T", " ")


def efficiency_text(result: dict[str, Any]) -> str:
    """A walk-forward result's efficiency, or why it has none: the ratio is only defined
    against a positive in-sample objective, and "n/a" alone reads like a failure."""
    value = result.get("walkforward_efficiency")
    if value is not None:
        return fmt(value, "{:.3f}")
    in_sample = [w.get("in_sample_objective") for w in result.get("windows") or []]
    known = [v for v in in_sample if v is not None]
    if known and sum(known) / len(known) <= 0:
        return "n/a (the in-sample objective is not positive: no edge to carry over)"
    return "n/a"
