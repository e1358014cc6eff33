"""Backtest statistics from the equity curve and the trades.

Annualisation rule (one rule, everywhere): bars per year = (bars - 1) / years spanned by
the window's timestamps. A 24/7 1h series gives ~8766, a weekday 1d series ~252, whatever
the timeframe label says. A single-bar window falls back to the timeframe's 24/7 count.
Per-bar returns include the first bar against the initial capital. Risk-free rate is 0.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.backtest.result import Statistics, TradeTable
from ktrdr.engine.timeframes import SECONDS_PER_YEAR, nominal_bars_per_year

FloatArray = npt.NDArray[np.float64]


def bars_per_year(index: pd.DatetimeIndex, timeframe: str) -> float:
    if len(index) >= 2:
        span_s = (index[-1] - index[0]).total_seconds()
        if span_s > 0:
            return (len(index) - 1) / (span_s / SECONDS_PER_YEAR)
    return nominal_bars_per_year(timeframe)


def _drawdown(equity: FloatArray, capital: float) -> tuple[FloatArray, float, int, int]:
    """(drawdown per bar as fraction <= 0, max drawdown, longest underwater run, its end)."""
    peaks = np.maximum.accumulate(np.concatenate(([capital], equity)))[1:]
    dd = equity / peaks - 1.0
    under = dd < 0
    longest, end_at = 0, -1
    if under.any():
        # Bars since the last bar at a peak = length of the current underwater run.
        idx = np.arange(len(under))
        last_peak = np.maximum.accumulate(np.where(under, -1, idx))
        lengths = idx - last_peak
        end_at = int(lengths.argmax())
        longest = int(lengths[end_at])
    return dd, float(dd.min(initial=0.0)), longest, end_at


def _profit_factor(wins: float, losses: float) -> float:
    """Gross wins / gross losses; inf with no losing trade (None in JSON)."""
    if losses > 0:
        return wins / losses
    return math.inf if wins > 0 else math.nan


def _trade_stats(trades: TradeTable) -> dict[str, float | int]:
    if len(trades) == 0:
        nan = float("nan")
        return {
            "num_trades": 0,
            "win_rate_pct": nan,
            "best_trade_pct": nan,
            "worst_trade_pct": nan,
            "avg_trade_pct": nan,
            "profit_factor": nan,
            "total_commission": 0.0,
        }
    pnl, pct = trades.net_pnl, trades.pnl_pct
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return {
        "num_trades": len(trades),
        "win_rate_pct": float((pnl > 0).mean() * 100.0),
        "best_trade_pct": float(pct.max()),
        "worst_trade_pct": float(pct.min()),
        "avg_trade_pct": float(pct.mean()),
        "profit_factor": _profit_factor(float(wins), float(losses)),
        "total_commission": float(trades.commission.sum()),
    }


def compute_statistics(
    equity: pd.Series,
    units: FloatArray,
    close: FloatArray,
    trades: TradeTable,
    *,
    capital: float,
    timeframe: str,
) -> Statistics:
    """All statistics for one backtest window (see the module docstring for conventions)."""
    eq = equity.to_numpy(dtype=float)
    index = pd.DatetimeIndex(equity.index)
    bpy = bars_per_year(index, timeframe)
    returns = np.diff(np.concatenate(([capital], eq))) / np.concatenate(([capital], eq[:-1]))
    mean = float(returns.mean())
    std = float(returns.std(ddof=1)) if len(returns) > 1 else math.nan
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    total = eq[-1] / capital - 1.0
    years = len(eq) / bpy
    cagr = (eq[-1] / capital) ** (1.0 / years) - 1.0 if eq[-1] > 0 else -1.0
    _, max_dd, dd_bars, dd_end = _drawdown(eq, capital)
    dd_days = 0.0
    if dd_bars:
        # From the peak bar (the one before the run; the start for a run from bar 0).
        peak_at = max(dd_end - dd_bars, 0)
        dd_days = (index[dd_end] - index[peak_at]).total_seconds() / 86400.0
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / std * math.sqrt(bpy) if std and std > 0 else math.nan
        sortino = mean / downside * math.sqrt(bpy) if downside > 0 else math.nan
        calmar = cagr / abs(max_dd) if max_dd < 0 else math.nan
    return Statistics(
        start=index[0],
        end=index[-1],
        bars=len(eq),
        bars_per_year=bpy,
        initial_capital=capital,
        final_equity=float(eq[-1]),
        total_return_pct=total * 100.0,
        annualized_return_pct=mean * bpy * 100.0,
        cagr_pct=cagr * 100.0,
        buy_and_hold_return_pct=(close[-1] / close[0] - 1.0) * 100.0,
        volatility_pct=std * math.sqrt(bpy) * 100.0,
        sharpe_ratio=sharpe,
        sortino_ratio=sortino,
        calmar_ratio=calmar,
        max_drawdown_pct=max_dd * 100.0,
        max_drawdown_duration_bars=dd_bars,
        max_drawdown_duration_days=dd_days,
        exposure_pct=float((units != 0).mean() * 100.0),
        **_trade_stats(trades),  # type: ignore[arg-type]
    )
