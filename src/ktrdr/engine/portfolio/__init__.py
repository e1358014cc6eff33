"""One strategy over several symbols: a universe of independent runs, or a portfolio that
shares one cash account.

- ``run_universe`` backtests each symbol on its own (capital split equally), in parallel
  threads (the fill kernels release the GIL), and adds the equity curves up.
- ``run_portfolio`` trades all symbols from one account: each symbol holds
  ``weight × side`` of equity (side from the strategy's target on that symbol), rebalanced
  when a side changes or every ``rebalance_every`` bars (see ``kernel``). Symbols are
  aligned on the bars they all have.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ktrdr.engine.backtest.result import BacktestResult, Statistics
from ktrdr.engine.backtest.runner import DEFAULT_CAPITAL, prepare_strategy, run_backtest
from ktrdr.engine.backtest.statistics import compute_statistics
from ktrdr.engine.data.window import prepare_data
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.strategy.schema import Strategy

__all__ = ["PortfolioResult", "UniverseResult", "run_portfolio", "run_universe"]


@dataclass(frozen=True)
class UniverseResult:
    per_symbol: dict[str, BacktestResult]
    equity_curve: pd.Series
    statistics: Statistics


@dataclass(frozen=True)
class PortfolioResult:
    equity_curve: pd.Series
    cash: pd.Series
    units: pd.DataFrame  # bars × symbols
    weights: dict[str, float]
    statistics: Statistics
    rebalances: int
    commission: pd.Series = field(repr=False)

    @property
    def position_values(self) -> pd.DataFrame:
        """Each position at each bar's close (what equity adds to cash)."""
        return self.units * self._closes

    _closes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def _check_symbols(bars_by_symbol: dict[str, pd.DataFrame]) -> None:
    if not bars_by_symbol:
        raise DataValidationError(["give at least one symbol's bars"])


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
) -> UniverseResult:
    """The strategy on every symbol, ``capital / n`` each; aggregate = the curves' sum."""
    _check_symbols(bars_by_symbol)
    share = capital / len(bars_by_symbol)

    def one(item: tuple[str, pd.DataFrame]) -> tuple[str, BacktestResult]:
        symbol, bars = item
        result = run_backtest(
            strategy, bars, start=start, end=end, capital=share, commission=commission,
            slippage=slippage,
        )  # fmt: skip
        return symbol, result

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        per_symbol = dict(pool.map(one, bars_by_symbol.items()))
    curves = pd.concat({s: r.equity_curve for s, r in per_symbol.items()}, axis=1)
    # A symbol without a bar at some time keeps its last equity (its start: its capital).
    equity = curves.ffill().fillna(share).sum(axis=1).rename("equity")
    positions = pd.concat({s: r.positions for s, r in per_symbol.items()}, axis=1)
    invested = (positions.fillna(0.0) != 0).to_numpy().any(axis=1)
    commission = sum(r.statistics.total_commission for r in per_symbol.values())
    stats = _statistics(strategy, equity, invested, capital, commission)
    return UniverseResult(per_symbol=per_symbol, equity_curve=equity, statistics=stats)


def run_portfolio(
    strategy: Strategy,
    bars_by_symbol: dict[str, pd.DataFrame],
    *,
    weights: dict[str, float] | None = None,
    rebalance_every: int = 0,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    capital: float = DEFAULT_CAPITAL,
    commission: float | None = None,
    slippage: float | None = None,
) -> PortfolioResult:
    """Several symbols from one cash account (equal weights unless given; they must be
    positive and add up to at most 1: no leverage)."""
    from ktrdr.engine.portfolio.kernel import portfolio_kernel

    _check_symbols(bars_by_symbol)
    symbols = list(bars_by_symbol)
    w = _weights(symbols, weights)
    index = _common_index(bars_by_symbol)
    targets, opens, closes = [], [], []
    window_index: pd.DatetimeIndex | None = None
    for symbol in symbols:
        data = prepare_data(bars_by_symbol[symbol].loc[index], start, end)
        targets.append(prepare_strategy(strategy, data))
        opens.append(data.window["open"].to_numpy(dtype=float))
        closes.append(data.window["close"].to_numpy(dtype=float))
        window_index = pd.DatetimeIndex(data.window.index)
    assert window_index is not None
    cost = strategy.costs
    equity, cash, held, fees, rebalances = portfolio_kernel(
        np.column_stack(opens),
        np.column_stack(closes),
        np.column_stack(targets).astype(np.int8),
        np.array([w[s] for s in symbols]),
        int(rebalance_every),
        cost.commission if commission is None else commission,
        cost.slippage if slippage is None else slippage,
        float(capital),
    )
    equity_s = pd.Series(equity, index=window_index, name="equity")
    units = pd.DataFrame(held, index=window_index, columns=symbols)
    stats = _statistics(strategy, equity_s, (held != 0).any(axis=1), capital, fees.sum())
    return PortfolioResult(
        equity_curve=equity_s,
        cash=pd.Series(cash, index=window_index, name="cash"),
        units=units,
        weights=w,
        statistics=stats,
        rebalances=int(rebalances),
        commission=pd.Series(fees, index=window_index, name="commission"),
        _closes=pd.DataFrame(np.column_stack(closes), index=window_index, columns=symbols),
    )


def _weights(symbols: list[str], weights: dict[str, float] | None) -> dict[str, float]:
    if weights is None:
        return {s: 1.0 / len(symbols) for s in symbols}
    problems = [f"weight for unknown symbol {s!r}" for s in weights if s not in symbols]
    problems += [f"no weight for {s!r}" for s in symbols if s not in weights]
    problems += [f"weight of {s} must be > 0 and finite" for s, v in weights.items()
                 if not (math.isfinite(v) and v > 0)]  # fmt: skip
    if not problems and sum(weights.values()) > 1.0 + 1e-12:
        problems.append(
            f"weights add up to {sum(weights.values()):g}; keep them at most 1 (no leverage)"
        )
    if problems:
        raise DataValidationError(problems)
    return dict(weights)


def _common_index(bars_by_symbol: dict[str, pd.DataFrame]) -> pd.DatetimeIndex:
    index: pd.DatetimeIndex | None = None
    for bars in bars_by_symbol.values():
        idx = pd.DatetimeIndex(bars.index)
        index = idx if index is None else index.intersection(idx)
    assert index is not None
    if len(index) == 0:
        raise DataValidationError(["the symbols share no bar times; choose symbols and a "
                                   "timeframe that trade at the same times"])  # fmt: skip
    return index


def _statistics(
    strategy: Strategy,
    equity: pd.Series,
    invested: np.ndarray,
    capital: float,
    commission: float = 0.0,
) -> Statistics:
    """Equity statistics of a multi-symbol run (per-trade figures stay per symbol)."""
    from ktrdr.engine.backtest.result import TradeTable

    empty = TradeTable(
        entry_time=pd.DatetimeIndex([], tz="UTC"), exit_time=pd.DatetimeIndex([], tz="UTC"),
        side=np.zeros(0, np.int64), size=np.zeros(0), entry_price=np.zeros(0),
        exit_price=np.zeros(0), gross_pnl=np.zeros(0), slippage_cost=np.zeros(0),
        commission=np.zeros(0), net_pnl=np.zeros(0), pnl_pct=np.zeros(0),
        bars_held=np.zeros(0, np.int64), closed_at_end=np.zeros(0, bool),
        exit_reason=np.zeros(0, np.int8),
    )  # fmt: skip
    stats = compute_statistics(
        equity, invested.astype(float), equity.to_numpy(), empty, capital=capital,
        timeframe=strategy.data.timeframe,
    )  # fmt: skip
    # Buy-and-hold of the book itself is meaningless here; commission is the book's.
    return Statistics(**{**stats.__dict__, "buy_and_hold_return_pct": math.nan,
                         "total_commission": float(commission)})  # fmt: skip
