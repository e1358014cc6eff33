"""Evaluate many parameter sets of one strategy on the same bars, in one pass per chunk.

How it is fast, and why its numbers equal ordinary backtests:
- each combination is the strategy with its values substituted and validated like a file
  (``SearchSpace``/``apply_overrides``), so nothing here re-implements a strategy rule;
- indicators are computed once per distinct (type, params) and shared between combinations
  (an LRU bounded in bytes), combinations being visited in sorted order (the parameter
  with the most distinct values outermost) so that the shared ones stay cached; missing
  SMAs are computed a few combinations ahead, four per compiled pass
  (``features.cache_smas``), on the thread pool;
- decisions come from ``signals.decide_actions`` (the backtest's own code);
- fills and statistics run in ``kernels.combination_pass`` (numba, GIL released), whose
  aggregates equal numpy's bit for bit and go through the backtest's own ``summarise`` /
  ``trade_summary``; the same pass leaves the higher return moments and per-block
  returns the overfitting diagnostics need (``return_blocks``), so no pass over the
  returns follows it. Each combination's decisions and fills are one task of a thread
  pool; the main thread builds the next combinations and their statistics meanwhile.
Memory: a few combinations in flight (O(bars) each, at most twice the threads), the
indicator LRU, and per kept combination its statistics (and, with ``keep_returns``, its
per-bar returns; with ``return_blocks``, one number per block).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.backtest import aggregates as a
from ktrdr.engine.backtest.simulate import _TRADE_FIELDS as TRADE_FIELDS
from ktrdr.engine.backtest.statistics import (
    WindowClock,
    bars_per_year,
    summarise_aggregates,
    trade_summary,
)
from ktrdr.engine.campaigns import kernels as k
from ktrdr.engine.campaigns.diagnostics import moments_from_sums
from ktrdr.engine.campaigns.fill_inputs import FillInputs, per_bar_inputs
from ktrdr.engine.data.window import PreparedData
from ktrdr.engine.errors import BacktestCancelled, StrategyError
from ktrdr.engine.features import Features, SmaNeed, cache_smas, compute_features, sma_needs
from ktrdr.engine.signals import decide_actions
from ktrdr.engine.strategy.paths import apply_overrides
from ktrdr.engine.strategy.schema import Strategy

FloatArray = npt.NDArray[np.float64]
ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]
# Combinations built at once (their strategies, fill inputs and missing SMAs): about 32 MB
# of bars x combinations, 32 at a million bars.
DEFAULT_CHUNK_BYTES = 32 * 2**20
# Indicator outputs kept for sharing between combinations (7 SMAs at a million bars, 36 at
# 200,000). A random sweep fills it whatever its size, and a worker's peak memory is its
# imports and bars (~390 MB) plus this: 128 MB took a 10,000-combination sweep (200,000
# bars) to 600 MB, 48 MB to 436-454 MB. 56 MB, not 48: a chunk of 10 x 5 periods (half
# of the benchmark's grid on one of two workers) needs 5 + 1 averages live and 7 at each
# change of the outer period, so with room for 6 it computed 20 of its 15 averages.
DEFAULT_CACHE_BYTES = 56 * 2**20


@dataclass(frozen=True)
class CombinationResult:
    """One parameter set's outcome. ``statistics`` is exactly ``Statistics.to_dict()`` of
    the ordinary backtest (JSON-ready: ISO times, NaN/inf as None); ``returns`` are the
    per-bar strategy returns (fractions, one per window bar, the first against the initial
    capital) when ``keep_returns`` was asked for, else None; ``summary`` their compact
    form when ``return_blocks`` was."""

    params: dict[str, Any]
    statistics: dict[str, Any]
    returns: FloatArray | None = None
    summary: ReturnSummary | None = None


@dataclass(frozen=True)
class ReturnSummary:
    """What the overfitting diagnostics need of a combination's per-bar returns:
    ``diagnostics.return_moments`` of them (Sharpe per bar, skewness, non-excess kurtosis,
    count) and the compounded return of each of near-equal runs of bars (PBO's trials)."""

    sharpe_per_bar: float
    skew: float
    kurtosis: float
    n_obs: int
    block_returns: FloatArray


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
    return_blocks: int = 0,
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
    total)`` is called after each combination; ``should_cancel()`` is checked before each
    one starts (raises BacktestCancelled). StrategyError for a set the strategy cannot
    take. ``threads`` (default: the CPU count) run combinations in parallel;
    ``chunk_size`` combinations are built (validated, their fill inputs made) at once.
    ``return_blocks`` > 0 gives each result a ``ReturnSummary`` with that many blocks (at
    most one per bar): a sweep keeps moments of every combination without holding every
    return series (the window needs 2 bars or more).
    """
    if capital <= 0:
        raise ValueError(f"capital must be positive, got {capital}")
    total = len(param_sets)
    n_bars = len(data.window)
    if chunk_size is None:
        chunk_size = max(1, min(256, DEFAULT_CHUNK_BYTES // max(n_bars, 1)))
        if per_bar_inputs(strategy):
            # Each combination may bring its own 4 x bars sizing/exit rows.
            chunk_size = min(chunk_size, 8)
    workers = max(1, threads or os.cpu_count() or 1)
    run = _Run(data, capital, keep_returns, return_blocks, cache_bytes, workers)
    bpy = bars_per_year(run.index, strategy.data.timeframe)
    order = _visit_order(strategy, param_sets, run.cache_entries)
    results: list[CombinationResult | None] = [None] * total
    # At most two tasks per thread in flight: each holds its features and O(bars).
    pending: deque[tuple[int, Future[_Outcome]]] = deque()
    finished = 0

    def finish(i: int, outcome: _Outcome) -> None:
        nonlocal finished
        agg, returns, blocks = outcome
        stats = _statistics(agg, run.clock, bpy, capital, run.buy_and_hold)
        summary = None if blocks is None else _return_summary(agg, blocks, run.n)
        results[i] = CombinationResult(dict(param_sets[i]), stats, returns, summary)
        finished += 1
        if progress is not None:
            progress(finished, total)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for first in range(0, total, chunk_size):
            picked = order[first : first + chunk_size]
            combos = [_combination_strategy(strategy, param_sets[i]) for i in picked]
            needs = [sma_needs(c) for c in combos]
            fills = FillInputs(combos, data, commission, slippage, run.no_distances)
            for row, (i, combo) in enumerate(zip(picked, combos, strict=True)):
                if should_cancel is not None and should_cancel():
                    raise BacktestCancelled(
                        f"sweep cancelled after {finished} of {total} combinations"
                    )
                features = run.features(combo, needs[row:], pool)
                if not _warm:
                    finish(i, run.task(row, combo, features, fills))  # compiles (or loads)
                    continue
                pending.append((i, pool.submit(run.task, row, combo, features, fills)))
                while len(pending) > 2 * workers:
                    finish(*_next(pending))
        while pending:
            finish(*_next(pending))
    return [r for r in results if r is not None]


# The first combination of a process runs on the calling thread: it compiles (or loads
# from numba's cache) the kernels before any thread pool task needs them.
_warm = False
# A combination's aggregates (N_AGGREGATES), returns if kept, block returns if asked for.
_Outcome = tuple[FloatArray, FloatArray | None, FloatArray | None]


def _next(pending: deque[tuple[int, Future[_Outcome]]]) -> tuple[int, _Outcome]:
    i, future = pending.popleft()
    return i, future.result()


class _Run:
    """What every combination of one ``evaluate_batch`` call shares: the bars as the
    kernel reads them, the indicator LRU (and how it is filled), the all-NaN exit
    distances."""

    def __init__(
        self,
        data: PreparedData,
        capital: float,
        keep_returns: bool,
        return_blocks: int,
        cache_bytes: int,
        workers: int,
    ) -> None:
        window = data.window
        self.bars = np.vstack(
            [window[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")]
        )
        self.n = self.bars.shape[1]
        self.index = pd.DatetimeIndex(window.index)
        self.clock = WindowClock(self.index)
        self.buy_and_hold = float(self.bars[3, -1] / self.bars[3, 0] - 1.0)
        self.window = (data.window_start, data.window_end)
        self.capital = float(capital)
        self.keep_returns = keep_returns
        # Block edges (bar offsets) when block returns are asked for; none otherwise.
        if return_blocks < 0:
            raise ValueError(f"return_blocks must be >= 0, got {return_blocks}")
        count = min(return_blocks, self.n)
        self.edges = (
            np.linspace(0, self.n, count + 1).round().astype(np.int64)
            if count > 0
            else np.zeros(0, np.int64)
        )
        self.cache = _IndicatorLRU(cache_bytes)
        self.cache_entries = max(1, cache_bytes // (8 * max(len(data.bars), 1)))
        self.workers = workers
        self.data = data
        # The price columns as arrays once: every combination's features start from them
        # (taken from the frame per combination they cost ~0.1 ms of the main thread each).
        self.columns = {
            c: data.bars[c].to_numpy(dtype=np.float64)
            for c in ("open", "high", "low", "close", "volume")
        }
        # Exits without per-bar distances (most) share one all-NaN row set, broadcast
        # (stride 0): the fill pass then tells "no exit" from one element, where a full
        # array had it scan 3 x bars per combination (and cost 24 MB per batch).
        self.no_distances = np.broadcast_to(np.float64(np.nan), (3, self.n))
        self.local = threading.local()

    def _scratch(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """This thread's equity, units (a one-cell sink: see ``kernels.unit_sink``),
        trade-table and returns buffers (made on its first combination): every combination
        overwrites what it reads, and reusing them spares fresh O(bars) arrays, whose page
        faults cost more than the fills."""
        buffers = getattr(self.local, "buffers", None)
        if buffers is None:
            n = self.n
            table = np.empty((TRADE_FIELDS, n + 1))
            buffers = (np.empty(n), k.unit_sink(n), table, np.empty(n))
            self.local.buffers = buffers
        return buffers

    def features(
        self, combo: Strategy, needs: list[list[SmaNeed]], pool: ThreadPoolExecutor
    ) -> Features:
        """``combo``'s features from the cache; first, if it lacks some of its SMAs, those
        and the next combinations' (``needs`` from this one on) four per pass, on the pool."""
        if any(key not in self.cache for key, _, _ in needs[0]):
            wave = _missing(needs, self.cache, self.cache_entries, 4 * self.workers)
            cache_smas(wave, self.data.bars, self.cache, pool, self.workers)
        return compute_features(combo, self.data.bars, self.cache, self.columns)

    def task(self, row: int, combo: Strategy, features: Features, fills: FillInputs) -> _Outcome:
        """One combination, on a pool thread: decisions, fills, aggregates, its returns
        if kept and its block returns if asked for."""
        global _warm
        start, end = self.window
        actions = np.ascontiguousarray(decide_actions(combo, features)[start:end], np.int8)
        scratch = self._scratch()
        # Kept returns leave the task, so they get their own array; otherwise the thread's
        # buffer (a summary must not keep a reference to it: it is reused).
        returns = np.empty(self.n) if self.keep_returns else scratch[3]
        agg = np.empty(a.N_AGGREGATES)
        blocks = np.empty(max(len(self.edges) - 1, 0))
        k.combination_pass(
            self.bars, actions, fills.sell_to[row], fills.size_rows[row],
            fills.fixed_units[row], fills.exit_fractions[row], fills.distance_rows[row],
            int(fills.time_bars[row]), fills.commission[row], fills.slippage[row],
            self.capital, returns, agg, scratch[0], scratch[1], scratch[2], self.edges, blocks,
        )  # fmt: skip
        _warm = True
        return agg, (returns if self.keep_returns else None), (blocks if len(blocks) else None)


def _visit_order(strategy: Strategy, param_sets: list[dict[str, Any]], room: int) -> list[int]:
    """The order combinations are evaluated in (results go back to the caller's order).

    Sorted by value, the parameter with the most distinct values outermost: the inner ones
    then cycle through few values, whose indicators stay cached (a grid of 10 slow x 3 fast
    periods keeps 4 averages live, not 13). When the innermost parameter is an SMA period
    with more values than the cache has ``room`` for (beside one average per other SMA
    period searched), its values are taken in groups that fit, each group through every
    outer value: a 10 x 10 grid of two periods with room for 7 then computes 30 averages,
    where cycling all ten inner ones through each outer value computed 110."""
    outer_first = _by_distinct_values(param_sets)
    keys = [_sort_key(params, outer_first) for params in param_sets]
    smas = [path for path in outer_first if _is_sma_period(strategy, path)]
    tile = room - len(smas)
    if outer_first and outer_first[-1] in smas and tile >= 1:
        inner = sorted({key[-1] for key in keys})
        if len(inner) > tile:
            group = {value: n // tile for n, value in enumerate(inner)}
            return sorted(range(len(keys)), key=lambda i: (group[keys[i][-1]], keys[i]))
    return sorted(range(len(keys)), key=lambda i: keys[i])


def _is_sma_period(strategy: Strategy, path: str) -> bool:
    """``path`` is ``indicators.<id>.params.period`` of a base-timeframe SMA (the averages
    ``features.cache_smas`` computes and the indicator cache holds)."""
    parts = path.split(".")
    if len(parts) != 4 or parts[0] != "indicators" or parts[2:] != ["params", "period"]:
        return False
    return any(
        ind.id == parts[1] and ind.type == "sma"
        and ind.timeframe in (None, strategy.data.timeframe)
        for ind in strategy.indicators
    )  # fmt: skip


def _by_distinct_values(param_sets: list[dict[str, Any]]) -> list[str]:
    """Parameter paths, the one with the most distinct values first (ties: as given)."""
    paths = list(dict.fromkeys(p for params in param_sets for p in params))
    distinct = {p: len({repr(params.get(p)) for params in param_sets}) for p in paths}
    return sorted(paths, key=lambda p: -distinct[p])


def _sort_key(params: Mapping[str, Any], paths: list[str]) -> tuple[tuple[int, Any], ...]:
    # Numbers before text (and missing last), so mixed categorical values still sort.
    values = (params.get(p) for p in paths)
    return tuple(
        (0, v) if isinstance(v, int | float) else (1, str(v)) if v is not None else (2, "")
        for v in values
    )


def _missing(needs: list[list[SmaNeed]], cache: Any, room: int, limit: int) -> list[SmaNeed]:
    """Up to ``limit`` distinct SMAs the next combinations (``needs``, in order) lack:
    over as many of them as need at most ``room`` averages in all. The cached ones they
    need are touched (``get``), so storing the missing ones evicts others."""
    live: set[tuple[str, str]] = set()
    wave: list[SmaNeed] = []
    for combination in needs:
        keys = {need[0] for need in combination} - live
        if live and (len(live) + len(keys) > room or len(wave) >= limit):
            break
        live |= keys
        for need in combination:
            if need[0] in keys:
                if cache.get(need[0]) is None:
                    wave.append(need)
                keys.discard(need[0])
    return wave


def _return_summary(agg: FloatArray, blocks: FloatArray, n: int) -> ReturnSummary:
    sharpe, skew, kurtosis, count = moments_from_sums(
        float(agg[a.MEAN]), float(agg[a.SQUARES]), float(agg[a.CUBES]), float(agg[a.FOURTHS]), n
    )
    return ReturnSummary(sharpe, skew, kurtosis, count, blocks)


def _statistics(
    agg: FloatArray, clock: WindowClock, bpy: float, capital: float, buy_and_hold: float
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
        clock, bpy, agg, capital=capital, final_equity=float(agg[a.FINAL_EQUITY]),
        buy_and_hold=buy_and_hold, trades=trades,
    )  # fmt: skip
    return stats.to_dict()
