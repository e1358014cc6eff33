"""Typed backtest results, JSON-ready through ``to_dict`` (ISO times, NaN/inf -> None)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.artifacts.tables import thin_positions

# Why a trade ended (the trade table's exit_reason code; names in EXIT_REASONS).
EXIT_SIGNAL = 0
EXIT_END_OF_DATA = 1
EXIT_STOP_LOSS = 2
EXIT_TAKE_PROFIT = 3
EXIT_TRAILING_STOP = 4
EXIT_TIME_STOP = 5
EXIT_REASONS = ("signal", "end_of_data", "stop_loss", "take_profit", "trailing_stop", "time_stop")


def json_float(value: float) -> float | None:
    """A float JSON can carry: NaN and ±inf become None."""
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class Trade:
    """One round trip. Prices are fills (slippage included); ``gross_pnl`` is before all
    costs (at the unslipped prices); ``net_pnl`` = gross - slippage_cost - commission,
    where commission counts both the entry and the exit fill."""

    entry_time: pd.Timestamp
    exit_time: pd.Timestamp
    side: str  # "long" | "short"
    size: float  # units of the instrument
    entry_price: float
    exit_price: float
    gross_pnl: float
    slippage_cost: float
    commission: float
    net_pnl: float
    pnl_pct: float  # net_pnl / entry notional * 100
    bars_held: int
    exit_reason: str  # "signal" | "end_of_data"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["entry_time"] = self.entry_time.isoformat()
        d["exit_time"] = self.exit_time.isoformat()
        return {k: json_float(v) if isinstance(v, float) else v for k, v in d.items()}


@dataclass(frozen=True)
class TradeTable:
    """All trades as columns (one entry per trade); cheap to build for many trades."""

    entry_time: pd.DatetimeIndex
    exit_time: pd.DatetimeIndex
    side: npt.NDArray[np.int64]  # +1 long, -1 short
    size: npt.NDArray[np.float64]
    entry_price: npt.NDArray[np.float64]
    exit_price: npt.NDArray[np.float64]
    gross_pnl: npt.NDArray[np.float64]
    slippage_cost: npt.NDArray[np.float64]
    commission: npt.NDArray[np.float64]
    net_pnl: npt.NDArray[np.float64]
    pnl_pct: npt.NDArray[np.float64]
    bars_held: npt.NDArray[np.int64]
    closed_at_end: npt.NDArray[np.bool_]
    exit_reason: npt.NDArray[np.int8]  # codes into simulate.EXIT_REASONS

    def __len__(self) -> int:
        return len(self.net_pnl)

    def columns(self) -> dict[str, Any]:
        """The trades as named columns, in ``Trade``'s field order and units (no per-trade
        objects: this is what the platform stores)."""
        return {
            "entry_time": self.entry_time,
            "exit_time": self.exit_time,
            "side": np.where(self.side > 0, "long", "short"),
            "size": self.size,
            "entry_price": self.entry_price,
            "exit_price": self.exit_price,
            "gross_pnl": self.gross_pnl,
            "slippage_cost": self.slippage_cost,
            "commission": self.commission,
            "net_pnl": self.net_pnl,
            "pnl_pct": self.pnl_pct,
            "bars_held": self.bars_held,
            "exit_reason": np.asarray(EXIT_REASONS)[self.exit_reason],
        }

    def to_trades(self) -> list[Trade]:
        columns = zip(
            self.entry_time,
            self.exit_time,
            self.side.tolist(),
            self.size.tolist(),
            self.entry_price.tolist(),
            self.exit_price.tolist(),
            self.gross_pnl.tolist(),
            self.slippage_cost.tolist(),
            self.commission.tolist(),
            self.net_pnl.tolist(),
            self.pnl_pct.tolist(),
            self.bars_held.tolist(),
            self.exit_reason.tolist(),
            strict=True,
        )
        return [
            Trade(
                entry_time=et,
                exit_time=xt,
                side="long" if sd > 0 else "short",
                size=sz,
                entry_price=ep,
                exit_price=xp,
                gross_pnl=g,
                slippage_cost=sl,
                commission=c,
                net_pnl=n,
                pnl_pct=p,
                bars_held=b,
                exit_reason=EXIT_REASONS[reason],
            )
            for et, xt, sd, sz, ep, xp, g, sl, c, n, p, b, reason in columns
        ]


@dataclass(frozen=True)
class Statistics:
    """Summary statistics. Returns are in percent; ratios are annualised with
    ``bars_per_year`` measured from the timestamps (see ``statistics.bars_per_year``)."""

    start: pd.Timestamp
    end: pd.Timestamp
    bars: int
    bars_per_year: float
    initial_capital: float
    final_equity: float
    total_return_pct: float
    annualized_return_pct: float
    cagr_pct: float
    buy_and_hold_return_pct: float
    volatility_pct: float
    sharpe_ratio: float
    sortino_ratio: float
    calmar_ratio: float
    max_drawdown_pct: float
    max_drawdown_duration_bars: int
    max_drawdown_duration_days: float
    num_trades: int
    win_rate_pct: float
    best_trade_pct: float
    worst_trade_pct: float
    avg_trade_pct: float
    profit_factor: float
    exposure_pct: float
    total_commission: float

    def to_dict(self) -> dict[str, Any]:
        # Field by field, not ``asdict``: its deep copy of the two timestamps was 50 us of
        # a sweep worker's main thread per combination (every field is a scalar).
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["start"] = self.start.isoformat()
        d["end"] = self.end.isoformat()
        return {k: json_float(v) if isinstance(v, float) else v for k, v in d.items()}


@dataclass(frozen=True)
class WindowArrays:
    """The window's per-bar arrays a result's series are made from."""

    index: pd.DatetimeIndex  # the window's bar times (UTC)
    equity: npt.NDArray[np.float64]  # equity at each bar's close
    units: npt.NDArray[np.float64]  # signed units held at each close
    close: npt.NDArray[np.float64]  # the instrument's close


@dataclass(frozen=True)
class BacktestResult:
    """A backtest's statistics, with its trade table and per-bar series built on first use:
    a sweep, a benchmark or a universe's members read the statistics (or one curve), and
    at 100,000 bars building every table up front cost as much as the fills."""

    strategy_name: str
    symbol: str
    timeframe: str
    commission: float
    slippage: float
    statistics: Statistics
    bars: WindowArrays = field(repr=False)
    make_trade_table: Callable[[], TradeTable] = field(repr=False, compare=False)

    @cached_property
    def trade_table(self) -> TradeTable:
        return self.make_trade_table()

    @cached_property
    def equity_curve(self) -> pd.Series:
        """Equity at each bar's close, UTC index."""
        return pd.Series(self.bars.equity, index=self.bars.index, name="equity", copy=False)

    @cached_property
    def positions(self) -> pd.Series:
        """Signed units held at each bar's close."""
        return pd.Series(self.bars.units, index=self.bars.index, name="units", copy=False)

    @cached_property
    def closes(self) -> pd.Series:
        """The instrument's close at each bar: the report's price chart and buy and hold."""
        return pd.Series(self.bars.close, index=self.bars.index, name="close", copy=False)

    @cached_property
    def trades(self) -> list[Trade]:
        """The trade list (built on first use from ``trade_table``)."""
        return self.trade_table.to_trades()

    def _closes_at(self, index: pd.Index) -> npt.NDArray[np.float64]:
        return self.closes.reindex(index).to_numpy(dtype=float)

    def equity_columns(self) -> dict[str, Any]:
        """The equity curve as named columns (``timestamp``, ``equity``, the bar's ``close``
        for a buy-and-hold comparison)."""
        curve = self.equity_curve
        return {
            "timestamp": curve.index,
            "equity": curve.to_numpy(),
            "close": self._closes_at(curve.index),
        }

    def summary(self) -> dict[str, Any]:
        """Everything but the per-trade and per-bar tables, JSON-ready."""
        return {
            "strategy_name": self.strategy_name,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "commission": self.commission,
            "slippage": self.slippage,
            "statistics": self.statistics.to_dict(),
        }

    def to_dict(self, *, max_equity_points: int | None = None) -> dict[str, Any]:
        """JSON-serialisable result; ``max_equity_points`` thins the curve (keeps the last)."""
        curve = self.equity_curve
        if max_equity_points is not None:
            curve = curve.iloc[thin_positions(len(curve), max_equity_points)]
        closes = self._closes_at(curve.index)
        return {
            **self.summary(),
            "trades": [t.to_dict() for t in self.trades],
            "equity_curve": [
                {"timestamp": ts.isoformat(), "equity": json_float(v), "close": json_float(c)}
                for ts, v, c in zip(curve.index, curve.to_numpy(), closes, strict=True)
            ],
        }
