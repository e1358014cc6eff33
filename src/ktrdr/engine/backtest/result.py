"""Typed backtest results, JSON-ready through ``to_dict`` (ISO times, NaN/inf -> None)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd


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
        d = asdict(self)
        d["start"] = self.start.isoformat()
        d["end"] = self.end.isoformat()
        return {k: json_float(v) if isinstance(v, float) else v for k, v in d.items()}


@dataclass(frozen=True)
class BacktestResult:
    strategy_name: str
    symbol: str
    timeframe: str
    commission: float
    slippage: float
    statistics: Statistics
    trades: list[Trade]
    equity_curve: pd.Series  # equity at each bar's close, UTC index
    positions: pd.Series = field(repr=False)  # signed units held at each close

    def to_dict(self, *, max_equity_points: int | None = None) -> dict[str, Any]:
        """JSON-serialisable result; ``max_equity_points`` thins the curve (keeps the last)."""
        curve = self.equity_curve
        if max_equity_points is not None and len(curve) > max_equity_points > 1:
            step = math.ceil(len(curve) / max_equity_points)
            picked = list(range(0, len(curve), step))
            if picked[-1] != len(curve) - 1:
                picked.append(len(curve) - 1)
            curve = curve.iloc[picked]
        return {
            "strategy_name": self.strategy_name,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "commission": self.commission,
            "slippage": self.slippage,
            "statistics": self.statistics.to_dict(),
            "trades": [t.to_dict() for t in self.trades],
            "equity_curve": [
                {"timestamp": ts.isoformat(), "equity": json_float(v)}
                for ts, v in zip(curve.index, curve.to_numpy(), strict=True)
            ],
        }
