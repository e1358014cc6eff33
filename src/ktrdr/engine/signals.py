"""From bars to target positions: indicator features, then signal, fuzzy-rule or model
decisions.

Everything here is vectorised and causal: the decision at bar t uses bars up to t only.
Decisions are made at a bar's close; the backtest fills them at the next bar's open.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from ktrdr.engine.errors import ModelNotFoundError, StrategyError
from ktrdr.engine.features import Features, FloatArray, fuzzy_memberships, membership_matrix
from ktrdr.engine.model_choice import fit_problems
from ktrdr.engine.models import ModelSource
from ktrdr.engine.strategy.rules import Action, ParsedRule
from ktrdr.engine.strategy.schema import MODEL_CLASSES, SignalRuleConfig, Strategy

# Per-bar action codes; NO_ACTION keeps the previous target.
NO_ACTION, BUY, SELL, CLOSE = 0, 1, 2, 3
_ACTION_CODE = {Action.BUY: BUY, Action.SELL: SELL, Action.CLOSE: CLOSE}


# Relative gap below which two lines count as equal (rounding noise, not a cross).
_CROSS_EPS = 1e-12


def _crossover(fast: FloatArray, slow: FloatArray) -> npt.NDArray[np.int8]:
    """BUY where fast crosses above slow, SELL below. Two averages of one flat price
    differ only by rounding: within ``_CROSS_EPS`` of the larger magnitude is no side.
    Only between two bars where both lines exist (NaN compares False)."""
    from ktrdr.engine.signal_kernels import crossover_codes

    return crossover_codes(
        np.ascontiguousarray(fast, dtype=np.float64),
        np.ascontiguousarray(slow, dtype=np.float64),
        _CROSS_EPS, BUY, SELL,
    )  # fmt: skip


def _signal_actions(
    rules: list[SignalRuleConfig], features: Features, n: int
) -> npt.NDArray[np.int8]:
    if len(rules) == 1 and rules[0].crossover is not None:
        # One crossover gives one action per bar already: nothing to resolve.
        cross = rules[0].crossover
        return _crossover(features[cross.fast], features[cross.slow])
    wants = {BUY: np.zeros(n, bool), SELL: np.zeros(n, bool), CLOSE: np.zeros(n, bool)}
    for rule in rules:
        if rule.crossover is not None:
            codes = _crossover(features[rule.crossover.fast], features[rule.crossover.slow])
            wants[BUY] |= codes == BUY
            wants[SELL] |= codes == SELL
        elif rule.threshold is not None:
            t = rule.threshold
            x = features[t.input]
            with np.errstate(invalid="ignore"):
                hit = x > t.above if t.above is not None else x < float(t.below or 0.0)
            wants[_ACTION_CODE[t.action]] |= hit
    return _resolve(wants, n)


def _resolve(wants: dict[int, npt.NDArray[np.bool_]], n: int) -> npt.NDArray[np.int8]:
    """One action per bar; contradicting actions on the same bar cancel out."""
    count = sum(w.astype(np.int8) for w in wants.values())
    actions = np.zeros(n, dtype=np.int8)
    for code, w in wants.items():
        actions[w & (count == 1)] = code
    return actions


def rule_strengths(strategy: Strategy, features: Features) -> dict[Action, FloatArray]:
    """Firing strength per action: AND = min, OR = max, NOT = 1 - m, times the rule's
    weight; rules for the same action combine by max. Missing inputs give 0.

    One compiled pass per rule (``fuzzy_kernels.rule_strengths``) over the memberships;
    ``fire_rule`` is the same rule for one rule, as NumPy steps (debug columns)."""
    from ktrdr.engine.fuzzy_kernels import rule_strengths as strengths_kernel

    n = len(features["close"])
    rules = strategy.parsed_rules
    if not rules:
        return {a: np.zeros(n) for a in Action}
    memberships = fuzzy_memberships(strategy, features)
    rows = {key: i for i, key in enumerate(memberships)}
    conditions = [c for rule in rules for c in rule.conditions]
    actions = list(Action)
    out = strengths_kernel(
        tuple(np.ascontiguousarray(m, dtype=np.float64) for m in memberships.values()),
        np.array([rows[(c.variable, c.fuzzy_set)] for c in conditions], dtype=np.int64),
        np.array([c.negated for c in conditions], dtype=np.bool_),
        np.cumsum([0] + [len(rule.conditions) for rule in rules], dtype=np.int64),
        np.array([rule.connective == "AND" for rule in rules], dtype=np.bool_),
        np.array([rule.weight for rule in rules], dtype=np.float64),
        np.array([actions.index(rule.action) for rule in rules], dtype=np.int64),
        len(actions),
    )
    return {a: out[i] for i, a in enumerate(actions)}


def fire_rule(rule: ParsedRule, memberships: dict[tuple[str, str], FloatArray]) -> FloatArray:
    degrees = []
    for cond in rule.conditions:
        m = memberships[(cond.variable, cond.fuzzy_set)]
        degrees.append(1.0 - m if cond.negated else m)
    # Pairwise, as the reduction over stacked rows would, without stacking them.
    combined = functools.reduce(np.minimum if rule.connective == "AND" else np.maximum, degrees)
    # Memberships are in [0, 1] or NaN: only NaN needs replacing (nan_to_num's infinity
    # passes find nothing). A weight of 1 leaves the strengths as they are.
    strength = np.where(np.isnan(combined), 0.0, combined)
    return strength if rule.weight == 1.0 else strength * rule.weight


def _fuzzy_actions(strategy: Strategy, features: Features) -> npt.NDArray[np.int8]:
    if strategy.decisions.fuzzy_rules is None:
        raise ValueError("strategy has no fuzzy_rules")
    threshold = strategy.decisions.fuzzy_rules.threshold
    from ktrdr.engine.signal_kernels import fuzzy_decisions

    strengths = rule_strengths(strategy, features)
    rows = tuple(np.ascontiguousarray(strengths[a], dtype=np.float64) for a in Action)
    codes = np.array([_ACTION_CODE[a] for a in Action], dtype=np.int8)
    return fuzzy_decisions(rows, float(threshold), codes, NO_ACTION)


# Model class index -> action code; HOLD is no action (keeps the target).
_CLASS_ACTION = np.array(
    [_ACTION_CODE[Action(c)] if c != "HOLD" else NO_ACTION for c in MODEL_CLASSES], dtype=np.int8
)


def _model_actions(
    strategy: Strategy, features: Features, models: ModelSource | None
) -> npt.NDArray[np.int8]:
    cfg = strategy.decisions.model
    if cfg is None:
        raise ValueError("strategy has no model decisions")
    name = strategy.model_name
    if models is None:
        raise ModelNotFoundError(
            f"strategy {strategy.name!r} decides with the trained model {name!r}: pass the "
            "model store (models=ModelStore(<models dir>)); train the model with: "
            f"ktrdr train run {strategy.name}"
        )
    chosen = models.describe(name, cfg.version)
    problems = fit_problems(chosen, strategy)
    if problems:
        raise StrategyError(problems)
    model = models.load(name, chosen.version)
    _, matrix = membership_matrix(strategy, features)
    # Each row is one bar's own memberships, so a decision at bar t sees bar t only.
    valid = ~np.isnan(matrix).any(axis=1)
    actions = np.full(len(matrix), NO_ACTION, dtype=np.int8)
    if valid.any():
        proba = model.predict_proba(matrix[valid])
        best = proba.argmax(axis=1)
        sure = proba.max(axis=1) >= cfg.min_confidence
        actions[valid] = np.where(sure, _CLASS_ACTION[best], NO_ACTION)
    return actions


def decide_actions(
    strategy: Strategy, features: Features, models: ModelSource | None = None
) -> npt.NDArray[np.int8]:
    """Per-bar action code (NO_ACTION, BUY, SELL, CLOSE) decided at each bar's close.

    ``models`` is needed only by strategies that decide with a trained model.
    """
    n = len(features["close"])
    if strategy.decisions.signals is not None:
        return _signal_actions(strategy.decisions.signals, features, n)
    if strategy.decisions.model is not None:
        return _model_actions(strategy, features, models)
    return _fuzzy_actions(strategy, features)


def target_positions(actions: npt.NDArray[np.int8], position_mode: str) -> npt.NDArray[np.int8]:
    """Desired side after each bar's close (+1 long, 0 flat, -1 short), starting flat.

    BUY goes long; SELL goes short in long_short mode and flat in long_only; CLOSE goes flat;
    no action keeps the previous target.
    """
    from ktrdr.engine.signal_kernels import hold_targets

    sell_to = -1 if position_mode == "long_short" else 0
    return hold_targets(np.ascontiguousarray(actions, dtype=np.int8), BUY, SELL, CLOSE, sell_to)
