"""Parameters of a backtest, validated before anything is queued."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from ktrdr.jobs.portfolio import PortfolioSpec
from ktrdr.jobs.strategy_run import StrategyRunParams


class BacktestParams(StrategyRunParams):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "strategy": "sma_crossover", "symbol": "EURUSD", "timeframe": "1h",
                    "start": "2020-02-01T00:00:00Z", "end": "2020-04-01T00:00:00Z",
                    "capital": 50_000.0, "commission": 0.0005,
                }
            ]
        }
    )  # fmt: skip

    # A quadrillion is beyond any account; bigger values overflow the equity arithmetic.
    capital: float = Field(100_000.0, gt=0, le=1e15, description="initial equity")
    commission: float | None = Field(
        None, ge=0, lt=0.1, description="fraction of notional per side; default: strategy's"
    )
    slippage: float | None = Field(
        None, ge=0, lt=0.1, description="fraction of price per side; default: strategy's"
    )
    debug_frames: bool = Field(
        False,
        description="also return every per-bar quantity behind the decisions (indicators, "
        "memberships, rule strengths, action, target, position) as result.debug_frame",
    )
    model: dict[str, Any] | None = Field(
        None,
        description="set by the backend at submission: the trained model a model-driven "
        "strategy uses (name, version, training symbol/timeframe, date ranges)",
    )
    portfolio: PortfolioSpec | None = Field(
        None,
        description="trade `symbols` from one cash account (weights, rebalancing rule); "
        "without it, `symbols` is a universe: the strategy on each symbol on its own",
    )

    @model_validator(mode="after")
    def _check_book(self) -> BacktestParams:
        if self.portfolio is not None:
            if self.symbols is None:
                raise ValueError(
                    "a portfolio needs symbols: list the symbols it trades "
                    "(e.g. symbols: [EURUSD, GBPUSD])"
                )
            self.portfolio.check_symbols(self.symbols)
        if self.symbols is not None and self.debug_frames:
            raise ValueError("debug_frames are per symbol: run one symbol with symbol: X")
        return self

    @property
    def kind(self) -> str:
        """single, universe or portfolio."""
        if self.symbols is None:
            return "single"
        return "universe" if self.portfolio is None else "portfolio"
