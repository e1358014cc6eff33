"""Backtests: next-bar-open fills with costs, typed results and statistics."""

from ktrdr.engine.backtest.result import BacktestResult, Statistics, Trade
from ktrdr.engine.backtest.runner import (
    DEFAULT_CAPITAL,
    build_result,
    prepare_strategy,
    run_backtest,
    simulate,
)
from ktrdr.engine.backtest.simulate import simulate_fills
from ktrdr.engine.backtest.statistics import bars_per_year, compute_statistics
from ktrdr.engine.data.window import PreparedData, prepare_data
from ktrdr.engine.errors import BacktestCancelled

__all__ = [
    "DEFAULT_CAPITAL",
    "BacktestCancelled",
    "BacktestResult",
    "PreparedData",
    "Statistics",
    "Trade",
    "bars_per_year",
    "build_result",
    "compute_statistics",
    "prepare_data",
    "prepare_strategy",
    "run_backtest",
    "simulate",
    "simulate_fills",
]
