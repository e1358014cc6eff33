"""The ``portfolio`` section of a backtest request: weights and the rebalancing rule.

Checked before anything is queued; the rules themselves (what each one schedules) are
the engine's (``ktrdr.engine.rebalance``), imported here so the names have one copy.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from ktrdr.bounds import RequestModel
from ktrdr.engine.rebalance import (
    ON_SIGNAL,
    REBALANCE_RULES,
    WEIGHT_SUM_TOLERANCE,
    check_rebalance,
)
from ktrdr.engine.timeframes import did_you_mean


class PortfolioSpec(RequestModel):
    """One cash account for all ``symbols``: each holds ``weight × side`` of equity."""

    weights: dict[str, float] | None = Field(
        None,
        max_length=100,
        description="symbol -> fraction of equity, each > 0, adding up to 1; default: equal",
    )
    rebalance: str = Field(
        ON_SIGNAL,
        max_length=32,
        description=f"one of {', '.join(REBALANCE_RULES)}: besides every change of a "
        "symbol's side, rebalance every N bars or at the first bar of each day/week/month",
    )
    every_bars: int | None = Field(
        None, ge=1, le=10_000_000, description="rebalance: every_n_bars only: N"
    )

    @model_validator(mode="after")
    def _check(self) -> PortfolioSpec:
        check_rebalance(self.rebalance, self.every_bars)
        if self.weights is not None:
            self.weights = {s.strip().upper(): w for s, w in self.weights.items()}
            negative = [f"{s} = {w:g}" for s, w in self.weights.items() if not w > 0]
            if negative:
                raise ValueError(
                    f"weights must be > 0 ({', '.join(negative)}); leave a symbol out of "
                    "symbols instead of giving it no weight (no short weights: the strategy "
                    "decides each symbol's side)"
                )
            total = math.fsum(self.weights.values())
            if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
                scaled = ", ".join(f"{s}: {w / total:.4g}" for s, w in self.weights.items())
                raise ValueError(
                    f"weights add up to {total:g}, not 1; scale them (e.g. {{{scaled}}}) or "
                    "leave weights out for equal weights"
                )
        return self

    def check_symbols(self, symbols: list[str]) -> None:
        """The weights name exactly the run's symbols (ValueError with a did-you-mean)."""
        if self.weights is None:
            return
        problems = [
            f"weight for {s!r}, which is not in symbols{did_you_mean(s, symbols)}"
            for s in self.weights
            if s not in symbols
        ]
        problems += [f"no weight for {s!r}" for s in symbols if s not in self.weights]
        if problems:
            raise ValueError(
                "; ".join(problems) + f"; give one weight per symbol ({', '.join(symbols)})"
            )

    def rebalance_every(self) -> int:
        """The engine's bar count (0: no bar-count schedule)."""
        return self.every_bars or 0
