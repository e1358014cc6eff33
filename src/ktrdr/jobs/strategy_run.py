"""What a backtest and a training run share: a strategy, the bars to run it on, a window.

The backend may import the strategy *schema* (not the engine's computation) so that a bad
strategy file is a 4xx at submission rather than a failed operation later.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from ktrdr.bounds import STRATEGY_TEXT_MAX, RequestModel, UtcDateTime
from ktrdr.engine.errors import StrategyError
from ktrdr.engine.strategy import Strategy, builtin_strategy_names, load_strategy
from ktrdr.engine.strategy.loader import validate_strategy_text
from ktrdr.engine.strategy.paths import apply_overrides
from ktrdr.engine.timeframes import check_timeframe

# A universe of more symbols than this is a job for several operations (one record holds
# every symbol's statistics).
MAX_SYMBOLS = 100
SymbolText = Annotated[str, StringConstraints(min_length=1, max_length=32, strip_whitespace=True)]


def resolve_strategy(strategy: str) -> Strategy:
    """A packaged example by name, or the YAML text of a strategy file."""
    if "\n" not in strategy and strategy.strip() in builtin_strategy_names():
        return load_strategy(strategy.strip())
    if "\n" not in strategy and ":" not in strategy:
        names = ", ".join(builtin_strategy_names())
        raise ValueError(
            f"unknown strategy {strategy!r}: give the YAML text of a strategy file "
            f"(the CLI reads the file for you) or one of the examples: {names}"
        )
    return validate_strategy_text(strategy)


class StrategyRunParams(RequestModel):
    """Strategy, symbol, timeframe and window; symbol and timeframe default to the file's."""

    strategy: str = Field(
        min_length=1, max_length=STRATEGY_TEXT_MAX, description="example name or strategy YAML text"
    )
    symbol: str | None = Field(
        None, max_length=32, description="default: the strategy's data.symbol"
    )
    symbols: list[SymbolText] | None = Field(
        None,
        min_length=1,
        max_length=MAX_SYMBOLS,
        description="several symbols instead of one: a backtest runs the strategy on each "
        "(a universe, or a portfolio with `portfolio`), a training run stacks their rows",
    )
    timeframe: str | None = Field(
        None, max_length=16, description="default: the strategy's data.timeframe"
    )
    start: UtcDateTime | None = Field(None, description="first bar (inclusive), UTC")
    end: UtcDateTime | None = Field(None, description="last bar (inclusive), UTC")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="{dotted path: value} set in the strategy for this run, validated like "
        "the file, e.g. {'indicators.rsi.params.period': 21, 'costs.commission': 0.0002}",
    )

    @model_validator(mode="after")
    def _check_run(self) -> StrategyRunParams:
        strategy = self.parsed_strategy()
        if self.symbols is not None:
            self._check_symbols()
        else:
            self.symbol = (self.symbol or strategy.data.symbol).strip().upper()
        self.timeframe = self.timeframe or strategy.data.timeframe
        check_timeframe(self.timeframe)  # its own message, with a did-you-mean
        with_timeframe = {**strategy.data.model_dump(), "timeframe": self.timeframe}
        try:
            type(strategy.data).model_validate(with_timeframe)
        except ValueError as exc:
            raise ValueError(f"timeframe: {exc}") from None
        if self.start and self.end and self.start > self.end:
            raise ValueError(
                f"empty date range: start {self.start.isoformat()} is after end "
                f"{self.end.isoformat()}; swap them or widen the range"
            )
        return self

    def _check_symbols(self) -> None:
        if self.symbol is not None:
            raise ValueError(
                f"give symbol (one) or symbols (several), not both: add {self.symbol!r} to "
                "symbols or leave symbol out"
            )
        cleaned = [s.upper() for s in self.symbols or []]
        twice = sorted({s for s in cleaned if cleaned.count(s) > 1})
        if twice:
            raise ValueError(f"symbols lists {', '.join(twice)} more than once; list each once")
        self.symbols = cleaned

    def parsed_strategy(self) -> Strategy:
        """The strategy as given (symbol and timeframe as in the file)."""
        try:
            return self._strategy_with_overrides()
        except StrategyError as exc:
            raise ValueError("; ".join(exc.problems)) from None

    def _strategy_with_overrides(self) -> Strategy:
        strategy = resolve_strategy(self.strategy)
        # The sweeps' path rule (one meaning of a path for --set and for search spaces).
        return apply_overrides(strategy, self.overrides) if self.overrides else strategy

    def data_key(self) -> tuple[str, str]:
        """The one (symbol, timeframe) of a single-symbol run."""
        if self.symbols is not None:
            raise ValueError("a run over several symbols has no single data key")
        assert self.symbol and self.timeframe  # filled by the validator
        return self.symbol, self.timeframe

    def data_keys(self) -> list[tuple[str, str]]:
        """Every (symbol, timeframe) the run reads, in the order given."""
        if self.symbols is None:
            return [self.data_key()]
        assert self.timeframe
        return [(s, self.timeframe) for s in self.symbols]

    def run_strategy(self, symbol: str | None = None) -> Strategy:
        """The strategy with this run's symbol (``symbol`` for one of several) and
        timeframe in its data section."""
        keys = self.data_keys()
        timeframe = keys[0][1]
        symbol = symbol or keys[0][0]
        strategy = self._strategy_with_overrides()
        data = strategy.data.model_copy(update={"symbol": symbol, "timeframe": timeframe})
        return strategy.model_copy(update={"data": data})
