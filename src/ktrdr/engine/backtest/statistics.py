"""Backtest statistics from the equity curve and the trades.

Annualisation rule (one rule, everywhere): bars per year = (bars - 1) / years spanned by
the window's timestamps. A 24/7 1h series gives ~8766, a weekday 1d series ~252, whatever
the timeframe label says. A single-bar window falls back to the timeframe's 24/7 count.
Per-bar returns include the first bar against the initial capital. Risk-free rate is 0.
"""

from __future__ import annotations

import math
from typing import Literal, cast

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


class WindowClock:
    """What statistics read of a window's timestamps: its first and last, its length, and
    the days between two of its bars. Taken once per window: a campaign batch summarises
    every combination on the same one, and each Timestamp boxed from the index cost ~70 us
    of the thread that feeds the batch's kernels (4 per combination)."""

    def __init__(self, index: pd.DatetimeIndex) -> None:
        self.start: pd.Timestamp = index[0]
        self.end: pd.Timestamp = index[-1]
        self.bars = len(index)
        self._ticks = index.asi8
        self._unit = cast(Literal["s", "ms", "us", "ns"], index.unit)

    def days_between(self, first: int, last: int) -> float:
        """Days from bar ``first`` to bar ``last``: ``(index[last] - index[first])`` in days,
        through the same Timedelta (same resolution, so the same float)."""
        ticks = int(self._ticks[last] - self._ticks[first])
        return pd.Timedelta(np.timedelta64(ticks, self._unit)).total_seconds() / 86400.0


def _profit_factor(wins: float, losses: float) -> float:
    """Gross wins / gross losses; inf with no losing trade (None in JSON)."""
    if losses > 0:
        return wins / losses
    return math.inf if wins > 0 else math.nan


def _trade_stats(trades: TradeTable) -> dict[str, float | int]:
    pnl, pct = trades.net_pnl, trades.pnl_pct
    if len(trades) == 0:
        return trade_summary(0, 0.0, math.nan, math.nan, 0.0, 0.0, 0.0, 0.0)
    return trade_summary(
        len(trades),
        float((pnl > 0).mean()),
        float(pct.max()),
        float(pct.min()),
        float(pct.mean()),
        float(pnl[pnl > 0].sum()),
        float(-pnl[pnl < 0].sum()),
        float(trades.commission.sum()),
    )


def trade_summary(
    num_trades: int,
    win_fraction: float,
    best_pct: float,
    worst_pct: float,
    mean_pct: float,
    gross_wins: float,
    gross_losses: float,
    commission: float,
) -> dict[str, float | int]:
    """The trade statistics from per-trade aggregates (one copy of these rules; the batch
    evaluator of ``ktrdr.engine.campaigns`` computes the aggregates in a compiled pass)."""
    if num_trades == 0:
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
    return {
        "num_trades": num_trades,
        "win_rate_pct": win_fraction * 100.0,
        "best_trade_pct": best_pct,
        "worst_trade_pct": worst_pct,
        "avg_trade_pct": mean_pct,
        "profit_factor": _profit_factor(gross_wins, gross_losses),
        "total_commission": commission,
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
    index = equity.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    return window_statistics(
        index, equity.to_numpy(dtype=float), units, close, _trade_stats(trades),
        capital=capital, timeframe=timeframe,
    )  # fmt: skip


def window_statistics(
    index: pd.DatetimeIndex,
    equity: FloatArray,
    units: FloatArray,
    close: FloatArray,
    trades: dict[str, float | int],
    *,
    capital: float,
    timeframe: str,
) -> Statistics:
    """``compute_statistics`` from the window's arrays, the trade figures given (see
    ``trade_summary``, ``table_trade_summary``)."""
    from ktrdr.engine.backtest import aggregates as a

    eq = np.ascontiguousarray(equity, dtype=float)
    bpy = bars_per_year(index, timeframe)
    # One compiled pass (numpy's own summation order): returns, their mean, std and
    # downside deviation, drawdown and its longest run, exposure.
    agg = np.full(a.N_AGGREGATES, np.nan)
    a.equity_aggregates(
        eq, np.ascontiguousarray(units, dtype=float), capital, np.empty(len(eq)), agg
    )
    return summarise_aggregates(
        index, bpy, agg, capital=capital, final_equity=float(eq[-1]),
        buy_and_hold=float(close[-1] / close[0] - 1.0), trades=trades,
    )  # fmt: skip


def table_trade_summary(table: FloatArray) -> dict[str, float | int]:
    """The trade statistics of the fill pass's trade table (one row per field, one column
    per trade; see ``simulate``), through the compiled aggregates campaign batches use:
    the figures ``TradeTable`` columns give, without building the table."""
    from ktrdr.engine.backtest import aggregates as a

    agg = np.full(a.N_AGGREGATES, np.nan)
    a.trade_aggregates(table, table.shape[1], agg)
    return trade_summary(
        int(agg[a.NUM_TRADES]), float(agg[a.WIN_FRACTION]), float(agg[a.BEST_PCT]),
        float(agg[a.WORST_PCT]), float(agg[a.MEAN_PCT]), float(agg[a.GROSS_WINS]),
        float(agg[a.GROSS_LOSSES]), float(agg[a.COMMISSION]),
    )  # fmt: skip


def summarise_aggregates(
    index: pd.DatetimeIndex | WindowClock,
    bpy: float,
    agg: npt.NDArray[np.float64],
    *,
    capital: float,
    final_equity: float,
    buy_and_hold: float,
    trades: dict[str, float | int],
) -> Statistics:
    """``summarise`` from a compiled pass's aggregate row (``aggregates`` slots): one
    reading of the row for single backtests and campaign batches alike."""
    from ktrdr.engine.backtest import aggregates as a

    return summarise(
        index, bpy, capital=capital, final_equity=final_equity,
        mean=float(agg[a.MEAN]), std=float(agg[a.STD]), downside=float(agg[a.DOWNSIDE]),
        max_dd=float(agg[a.MAX_DD]), dd_bars=int(agg[a.DD_BARS]), dd_end=int(agg[a.DD_END]),
        exposure=float(agg[a.EXPOSURE]), buy_and_hold=buy_and_hold, trades=trades,
    )  # fmt: skip


def summarise(
    index: pd.DatetimeIndex | WindowClock,
    bpy: float,
    *,
    capital: float,
    final_equity: float,
    mean: float,
    std: float,
    downside: float,
    max_dd: float,
    dd_bars: int,
    dd_end: int,
    exposure: float,
    buy_and_hold: float,
    trades: dict[str, float | int],
) -> Statistics:
    """Statistics from the per-bar aggregates: mean / std (ddof 1) / downside deviation of
    the per-bar returns, max drawdown (fraction <= 0), longest underwater run and its end,
    fraction of bars in a position, buy-and-hold return (fraction), trade statistics."""
    clock = index if isinstance(index, WindowClock) else WindowClock(index)
    total = final_equity / capital - 1.0
    years = clock.bars / bpy
    cagr = (final_equity / capital) ** (1.0 / years) - 1.0 if final_equity > 0 else -1.0
    dd_days = 0.0
    if dd_bars:
        # From the peak bar (the one before the run; the start for a run from bar 0).
        peak_at = max(dd_end - dd_bars, 0)
        dd_days = clock.days_between(peak_at, dd_end)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / std * math.sqrt(bpy) if std and std > 0 else math.nan
        sortino = mean / downside * math.sqrt(bpy) if downside > 0 else math.nan
        calmar = cagr / abs(max_dd) if max_dd < 0 else math.nan
    return Statistics(
        start=clock.start,
        end=clock.end,
        bars=clock.bars,
        bars_per_year=bpy,
        initial_capital=capital,
        final_equity=final_equity,
        total_return_pct=total * 100.0,
        annualized_return_pct=mean * bpy * 100.0,
        cagr_pct=cagr * 100.0,
        buy_and_hold_return_pct=buy_and_hold * 100.0,
        volatility_pct=std * math.sqrt(bpy) * 100.0,
        sharpe_ratio=sharpe,
        sortino_ratio=sortino,
        calmar_ratio=calmar,
        max_drawdown_pct=max_dd * 100.0,
        max_drawdown_duration_bars=dd_bars,
        max_drawdown_duration_days=dd_days,
        exposure_pct=exposure * 100.0,
        **trades,  # type: ignore[arg-type]
    )
