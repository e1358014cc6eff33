"""A universe: the strategy on each symbol on its own (capital split equally), the
symbols in parallel threads (the fill kernels and indicator kernels release the GIL),
and the book as the sum of the equity curves."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from ktrdr.engine.backtest.result import BacktestResult, Statistics
from ktrdr.engine.backtest.runner import DEFAULT_CAPITAL, run_backtest
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.models import ModelSource
from ktrdr.engine.portfolio.stats import book_statistics
from ktrdr.engine.strategy.schema import Strategy


@dataclass(frozen=True)
class UniverseResult:
    per_symbol: dict[str, BacktestResult]
    equity_curve: pd.Series
    statistics: Statistics


def check_symbols(bars_by_symbol: dict[str, pd.DataFrame]) -> None:
    if not bars_by_symbol:
        raise DataValidationError(["give at least one symbol's bars"])


def symbol_strategy(strategy: Strategy, symbol: str) -> Strategy:
    """``strategy`` with ``symbol`` in its data section (results name their symbol)."""
    data = strategy.data.model_copy(update={"symbol": symbol})
    return strategy.model_copy(update={"data": data})


def run_universe(
    strategy: Strategy,
    bars_by_symbol: dict[str, pd.DataFrame],
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    capital: float = DEFAULT_CAPITAL,
    commission: float | None = None,
    slippage: float | None = None,
    max_workers: int | None = None,
    models: ModelSource | None = None,
) -> UniverseResult:
    """The strategy on every symbol, ``capital / n`` each; aggregate = the curves' sum."""
    check_symbols(bars_by_symbol)
    share = capital / len(bars_by_symbol)

    def one(item: tuple[str, pd.DataFrame]) -> tuple[str, BacktestResult]:
        symbol, bars = item
        result = run_backtest(
            symbol_strategy(strategy, symbol), bars, start=start, end=end, capital=share,
            commission=commission, slippage=slippage, models=models,
        )  # fmt: skip
        return symbol, result

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        per_symbol = dict(pool.map(one, bars_by_symbol.items()))
    return combine_universe(strategy, per_symbol, capital)


def combine_universe(
    strategy: Strategy, per_symbol: dict[str, BacktestResult], capital: float
) -> UniverseResult:
    """The book of per-symbol runs that each had ``capital / n``: equity is the sum of the
    curves (a symbol without a bar at some time keeps its last equity; before its first
    bar, its share), exposure counts bars where any symbol holds a position."""
    share = capital / len(per_symbol)
    curves = pd.concat({s: r.equity_curve for s, r in per_symbol.items()}, axis=1)
    equity = curves.ffill().fillna(share).sum(axis=1).rename("equity")
    positions = pd.concat({s: r.positions for s, r in per_symbol.items()}, axis=1)
    invested = (positions.fillna(0.0) != 0).to_numpy().any(axis=1)
    commission = sum(r.statistics.total_commission for r in per_symbol.values())
    trades = sum(r.statistics.num_trades for r in per_symbol.values())
    stats = book_statistics(strategy, equity, invested, capital, commission, trades)
    return UniverseResult(per_symbol=per_symbol, equity_curve=equity, statistics=stats)
