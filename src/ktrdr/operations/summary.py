"""Short summaries of an operation's parameters and result, for listings.

Stored beside the full record when it is created and when it completes, so a listing
reads a few hundred bytes per operation whatever the operation holds (a strategy file, a
result with thousands of trades). Each summary is at most ``MAX_SUMMARY_BYTES`` of JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_SUMMARY_BYTES = 1024
MAX_TEXT = 80
MAX_NESTED_KEYS = 8
# Result sections that a table shows a few numbers of, and which numbers.
_HEADLINE = {
    "statistics": (
        "start",
        "end",
        "total_return_pct",
        "sharpe_ratio",
        "max_drawdown_pct",
        "num_trades",
        "win_rate_pct",
        "final_equity",
    ),
}
# Whole sections whose scalar values are already a summary.
_SMALL_SECTIONS = ("metrics", "model", "dataset", "portfolio")
# The strategy file's top-level `name:` line, as the console reads it too.
_NAME_LINE = re.compile(r"^name:\s*(.+?)\s*$", re.MULTILINE)

Scalar = str | int | float | bool | None


def _scalar(value: Any) -> tuple[bool, Scalar]:
    if isinstance(value, str):
        return True, value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
    if value is None or isinstance(value, bool | int | float):
        return True, value
    return False, None


def strategy_name(strategy: str) -> str:
    """An example's name as is; a strategy file's top-level ``name:`` (no YAML parse)."""
    if "\n" not in strategy:
        return _scalar(strategy.strip())[1] or ""  # type: ignore[return-value]
    found = _NAME_LINE.search(strategy)
    if found is None:
        return "(pasted YAML)"
    name = found.group(1)
    quote = name[:1]
    if quote in ("'", '"') and quote in name[1:]:
        name = name[1 : name.index(quote, 1)]  # a quoted name ends at its closing quote
    else:
        name = name.split(" #", 1)[0]  # an unquoted name may carry a trailing comment
    return name.strip().strip("'\"")[:MAX_TEXT]


def _bounded(summary: dict[str, Any]) -> dict[str, Any]:
    """Drop trailing keys until the JSON fits ``MAX_SUMMARY_BYTES``."""
    while summary and len(json.dumps(summary, default=str)) > MAX_SUMMARY_BYTES:
        summary.popitem()
    return summary


def summarise_params(params: dict[str, Any]) -> dict[str, Any]:
    """Scalar parameters (strategy text becomes its name); lists and mappings left out."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "strategy" and isinstance(value, str):
            out["strategy"] = strategy_name(value)
            continue
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = ",".join(value)  # a universe's symbols: one line in a listing
        ok, short = _scalar(value)
        if ok and value is not None:
            out[key] = short
    return _bounded(out)


def filter_keys(params: dict[str, Any], max_chars: int) -> dict[str, str | None]:
    """The symbol and strategy name an operation is found by (None where it has none)."""
    symbol = params.get("symbol")
    strategy = params.get("strategy")
    return {
        "symbol": symbol.strip().upper()[:max_chars] if isinstance(symbol, str) else None,
        "strategy": strategy_name(strategy)[:max_chars] if isinstance(strategy, str) else None,
    }


def summarise_result(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """Top-level scalars plus the headline numbers of known sections; no tables."""
    if result is None:
        return None
    out: dict[str, Any] = {}
    for key, value in result.items():
        ok, short = _scalar(value)
        if ok:
            out[key] = short
        elif isinstance(value, dict) and (key in _HEADLINE or key in _SMALL_SECTIONS):
            wanted = _HEADLINE.get(key) or list(value)[:MAX_NESTED_KEYS]
            pairs = ((k, _scalar(value[k])) for k in wanted if k in value)
            out[key] = {k: short for k, (ok, short) in pairs if ok}
    return _bounded(out)
