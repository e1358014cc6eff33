"""Evaluate many parameter sets of one strategy on the same bars, in one pass per chunk.

How it is fast, and why its numbers equal ordinary backtests:
- each combination is the strategy with its values substituted and validated like a file
  (``SearchSpace``/``apply_overrides``), so nothing here re-implements a strategy rule;
- indicators are computed once per distinct (type, params) and shared between combinations
  (an LRU bounded in bytes), combinations being visited in sorted order so that the shared
  ones stay cached;
- decisions come from ``signals.decide_actions`` (the backtest's own code);
- fills and statistics run in ``kernels.combination_pass`` (numba, GIL released, one
  combination per task of a thread pool), whose aggregates equal numpy's bit for bit and
  go through the backtest's own ``summarise`` / ``trade_summary``.
Memory: a chunk holds ``chunk_size`` action rows (int8, bars each); only statistics (and,
with ``keep_returns``, per-bar returns) are kept per combination.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.backtest import aggregates as a
from ktrdr.engine.backtest.runner import exit_levels, position_fractions
from ktrdr.engine.backtest.simulate import Exits
from ktrdr.engine.backtest.statistics import bars_per_year, summarise_aggregates, trade_summary
from ktrdr.engine.campaigns import kernels as k
from ktrdr.engine.data.window import PreparedData
from ktrdr.engine.errors import BacktestCancelled, StrategyError
from ktrdr.engine.features import compute_features
from ktrdr.engine.signals import decide_actions
from ktrdr.engine.strategy.paths import apply_overrides
from ktrdr.engine.strategy.schema import Strategy

FloatArray = npt.NDArray[np.float64]
ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]
# Action rows held at once: chunk_size x bars bytes (int8); 32 MB at one million bars.
DEFAULT_CHUNK_BYTES = 32 * 2**20
# Indicator outputs kept for sharing between combinations.
DEFAULT_CACHE_BYTES = 96 * 2**20


@dataclass(frozen=True)
class CombinationResult:
    """One parameter set's outcome. ``statistics`` is exactly ``Statistics.to_dict()`` of
    the ordinary backtest (JSON-ready: ISO times, NaN/inf as None); ``returns`` are the
    per-bar strategy returns (fractions, one per window bar, the first against the initial
    capital) when ``keep_returns`` was asked for, else None."""

    params: dict[str, Any]
    statistics: dict[str, Any]
    returns: FloatArray | None = None


class _IndicatorLRU(OrderedDict[tuple[str, str], dict[str, FloatArray]]):
    """Indicator outputs by (type, params), least recently used dropped above ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.bytes = 0

    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def __setitem__(self, key: tuple[str, str], value: dict[str, FloatArray]) -> None:
        super().__setitem__(key, value)
        self.bytes += sum(a.nbytes for a in value.values())
        while self.bytes > self.max_bytes and len(self) > 1:
            _, dropped = self.popitem(last=False)
            self.bytes -= sum(a.nbytes for a in dropped.values())


def _combination_strategy(strategy: Strategy, params: Mapping[str, Any]) -> Strategy:
    combo = apply_overrides(strategy, params)
    if combo.decisions.model is not None:
        raise StrategyError(
            [
                "decisions.model strategies cannot be swept yet (each combination would need "
                "its own trained model); sweep a signals or fuzzy_rules strategy"
            ]
        )
    return combo


def evaluate_batch(
    strategy: Strategy,
    data: PreparedData,
    param_sets: list[dict[str, Any]],
    *,
    capital: float,
    commission: float | None = None,
    slippage: float | None = None,
    keep_returns: bool = False,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    chunk_size: int | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    threads: int | None = None,
) -> list[CombinationResult]:
    """Backtest ``strategy`` with each {path: value} set of ``param_sets`` on ``data``.

    Results are in ``param_sets`` order and equal ``run_backtest`` of each combination
    (same window, capital and costs). ``commission`` / ``slippage`` (fractions per side)
    override every combination's costs when given, like ``run_backtest``'s. ``progress(done,
    total)`` is called after each chunk; ``should_cancel()`` is checked before each chunk
    (raises BacktestCancelled). StrategyError for a set the strategy cannot take.
    ``threads`` (default: the CPU count) run a chunk's combinations in parallel.
    """
    if capital <= 0:
        raise ValueError(f"capital must be positive, got {capital}")
    total = len(param_sets)
    window = data.window
    n_bars = len(window)
    if chunk_size is None:
        chunk_size = max(1, min(256, DEFAULT_CHUNK_BYTES // max(n_bars, 1)))
        if _per_bar_inputs(strategy):
            # Each combination may bring its own 4 x bars sizing/exit rows.
            chunk_size = min(chunk_size, 8)
    bars = np.vstack(
        [window[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low")]
        + [window["close"].to_numpy(dtype=np.float64)]
    )
    close = bars[3]
    index = pd.DatetimeIndex(window.index)
    bpy = bars_per_year(index, strategy.data.timeframe)
    buy_and_hold = float(close[-1] / close[0] - 1.0)
    cache = _IndicatorLRU(cache_bytes)
    # Sorted by value so combinations sharing leading parameters (their indicators) run
    # together; results go back to the caller's order.
    order = sorted(range(total), key=lambda i: _sort_key(param_sets[i]))
    results: list[CombinationResult | None] = [None] * total
    with ThreadPoolExecutor(max_workers=max(1, threads or os.cpu_count() or 1)) as pool:
        for done in range(0, total, chunk_size):
            if should_cancel is not None and should_cancel():
                raise BacktestCancelled(f"sweep cancelled after {done} of {total} combinations")
            picked = order[done : done + chunk_size]
            combos = [_combination_strategy(strategy, param_sets[i]) for i in picked]
            actions = np.empty((len(combos), n_bars), dtype=np.int8)
            for row, combo in enumerate(combos):
                features = compute_features(combo, data.bars, cache)
                actions[row] = decide_actions(combo, features)[data.window_start : data.window_end]
            fills = _FillInputs(combos, data, commission, slippage)
            sell_to = [-1 if c.position_mode == "long_short" else 0 for c in combos]
            agg, kept = _run_chunk(pool, bars, actions, sell_to, fills, capital, keep_returns)
            for row, i in enumerate(picked):
                stats = _statistics(agg[row], index, bpy, capital, buy_and_hold)
                kept_row = kept[row] if kept is not None else None
                results[i] = CombinationResult(dict(param_sets[i]), stats, kept_row)
            if progress is not None:
                progress(min(done + chunk_size, total), total)
    return [r for r in results if r is not None]


def _run_chunk(
    pool: ThreadPoolExecutor,
    bars: FloatArray,
    actions: npt.NDArray[np.int8],
    sell_to: list[int],
    fills: _FillInputs,
    capital: float,
    keep_returns: bool,
) -> tuple[FloatArray, FloatArray | None]:
    """Aggregates (combinations x N_AGGREGATES) and, if asked, per-bar returns of a chunk."""
    m, n = actions.shape
    agg = np.empty((m, a.N_AGGREGATES))
    kept = np.empty((m, n)) if keep_returns else None

    def run(row: int) -> None:
        k.combination_pass(
            bars, actions[row], sell_to[row],
            fills.size_rows[fills.size_index[row]], fills.fixed_units[row],
            fills.exit_fractions[row], fills.distance_rows[fills.distance_index[row]],
            int(fills.time_bars[row]), fills.commission[row], fills.slippage[row],
            float(capital), kept[row] if kept is not None else np.empty(n), agg[row],
        )  # fmt: skip

    run(0)  # the first call compiles (or loads) the kernel, once
    list(pool.map(run, range(1, m)))
    return agg, kept


def _per_bar_inputs(strategy: Strategy) -> bool:
    exits = strategy.exits
    distances = (exits.stop_loss, exits.take_profit, exits.trailing_stop)
    return strategy.position_sizing.method == "volatility_target" or any(
        d is not None and d.atr is not None for d in distances
    )


class _FillInputs:
    """The fill pass's per-combination inputs for a chunk, built exactly as the backtest's
    ``runner.simulate`` / ``simulate_fills`` build them (same helpers, same arrays);
    combinations with the same sizing / exits share one row."""

    def __init__(
        self,
        combos: list[Strategy],
        data: PreparedData,
        commission: float | None,
        slippage: float | None,
    ) -> None:
        n = data.window_end - data.window_start
        off = np.full(n, np.nan)
        sizes: dict[str, int] = {}
        size_rows: list[FloatArray] = []
        dists: dict[str, int] = {}
        dist_rows: list[FloatArray] = []
        levels: dict[str, Exits] = {}
        self.size_index = np.empty(len(combos), np.int64)
        self.distance_index = np.empty(len(combos), np.int64)
        self.fixed_units = np.empty(len(combos))
        self.exit_fractions = np.empty((len(combos), 3))
        self.time_bars = np.empty(len(combos), np.int64)
        for c, combo in enumerate(combos):
            sizing = combo.position_sizing
            key = f"{combo.data.timeframe}|{sizing.model_dump_json()}"
            if key not in sizes:
                sizes[key] = len(size_rows)
                fraction = position_fractions(combo, data)
                size_rows.append(np.broadcast_to(np.asarray(fraction, dtype=np.float64), (n,)))
            self.size_index[c] = sizes[key]
            self.fixed_units[c] = (
                float(sizing.units or 0.0) if sizing.method == "fixed_units" else np.nan
            )
            key = combo.exits.model_dump_json()
            if key not in dists:
                dists[key] = len(dist_rows)
                levels[key] = exits = exit_levels(combo.exits, data)
                parts = (exits.stop_distance, exits.take_profit_distance, exits.trailing_distance)
                rows = [off if d is None else np.asarray(d, dtype=np.float64) for d in parts]
                dist_rows.append(np.vstack(rows))
            exits = levels[key]
            self.distance_index[c] = dists[key]
            self.exit_fractions[c] = (
                exits.stop_fraction,
                exits.take_profit_fraction,
                exits.trailing_fraction,
            )
            self.time_bars[c] = int(exits.time_stop_bars)
        self.size_rows = np.ascontiguousarray(np.stack(size_rows))
        self.distance_rows = np.ascontiguousarray(np.stack(dist_rows))
        self.commission = np.array([_cost(commission, c.costs.commission) for c in combos])
        self.slippage = np.array([_cost(slippage, c.costs.slippage) for c in combos])


def _cost(override: float | None, own: float) -> float:
    return float(own if override is None else override)


def _sort_key(params: Mapping[str, Any]) -> tuple[tuple[int, Any], ...]:
    # Numbers before text, so mixed categorical values still sort.
    return tuple((0, v) if isinstance(v, int | float) else (1, str(v)) for v in params.values())


def _statistics(
    agg: FloatArray, index: pd.DatetimeIndex, bpy: float, capital: float, buy_and_hold: float
) -> dict[str, Any]:
    trades = trade_summary(
        int(agg[a.NUM_TRADES]),
        float(agg[a.WIN_FRACTION]),
        float(agg[a.BEST_PCT]),
        float(agg[a.WORST_PCT]),
        float(agg[a.MEAN_PCT]),
        float(agg[a.GROSS_WINS]),
        float(agg[a.GROSS_LOSSES]),
        float(agg[a.COMMISSION]),
    )
    stats = summarise_aggregates(
        index, bpy, agg, capital=capital, final_equity=float(agg[a.FINAL_EQUITY]),
        buy_and_hold=buy_and_hold, trades=trades,
    )  # fmt: skip
    return stats.to_dict()
