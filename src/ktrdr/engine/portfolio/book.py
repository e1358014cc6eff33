"""A portfolio: all symbols trade from one cash account.

Each symbol holds ``weight × side`` of equity (side from the strategy's target on that
symbol), rebalanced when a side changes and as the rebalance rule schedules (see
``kernel`` and ``ktrdr.engine.rebalance``). Symbols are aligned on the bars they all have.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.backtest.result import Statistics, json_float
from ktrdr.engine.backtest.runner import DEFAULT_CAPITAL, prepare_strategy
from ktrdr.engine.data.window import PreparedData, prepare_data
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.models import ModelSource
from ktrdr.engine.portfolio.stats import book_statistics
from ktrdr.engine.portfolio.universe import check_symbols, symbol_strategy
from ktrdr.engine.rebalance import (
    EVERY_N_BARS,
    ON_SIGNAL,
    WEIGHT_SUM_TOLERANCE,
    calendar_due,
    check_rebalance,
)
from ktrdr.engine.strategy.schema import Strategy


@dataclass(frozen=True)
class PortfolioResult:
    equity_curve: pd.Series
    cash: pd.Series
    units: pd.DataFrame  # bars × symbols
    weights: dict[str, float]
    statistics: Statistics
    rebalances: int
    commission: pd.Series = field(repr=False)
    _closes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _opens: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    slippage: float = 0.0
    commission_rate: float = 0.0

    @property
    def position_values(self) -> pd.DataFrame:
        """Each position at each bar's close (what equity adds to cash)."""
        return self.units * self._closes

    def per_symbol(self) -> list[dict[str, Any]]:
        """Each symbol's share of the book: its fills' cash flows plus its final position
        at the last close is its P&L (the P&Ls add up to final equity - capital)."""
        units = self.units.to_numpy()
        delta = np.diff(units, axis=0, prepend=0.0)
        opens = self._opens.to_numpy()
        fill = opens * (1.0 + self.slippage * np.sign(delta))
        fees = self.commission_rate * np.abs(delta) * fill
        flows = (-delta * fill - fees).sum(axis=0)
        final_value = units[-1] * self._closes.to_numpy()[-1]
        capital = self.statistics.initial_capital
        rows = []
        for j, symbol in enumerate(self.units.columns):
            pnl = float(flows[j] + final_value[j])
            rows.append({
                "symbol": symbol,
                "weight": self.weights[symbol],
                "pnl": json_float(pnl),
                "contribution_pct": json_float(pnl / capital * 100.0),
                "commission": json_float(float(fees[:, j].sum())),
                "fills": int(np.count_nonzero(delta[:, j])),
                "exposure_pct": float(np.mean(units[:, j] != 0) * 100.0),
                "final_units": json_float(float(units[-1, j])),
                "final_value": json_float(float(final_value[j])),
            })  # fmt: skip
        return rows


def check_weights(symbols: list[str], weights: dict[str, float] | None) -> dict[str, float]:
    """Equal weights unless given; given ones cover exactly the symbols, are positive and
    add up to at most 1 (no leverage; the rest stays in cash)."""
    if weights is None:
        return {s: 1.0 / len(symbols) for s in symbols}
    problems = [f"weight for unknown symbol {s!r}" for s in weights if s not in symbols]
    problems += [f"no weight for {s!r}" for s in symbols if s not in weights]
    problems += [f"weight of {s} must be > 0 and finite" for s, v in weights.items()
                 if not (math.isfinite(v) and v > 0)]  # fmt: skip
    total = sum(weights.values())
    if not problems and total > 1.0 + WEIGHT_SUM_TOLERANCE:
        problems.append(f"weights add up to {total:g}; keep them at most 1 (no leverage)")
    if problems:
        raise DataValidationError(problems)
    return dict(weights)


def align_symbols(
    bars_by_symbol: dict[str, pd.DataFrame],
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> dict[str, PreparedData]:
    """Each symbol's bars on the times all symbols have, with the same window."""
    check_symbols(bars_by_symbol)
    index: pd.DatetimeIndex | None = None
    for bars in bars_by_symbol.values():
        idx = pd.DatetimeIndex(bars.index)
        index = idx if index is None else index.intersection(idx)
    assert index is not None
    if len(index) == 0:
        raise DataValidationError(["the symbols share no bar times; choose symbols and a "
                                   "timeframe that trade at the same times"])  # fmt: skip
    # Symbols already on the shared times (the usual case) are used as they are.
    return {
        s: prepare_data(b if b.index.equals(index) else b.loc[index], start, end)
        for s, b in bars_by_symbol.items()
    }


def simulate_portfolio(
    strategy: Strategy,
    prepared: dict[str, PreparedData],
    targets: dict[str, npt.NDArray[np.int8]],
    *,
    weights: dict[str, float] | None = None,
    rebalance: str = ON_SIGNAL,
    rebalance_every: int = 0,
    capital: float = DEFAULT_CAPITAL,
    commission: float | None = None,
    slippage: float | None = None,
) -> PortfolioResult:
    """The fill pass over aligned symbols with their decided targets."""
    from ktrdr.engine.portfolio.kernel import portfolio_kernel

    symbols = list(prepared)
    w = check_weights(symbols, weights)
    try:
        check_rebalance(rebalance, rebalance_every if rebalance == EVERY_N_BARS else None)
    except ValueError as exc:
        raise DataValidationError([str(exc)]) from None
    if rebalance_every < 0 or (rebalance == EVERY_N_BARS and rebalance_every < 1):
        raise DataValidationError([f"rebalance every {rebalance_every} bars: give N >= 1"])
    window_index = prepared[symbols[0]].window_index
    # bars × symbols as transposed views of row copies (NumPy's column_stack writes one
    # strided element at a time, a third of a 20-symbol run).
    opens = np.vstack([prepared[s].window_column("open") for s in symbols]).T
    closes = np.vstack([prepared[s].window_column("close") for s in symbols]).T
    commission = strategy.costs.commission if commission is None else commission
    slippage = strategy.costs.slippage if slippage is None else slippage
    equity, cash, held, fees, rebalances = portfolio_kernel(
        opens, closes, np.vstack([targets[s] for s in symbols]).astype(np.int8).T,
        np.array([w[s] for s in symbols]), int(rebalance_every),
        calendar_due(window_index, rebalance), commission, slippage, float(capital),
    )  # fmt: skip
    equity_s = pd.Series(equity, index=window_index, name="equity")
    stats = book_statistics(strategy, equity_s, (held != 0).any(axis=1), capital, fees.sum())
    return PortfolioResult(
        equity_curve=equity_s,
        cash=pd.Series(cash, index=window_index, name="cash"),
        units=pd.DataFrame(held, index=window_index, columns=symbols),
        weights=w,
        statistics=stats,
        rebalances=int(rebalances),
        commission=pd.Series(fees, index=window_index, name="commission"),
        _closes=pd.DataFrame(closes, index=window_index, columns=symbols),
        _opens=pd.DataFrame(opens, index=window_index, columns=symbols),
        slippage=slippage,
        commission_rate=commission,
    )


def portfolio_targets(
    strategy: Strategy,
    prepared: dict[str, PreparedData],
    models: ModelSource | None = None,
    mapper: Callable[..., Any] = map,
) -> dict[str, npt.NDArray[np.int8]]:
    """Each symbol's target sides (``mapper``: a pool's map to decide them in parallel)."""

    def one(symbol: str) -> npt.NDArray[np.int8]:
        return prepare_strategy(symbol_strategy(strategy, symbol), prepared[symbol], models)

    return dict(zip(prepared, mapper(one, list(prepared)), strict=True))


def run_portfolio(
    strategy: Strategy,
    bars_by_symbol: dict[str, pd.DataFrame],
    *,
    weights: dict[str, float] | None = None,
    rebalance_every: int = 0,
    rebalance: str = ON_SIGNAL,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    capital: float = DEFAULT_CAPITAL,
    commission: float | None = None,
    slippage: float | None = None,
    models: ModelSource | None = None,
) -> PortfolioResult:
    """Several symbols from one cash account (equal weights unless given; they must be
    positive and add up to at most 1: no leverage). ``rebalance_every`` (bars) schedules
    rebalances besides side changes, as does a calendar ``rebalance`` rule."""
    prepared = align_symbols(bars_by_symbol, start, end)
    check_weights(list(prepared), weights)
    targets = portfolio_targets(strategy, prepared, models)
    return simulate_portfolio(
        strategy, prepared, targets, weights=weights, rebalance=rebalance,
        rebalance_every=rebalance_every, capital=capital, commission=commission,
        slippage=slippage,
    )  # fmt: skip
