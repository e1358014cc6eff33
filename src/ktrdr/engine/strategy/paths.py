"""Dotted paths into a strategy document, and substituting values at them.

A path addresses any value of the strategy by dotted segments: mapping keys, list positions
(``decisions.signals.0.threshold.above``, ``fuzzy_sets.rsi.sets.low.points.1``) and, in the
``indicators`` list, an indicator's id (``indicators.sma_fast.params.period``). Defaults count
as present (``costs.slippage``, an indicator's ``source``), so every value a strategy has
can be addressed. Sweeps (``search.py``) and ``--set`` overrides both go through
``apply_overrides``: one rule for what a path means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from ktrdr.engine.errors import StrategyError
from ktrdr.engine.strategy.loader import load_yaml, validate_strategy_mapping
from ktrdr.engine.strategy.schema import Strategy
from ktrdr.engine.timeframes import did_you_mean

__all__ = [
    "apply_overrides",
    "get_path",
    "parse_override",
    "set_path",
    "short_name",
    "strategy_document",
]


def strategy_document(strategy: Strategy) -> dict[str, Any]:
    """The strategy as a plain mapping with every default filled in (indicator params too),
    without its ``search`` section; validating it gives the same strategy back."""
    doc = strategy.model_dump(mode="json")
    for ind in doc["indicators"]:
        ind["params"] = strategy.indicator_params(ind["id"]).model_dump(mode="json")
    return doc


def _step_into(node: Any, segment: str, done: str) -> tuple[Any, str | int]:
    """The child of ``node`` named by ``segment`` and its key; StrategyError if absent."""
    here = done or "the strategy"
    if isinstance(node, dict):
        if segment in node:
            return node[segment], segment
        keys = [str(k) for k in node]
        raise _path_error(f"no {segment!r} under {here}{did_you_mean(segment, keys)}", keys)
    if isinstance(node, list):
        ids = [x["id"] for x in node if isinstance(x, dict) and isinstance(x.get("id"), str)]
        if segment in ids:
            i = ids.index(segment)
            return node[i], i
        if segment.isdigit() and int(segment) < len(node):
            return node[int(segment)], int(segment)
        choices = ids or [str(i) for i in range(len(node))]
        hint = did_you_mean(segment, ids) if ids else ""
        raise _path_error(f"no item {segment!r} in {here}{hint}", choices)
    raise _path_error(f"{here} is a value ({node!r}), it has no {segment!r}", [])


def _path_error(message: str, choices: list[str]) -> StrategyError:
    listed = f"; choose from: {', '.join(choices)}" if choices else ""
    return StrategyError([message + listed])


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in a strategy document (see the module docstring)."""
    node: Any = doc
    done = ""
    for segment in path.split("."):
        node, _ = _step_into(node, segment, done)
        done = f"{done}.{segment}" if done else segment
    return node


def set_path(doc: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``value`` at ``path``; only the containers on the path are
    copied (the input is never changed). The path must already exist and end at a value,
    not at a section (StrategyError with a did-you-mean otherwise)."""
    segments = path.split(".")
    chain: list[Any] = [doc]
    keys: list[str | int] = []
    done = ""
    for segment in segments:
        child, key = _step_into(chain[-1], segment, done)
        chain.append(child)
        keys.append(key)
        done = f"{done}.{segment}" if done else segment
    if isinstance(chain[-1], dict):
        sub = ", ".join(f"{path}.{k}" for k in chain[-1])
        raise StrategyError([f"{path!r} is a section, not a value; address one of: {sub}"])
    new: Any = value
    for container, key in zip(reversed(chain[:-1]), reversed(keys), strict=True):
        copy: Any = dict(container) if isinstance(container, dict) else list(container)
        copy[key] = new
        new = copy
    return dict(new)


def apply_overrides(strategy: Strategy | Mapping[str, Any], values: Mapping[str, Any]) -> Strategy:
    """``strategy`` with each {path: value} substituted, validated exactly like a file.

    Raises StrategyError naming the path for an unknown path, and listing the validation
    problems (prefixed by the values that caused them) for values a strategy cannot have.
    """
    base = strategy if isinstance(strategy, Strategy) else validate_strategy_mapping(strategy)
    doc = strategy_document(base)
    for path, value in values.items():
        try:
            doc = set_path(doc, path, value)
        except StrategyError as exc:
            raise StrategyError([f"path {path!r}: {p}" for p in exc.problems]) from None
    try:
        return validate_strategy_mapping(doc)
    except StrategyError as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise StrategyError([f"with {given}: {p}" for p in exc.problems]) from None


def short_name(path: str) -> str:
    """``indicators.<id>.params.<p>`` -> ``<id>.<p>``; other paths stay as they are."""
    parts = path.split(".")
    if len(parts) == 4 and parts[0] == "indicators" and parts[2] == "params":
        return f"{parts[1]}.{parts[3]}"
    return path


def parse_override(text: str) -> tuple[str, Any]:
    """``"indicators.rsi.params.period=21"`` -> ("indicators.rsi.params.period", 21); the
    value is read as YAML (numbers, true/false, [lists], quoted text); StrategyError if
    there is no ``=`` or no path."""
    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise StrategyError(
            [f"override {text!r} needs the form PATH=VALUE, e.g. indicators.rsi.params.period=21"]
        )
    try:
        parsed = load_yaml(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value.strip()
    return path, parsed
