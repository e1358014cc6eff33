"""Statistics of a multi-symbol book: the equity statistics of single backtests, without
the per-trade figures (those stay per symbol) or a buy-and-hold line (of what?)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.backtest.result import Statistics, TradeTable
from ktrdr.engine.backtest.statistics import compute_statistics
from ktrdr.engine.strategy.schema import Strategy


def no_trades() -> TradeTable:
    """An empty trade table (a book's statistics have no per-trade figures)."""
    return TradeTable(
        entry_time=pd.DatetimeIndex([], tz="UTC"), exit_time=pd.DatetimeIndex([], tz="UTC"),
        side=np.zeros(0, np.int64), size=np.zeros(0), entry_price=np.zeros(0),
        exit_price=np.zeros(0), gross_pnl=np.zeros(0), slippage_cost=np.zeros(0),
        commission=np.zeros(0), net_pnl=np.zeros(0), pnl_pct=np.zeros(0),
        bars_held=np.zeros(0, np.int64), closed_at_end=np.zeros(0, bool),
        exit_reason=np.zeros(0, np.int8),
    )  # fmt: skip


def book_statistics(
    strategy: Strategy,
    equity: pd.Series,
    invested: npt.NDArray[np.bool_],
    capital: float,
    commission: float = 0.0,
    num_trades: int | None = None,
) -> Statistics:
    """Equity statistics of the book; ``num_trades``: the trades of all symbols, if known."""
    stats = compute_statistics(
        equity, invested.astype(float), equity.to_numpy(), no_trades(), capital=capital,
        timeframe=strategy.data.timeframe,
    )  # fmt: skip
    extra: dict[str, float | int] = {
        "buy_and_hold_return_pct": math.nan,
        "total_commission": float(commission),
    }
    if num_trades is not None:
        extra["num_trades"] = num_trades
    return Statistics(**{**stats.__dict__, **extra})
