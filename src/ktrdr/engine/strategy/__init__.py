"""Strategy files: schema, rule parsing and validation with actionable messages."""

from ktrdr.engine.errors import StrategyError
from ktrdr.engine.strategy.loader import (
    builtin_strategy_names,
    builtin_strategy_text,
    load_strategy,
    validate_strategy_text,
)
from ktrdr.engine.strategy.rules import Action, ParsedRule, parse_rule
from ktrdr.engine.strategy.schema import (
    DEFAULT_COMMISSION,
    DEFAULT_POSITION_FRACTION,
    DEFAULT_SLIPPAGE,
    Strategy,
)

__all__ = [
    "DEFAULT_COMMISSION",
    "DEFAULT_POSITION_FRACTION",
    "DEFAULT_SLIPPAGE",
    "Action",
    "ParsedRule",
    "Strategy",
    "StrategyError",
    "builtin_strategy_names",
    "builtin_strategy_text",
    "load_strategy",
    "parse_rule",
    "validate_strategy_text",
]
