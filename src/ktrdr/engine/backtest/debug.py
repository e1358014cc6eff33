"""Why a strategy traded: every per-bar quantity behind its decisions, as one frame
(indicator outputs, fuzzy memberships, each rule's firing strength, the action, the target
side, the position held and equity), for ``--debug-frames`` and ``ktrdr strategy explain``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.engine.backtest.simulate import SimulationOutput
from ktrdr.engine.data.window import PreparedData
from ktrdr.engine.features import compute_features, fuzzy_memberships
from ktrdr.engine.models import ModelSource
from ktrdr.engine.signals import (
    BUY,
    CLOSE,
    SELL,
    decide_actions,
    fire_rule,
    rule_strengths,
    target_positions,
)
from ktrdr.engine.strategy.schema import Strategy

# A frame is stored in the operation's result: keep it to what a person can read.
MAX_DEBUG_CELLS = 2_000_000
ACTION_NAMES = {0: "", BUY: "BUY", SELL: "SELL", CLOSE: "CLOSE"}


def debug_frame(
    strategy: Strategy,
    data: PreparedData,
    sim: SimulationOutput,
    models: ModelSource | None = None,
) -> pd.DataFrame:
    """One row per window bar. Columns: ``close``; ``<id>.<output>`` per indicator output;
    ``membership:<variable>.<set>``; ``rule:<text>`` (fuzzy rules, weight included) and
    ``strength:<ACTION>``; ``action`` (decided at the close), ``target`` (+1/0/-1) and
    ``position`` (signed units held after the close), ``equity``."""
    features = compute_features(strategy, data.bars)
    window = slice(data.window_start, data.window_end)
    columns: dict[str, Any] = {"close": features["close"][window]}
    for ind in strategy.indicators:
        for key in features:
            if key.startswith(f"{ind.id}."):
                columns[key] = features[key][window]
    memberships = fuzzy_memberships(strategy, features)
    for (variable, set_name), degree in memberships.items():
        columns[f"membership:{variable}.{set_name}"] = degree[window]
    if strategy.decisions.fuzzy_rules is not None:
        for rule in strategy.parsed_rules:
            columns[f"rule:{rule.text}"] = fire_rule(rule, memberships)[window]
        for action, strength in rule_strengths(strategy, features).items():
            columns[f"strength:{action.value}"] = strength[window]
    actions = decide_actions(strategy, features, models)[window]
    columns["action"] = [ACTION_NAMES[int(a)] for a in actions]
    columns["target"] = target_positions(actions, strategy.position_mode)
    columns["position"] = sim.units
    columns["equity"] = sim.equity
    frame = pd.DataFrame(columns, index=data.window.index)
    if frame.size > MAX_DEBUG_CELLS:
        raise ValueError(
            f"the debug frame would have {frame.size:,} cells (limit {MAX_DEBUG_CELLS:,}); "
            "narrow the window with --start/--end"
        )
    return frame


def frame_to_payload(frame: pd.DataFrame) -> dict[str, Any]:
    """JSON-safe: {"index": [ISO times], "columns": [...], "data": [[...], ...]}; NaN and
    infinities become None (the API must only carry finite numbers)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float | np.floating):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, np.integer):
            return int(value)
        return value

    return {
        "index": [ts.isoformat() for ts in frame.index],
        "columns": [str(c) for c in frame.columns],
        "data": [[clean(v) for v in row] for row in frame.itertuples(index=False)],
    }
