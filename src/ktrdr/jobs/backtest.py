"""Parameters of a backtest, validated before anything is queued."""

from __future__ import annotations

from pydantic import Field

from ktrdr.jobs.strategy_run import StrategyRunParams


class BacktestParams(StrategyRunParams):
    # A quadrillion is beyond any account; bigger values overflow the equity arithmetic.
    capital: float = Field(100_000.0, gt=0, le=1e15, description="initial equity")
    commission: float | None = Field(
        None, ge=0, lt=0.1, description="fraction of notional per side; default: strategy's"
    )
    slippage: float | None = Field(
        None, ge=0, lt=0.1, description="fraction of price per side; default: strategy's"
    )
