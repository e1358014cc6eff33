"""Tiny text helpers to inspect PromQL selectors in tests (not a parser: promtool parses)."""

from __future__ import annotations

import re

# metric{matchers}: a name not preceded by a name character, ':' or a quote.
_SELECTOR = re.compile(r'(?<![\w:"$])([a-zA-Z_][a-zA-Z0-9_:]*)\s*\{([^}]*)\}')
_NAME = re.compile(r'(?<![\w:"$])([a-zA-Z_][a-zA-Z0-9_]*)(?![\w:(])')
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def selectors(expr: str) -> list[tuple[str, str]]:
    """Every ``(metric name, matcher text)`` in ``expr``."""
    return [(m.group(1), m.group(2)) for m in _SELECTOR.finditer(expr)]


def base_name(metric: str) -> str:
    """Histogram series name -> histogram name (``x_bucket`` -> ``x``)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if metric.endswith(suffix):
            return metric[: -len(suffix)]
    return metric


def bare_mentions(expr: str, metric: str) -> int:
    """How often ``metric`` (or its histogram series) appears in ``expr`` at all."""
    names = {metric, *(metric + s for s in HISTOGRAM_SUFFIXES)}
    return sum(1 for m in _NAME.finditer(expr) if m.group(1) in names)
