"""Run a strategy over bars, in phases a caller can wrap (one span per phase):

1. ``prepare_data``      — check bars, find the window (history before it is warm-up only)
2. ``prepare_strategy``  — indicators, fuzzy memberships, decisions (strategy_init)
3. ``simulate``          — fills at next open with costs (simulation)
4. ``build_result``      — trades, statistics, equity curve (results)

``run_backtest`` chains them, reporting ``progress(fraction, phase, message)`` and raising
``BacktestCancelled`` when ``should_cancel()`` turns true at a checkpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.backtest.result import BacktestResult, TradeTable, WindowArrays
from ktrdr.engine.backtest.simulate import (
    Exits,
    SimulationOutput,
    capped_fractions,
    simulate_fills,
)
from ktrdr.engine.backtest.statistics import (
    nominal_bars_per_year,
    table_trade_summary,
    window_statistics,
)
from ktrdr.engine.data.window import PreparedData, prepare_data
from ktrdr.engine.errors import BacktestCancelled
from ktrdr.engine.features import compute_features
from ktrdr.engine.indicators.volatility import atr, log_return_sigma
from ktrdr.engine.models import ModelSource
from ktrdr.engine.signals import decide_actions, target_positions
from ktrdr.engine.strategy.schema import ExitsConfig, PriceDistance, Strategy

ProgressCallback = Callable[[float, str, str], None]
CancelCheck = Callable[[], bool]
DEFAULT_CAPITAL = 100_000.0


def prepare_strategy(
    strategy: Strategy, data: PreparedData, models: ModelSource | None = None
) -> npt.NDArray[np.int8]:
    """Target side (+1/0/-1) decided at each window bar's close (indicators use all bars).

    ``models`` holds the trained models; only strategies with ``decisions.model`` need it.
    """
    prices = {c: data.column(c) for c in ("open", "high", "low", "close", "volume")}
    features = compute_features(strategy, data.bars, columns=prices)
    actions = decide_actions(strategy, features, models)[data.window_start : data.window_end]
    return target_positions(actions, strategy.position_mode)


def simulate(
    strategy: Strategy,
    data: PreparedData,
    target: npt.NDArray[np.int8],
    *,
    capital: float,
    commission: float,
    slippage: float,
) -> SimulationOutput:
    sizing = strategy.position_sizing
    return simulate_fills(
        data.window_column("open"),
        data.window_column("close"),
        target,
        capital=capital,
        fraction=position_fractions(strategy, data),
        fixed_units=sizing.units if sizing.method == "fixed_units" else None,
        commission=commission,
        slippage=slippage,
        high=data.window_column("high"),
        low=data.window_column("low"),
        exits=exit_levels(strategy.exits, data),
    )


def position_fractions(strategy: Strategy, data: PreparedData) -> float | npt.NDArray[np.float64]:
    """Share of equity per entry: fixed, or target σ / realised σ (decided at each bar's
    close from the bars up to it), capped at ``max_fraction``."""
    sizing = strategy.position_sizing
    if sizing.method != "volatility_target":
        return min(sizing.fraction, sizing.max_fraction)
    per_year = nominal_bars_per_year(strategy.data.timeframe)
    sigma = log_return_sigma(data.column("close"), sizing.volatility_period)
    return capped_fractions(
        float(sizing.target_volatility or 0.0),
        sigma[data.window_start : data.window_end],
        float(sizing.max_fraction),
        float(np.sqrt(per_year)) if per_year else 1.0,
    )


def exit_levels(exits: ExitsConfig, data: PreparedData) -> Exits:
    """The strategy's exits as the kernel wants them: fractions, or ATR distances per bar."""
    bars = data.bars
    atrs: dict[int, npt.NDArray[np.float64]] = {}  # a stop and a target often share one

    def parts(d: PriceDistance | None) -> tuple[float, npt.NDArray[np.float64] | None]:
        if d is None:
            return np.nan, None
        if d.fraction is not None:
            return d.fraction, None
        if d.atr_period not in atrs:
            atrs[d.atr_period] = atr(
                bars["high"], bars["low"], bars["close"], d.atr_period
            ).to_numpy()[data.window_start : data.window_end]
        return np.nan, float(d.atr or 0.0) * atrs[d.atr_period]

    (sf, sd), (tf, td), (rf, rd) = (
        parts(exits.stop_loss), parts(exits.take_profit), parts(exits.trailing_stop)
    )  # fmt: skip
    return Exits(sf, tf, rf, sd, td, rd, exits.time_stop_bars or 0)


def window_index(data: PreparedData) -> pd.DatetimeIndex:
    """The window's bar times: the bars' own index (UTC, checked by ``prepare_data``) or a
    slice of it, without slicing the frame (a fixed cost a 100,000-bar run notices)."""
    index = cast(pd.DatetimeIndex, data.bars.index)
    if data.window_start == 0 and data.window_end == len(index):
        return index
    return index[data.window_start : data.window_end]


def build_trades(
    sim: SimulationOutput,
    index: pd.DatetimeIndex,
    opens: npt.NDArray[np.float64],
    closes: npt.NDArray[np.float64],
) -> TradeTable:
    """Trade columns from the simulation over the window's ``index``, ``opens`` and
    ``closes`` (vectorised; Trade objects are made on demand)."""
    e, x, side, size = sim.entry_index, sim.exit_index, sim.side, sim.size
    raw_entry = opens[e]
    raw_exit = np.where(sim.closed_at_end, closes[x], opens[x])
    gross = side * size * (raw_exit - raw_entry)
    slip = size * (np.abs(sim.entry_fill - raw_entry) + np.abs(sim.exit_fill - raw_exit))
    comm = sim.entry_commission + sim.exit_commission
    net = side * size * (sim.exit_fill - sim.entry_fill) - comm
    pct = net / (size * sim.entry_fill) * 100.0
    return TradeTable(
        entry_time=index[e],
        exit_time=index[x],
        side=side,
        size=size,
        entry_price=sim.entry_fill,
        exit_price=sim.exit_fill,
        gross_pnl=gross,
        slippage_cost=slip,
        commission=comm,
        net_pnl=net,
        pnl_pct=pct,
        bars_held=x - e,
        closed_at_end=sim.closed_at_end,
        exit_reason=sim.exit_reason,
    )


def build_result(
    strategy: Strategy,
    data: PreparedData,
    sim: SimulationOutput,
    *,
    capital: float,
    commission: float,
    slippage: float,
) -> BacktestResult:
    """Statistics from the arrays (trade figures from the kernel's trade table); the trade
    table and the per-bar series are built when first read."""
    index = window_index(data)
    opens, closes = data.window_column("open"), data.window_column("close")
    stats = window_statistics(
        index, sim.equity, sim.units, closes, table_trade_summary(sim.table),
        capital=capital, timeframe=strategy.data.timeframe,
    )  # fmt: skip
    return BacktestResult(
        strategy_name=strategy.name,
        symbol=strategy.data.symbol,
        timeframe=strategy.data.timeframe,
        commission=commission,
        slippage=slippage,
        statistics=stats,
        bars=WindowArrays(index=index, equity=sim.equity, units=sim.units, close=closes),
        make_trade_table=functools.partial(build_trades, sim, index, opens, closes),
    )


def run_backtest(
    strategy: Strategy,
    bars: pd.DataFrame,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    capital: float = DEFAULT_CAPITAL,
    commission: float | None = None,
    slippage: float | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    models: ModelSource | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` on ``bars`` over [start, end]; costs default to the strategy's.

    ``bars`` may include history before ``start`` (see ``Strategy.warmup_bars``) for
    indicator warm-up. ``progress(fraction, phase, message)`` is called at each phase;
    ``should_cancel()`` is checked between phases (raises BacktestCancelled). ``models``
    is the model store a strategy with ``decisions.model`` loads its trained model from.
    """
    if capital <= 0:
        raise ValueError(f"capital must be positive, got {capital}")
    commission = strategy.costs.commission if commission is None else commission
    slippage = strategy.costs.slippage if slippage is None else slippage

    def checkpoint(fraction: float, phase: str, message: str) -> None:
        if should_cancel is not None and should_cancel():
            raise BacktestCancelled(f"backtest cancelled during {phase}")
        if progress is not None:
            progress(fraction, phase, message)

    checkpoint(0.0, "data_loading", f"checking {len(bars)} bars")
    data = prepare_data(bars, start, end)
    checkpoint(0.1, "strategy_init", f"computing {len(strategy.indicators)} indicators")
    target = prepare_strategy(strategy, data, models)
    checkpoint(0.5, "simulation", f"simulating {data.window_end - data.window_start} bars")
    sim = simulate(
        strategy, data, target, capital=capital, commission=commission, slippage=slippage
    )
    checkpoint(0.9, "results", "computing statistics")
    result = build_result(
        strategy, data, sim, capital=capital, commission=commission, slippage=slippage
    )
    if progress is not None:
        progress(1.0, "results", f"{result.statistics.num_trades} trades")
    return result
