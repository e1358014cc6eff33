"""Evaluate many parameter sets of one strategy on the same bars, in one pass per chunk.

How it is fast, and why its numbers equal ordinary backtests:
- each combination is the strategy with its values substituted and validated like a file
  (``SearchSpace``/``apply_overrides``), so nothing here re-implements a strategy rule;
- indicators are computed once per distinct (type, params) and shared between combinations
  (an LRU bounded in bytes), combinations being visited in sorted order so that the shared
  ones stay cached;
- decisions come from ``signals.decide_actions`` (the backtest's own code);
- fills and statistics run in ``kernels.batch_pass`` (numba, one combination per parallel
  iteration), whose aggregates equal numpy's bit for bit and go through the backtest's own
  ``summarise`` / ``trade_summary``.
Memory: a chunk holds ``chunk_size`` action rows (int8, bars each); only statistics (and,
with ``keep_returns``, per-bar returns) are kept per combination.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.backtest.statistics import bars_per_year, summarise, trade_summary
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
) -> list[CombinationResult]:
    """Backtest ``strategy`` with each {path: value} set of ``param_sets`` on ``data``.

    Results are in ``param_sets`` order and equal ``run_backtest`` of each combination
    (same window, capital and costs). ``commission`` / ``slippage`` (fractions per side)
    override every combination's costs when given, like ``run_backtest``'s. ``progress(done,
    total)`` is called after each chunk; ``should_cancel()`` is checked before each chunk
    (raises BacktestCancelled). StrategyError for a set the strategy cannot take.
    """
    if capital <= 0:
        raise ValueError(f"capital must be positive, got {capital}")
    total = len(param_sets)
    window = data.window
    n_bars = len(window)
    if chunk_size is None:
        chunk_size = max(1, min(256, DEFAULT_CHUNK_BYTES // max(n_bars, 1)))
    open_ = window["open"].to_numpy(dtype=np.float64)
    close = window["close"].to_numpy(dtype=np.float64)
    index = pd.DatetimeIndex(window.index)
    bpy = bars_per_year(index, strategy.data.timeframe)
    buy_and_hold = float(close[-1] / close[0] - 1.0)
    cache = _IndicatorLRU(cache_bytes)
    # Sorted by value so combinations sharing leading parameters (their indicators) run
    # together; results go back to the caller's order.
    order = sorted(range(total), key=lambda i: _sort_key(param_sets[i]))
    results: list[CombinationResult | None] = [None] * total
    for done in range(0, total, chunk_size):
        if should_cancel is not None and should_cancel():
            raise BacktestCancelled(f"sweep cancelled after {done} of {total} combinations")
        picked = order[done : done + chunk_size]
        combos = [_combination_strategy(strategy, param_sets[i]) for i in picked]
        actions = np.empty((len(combos), n_bars), dtype=np.int8)
        for row, combo in enumerate(combos):
            features = compute_features(combo, data.bars, cache)
            actions[row] = decide_actions(combo, features)[data.window_start : data.window_end]
        agg, kept = k.batch_pass(
            open_,
            close,
            actions,
            np.array([-1 if c.position_mode == "long_short" else 0 for c in combos], np.int8),
            np.array([c.position_sizing.fraction for c in combos], np.float64),
            np.array([_cost(commission, c.costs.commission) for c in combos], np.float64),
            np.array([_cost(slippage, c.costs.slippage) for c in combos], np.float64),
            float(capital),
            keep_returns,
        )
        for row, i in enumerate(picked):
            stats = _statistics(agg[row], index, bpy, capital, buy_and_hold)
            kept_row = kept[row].copy() if keep_returns else None
            results[i] = CombinationResult(dict(param_sets[i]), stats, kept_row)
        if progress is not None:
            progress(min(done + chunk_size, total), total)
    return [r for r in results if r is not None]


def _cost(override: float | None, own: float) -> float:
    return float(own if override is None else override)


def _sort_key(params: Mapping[str, Any]) -> tuple[tuple[int, Any], ...]:
    # Numbers before text, so mixed categorical values still sort.
    return tuple((0, v) if isinstance(v, int | float) else (1, str(v)) for v in params.values())


def _statistics(
    agg: FloatArray, index: pd.DatetimeIndex, bpy: float, capital: float, buy_and_hold: float
) -> dict[str, Any]:
    trades = trade_summary(
        int(agg[k.NUM_TRADES]),
        float(agg[k.WIN_FRACTION]),
        float(agg[k.BEST_PCT]),
        float(agg[k.WORST_PCT]),
        float(agg[k.MEAN_PCT]),
        float(agg[k.GROSS_WINS]),
        float(agg[k.GROSS_LOSSES]),
        float(agg[k.COMMISSION]),
    )
    stats = summarise(
        index,
        bpy,
        capital=capital,
        final_equity=float(agg[k.FINAL_EQUITY]),
        mean=float(agg[k.MEAN]),
        std=float(agg[k.STD]),
        downside=float(agg[k.DOWNSIDE]),
        max_dd=float(agg[k.MAX_DD]),
        dd_bars=int(agg[k.DD_BARS]),
        dd_end=int(agg[k.DD_END]),
        exposure=float(agg[k.EXPOSURE]),
        buy_and_hold=buy_and_hold,
        trades=trades,
    )
    return stats.to_dict()
