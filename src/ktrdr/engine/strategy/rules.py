"""Parse fuzzy rule strings like ``IF rsi IS oversold AND trend IS up THEN BUY``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What a rule or signal asks for; CLOSE means go flat."""

    BUY = "BUY"
    SELL = "SELL"
    CLOSE = "CLOSE"


@dataclass(frozen=True)
class Condition:
    variable: str
    fuzzy_set: str
    negated: bool = False


@dataclass(frozen=True)
class ParsedRule:
    conditions: tuple[Condition, ...]
    connective: str  # "AND" (min) or "OR" (max)
    action: Action
    weight: float
    text: str


class RuleSyntaxError(ValueError):
    """A rule string does not follow ``IF <var> IS <set> [AND|OR ...] THEN <action>``."""


_RULE_RE = re.compile(r"^\s*IF\s+(?P<cond>.+?)\s+THEN\s+(?P<action>\w+)\s*$", re.IGNORECASE)
_COND_RE = re.compile(
    r"^(?P<var>[A-Za-z_]\w*)\s+IS\s+(?P<neg>NOT\s+)?(?P<set>[A-Za-z_]\w*)$", re.IGNORECASE
)
_SPLIT_RE = re.compile(r"\s+(AND|OR)\s+", re.IGNORECASE)
_FORM = (
    "write rules as: IF <variable> IS [NOT] <set> [AND|OR <variable> IS <set>] THEN BUY|SELL|CLOSE"
)


def parse_rule(text: str, weight: float = 1.0) -> ParsedRule:
    """Parse one rule; raise RuleSyntaxError saying what is wrong and the expected form."""
    match = _RULE_RE.match(text)
    if not match:
        raise RuleSyntaxError(f"cannot parse rule {text!r}; {_FORM}")
    action_word = match["action"].upper()
    if action_word not in Action.__members__:
        raise RuleSyntaxError(
            f"rule {text!r}: unknown action {match['action']!r}; use BUY, SELL or CLOSE"
        )
    parts = _SPLIT_RE.split(match["cond"])
    conds_text, connectives = parts[0::2], {c.upper() for c in parts[1::2]}
    if len(connectives) > 1:
        raise RuleSyntaxError(
            f"rule {text!r} mixes AND and OR; split it into separate rules "
            "(rules for the same action combine like OR)"
        )
    conditions = []
    for cond in conds_text:
        cm = _COND_RE.match(cond.strip())
        if not cm:
            raise RuleSyntaxError(f"rule {text!r}: cannot parse condition {cond!r}; {_FORM}")
        conditions.append(Condition(cm["var"], cm["set"], negated=cm["neg"] is not None))
    return ParsedRule(
        conditions=tuple(conditions),
        connective=connectives.pop() if connectives else "AND",
        action=Action[action_word],
        weight=weight,
        text=text.strip(),
    )
