"""A campaign's chunk: many parameter sets on the same bars, statistics per set.

Phases data_loading -> strategy_init -> evaluation -> results, one span each (prefix
`sweep_chunk`); progress per combination; cancellation between batches. Sweep and
in-sample chunks run the engine's batch evaluator; a walk-forward's `windows` chunk cuts
the bars into windows, its `out_of_sample` chunk runs each window's chosen parameters as
an ordinary backtest and stitches the equity curves.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.engine.backtest import build_result, prepare_data, prepare_strategy, simulate
from ktrdr.engine.backtest.result import json_float
from ktrdr.engine.campaigns import evaluate_batch
from ktrdr.engine.campaigns.batch import ReturnSummary
from ktrdr.engine.campaigns.walkforward import stitch_equity, walkforward_windows
from ktrdr.engine.errors import BacktestCancelled
from ktrdr.jobs.campaigns import RETURN_BLOCKS, SweepChunkParams, search_space
from ktrdr.worker.job import JobCancelled, JobContext
from ktrdr.worker.runners.stores import bars_for

PHASES = ("data_loading", "strategy_init", "evaluation", "results")
MAX_EQUITY_POINTS = 5_000


def _compact(summary: ReturnSummary | None) -> dict[str, Any] | None:
    """A combination's return summary as the chunk's result row carries it (JSON)."""
    if summary is None:
        return None
    return {
        "sharpe_per_bar": json_float(summary.sharpe_per_bar), "skew": json_float(summary.skew),
        "kurtosis": json_float(summary.kurtosis), "n_obs": summary.n_obs,
        "block_returns": [json_float(v) for v in summary.block_returns],
    }  # fmt: skip


def _load(ctx: JobContext, params: SweepChunkParams, warmup: int) -> Any:
    symbol, timeframe = params.data_key()
    ctx.progress(1, message=f"loading {symbol} {timeframe}")
    bars = bars_for(ctx, symbol, timeframe).load(
        symbol, timeframe, params.start, params.end, warmup_bars=warmup
    )
    return prepare_data(bars, params.start, params.end)


def run_sweep_chunk(ctx: JobContext) -> dict[str, Any]:
    params = SweepChunkParams.model_validate(ctx.params)
    if params.stage == "windows":
        return _windows(ctx, params)
    if params.stage == "out_of_sample":
        return _out_of_sample(ctx, params)
    return _evaluate(ctx, params)


def _evaluate(ctx: JobContext, params: SweepChunkParams) -> dict[str, Any]:
    began = time.perf_counter()
    strategy = params.run_strategy()
    combos = params.combinations
    with ctx.phase("data_loading", span_prefix="sweep_chunk") as span:
        space = search_space(params)
        warmup = max(space.apply(strategy, c.params).warmup_bars() for c in combos)
        data = _load(ctx, params, warmup)
        bars = data.window_end - data.window_start
        span.set_attribute("sweep.combinations", len(combos))
        span.set_attribute("backtest.bars", bars)
    loaded = time.perf_counter()
    ctx.check_cancelled()

    with ctx.phase("strategy_init", span_prefix="sweep_chunk"):
        param_sets = [c.params for c in combos]
    rows: list[dict[str, Any]] = []
    with ctx.phase("evaluation", span_prefix="sweep_chunk") as span:

        def progress(done: int, _total: int) -> None:
            ctx.progress(5 + 90 * done / len(combos), message=f"{done}/{len(combos)} combinations",
                         items_done=done, items_total=len(combos))  # fmt: skip

        # One call for the chunk, so its combinations share the bars, the indicators and
        # the thread pool; the batch bounds its own memory (combinations in flight, the
        # indicator LRU) and each combination's returns are reduced to their compact form
        # in its thread, never held.
        try:
            results = evaluate_batch(
                strategy, data, param_sets, capital=params.capital,
                commission=params.commission, slippage=params.slippage,
                return_blocks=RETURN_BLOCKS if params.keep_returns and bars > 1 else 0,
                progress=progress, should_cancel=lambda: ctx.cancelled, threads=ctx.threads,
            )  # fmt: skip
        except BacktestCancelled as exc:
            raise JobCancelled(ctx.cancel_reason or str(exc)) from None
        for combo, result in zip(combos, results, strict=True):
            rows.append(
                {
                    "key": combo.key, "index": combo.index, "params": combo.params,
                    "statistics": result.statistics, "stage": params.stage,
                    "window": params.window, "extra": _compact(result.summary),
                }
            )  # fmt: skip
        ctx.metrics.bars_simulated(bars * len(results))
        span.set_attribute("sweep.evaluated", len(rows))
    evaluated = time.perf_counter()

    with ctx.phase("results", span_prefix="sweep_chunk"):
        ctx.progress(99, message=f"{len(rows)} results")
    # Time inside the runner: the benchmark compares it with the chunk's run time on the
    # backend to measure dispatch and reporting overhead.
    ended = time.perf_counter()
    return {
        "results": rows, "bars": bars, "compute_seconds": ended - began,
        "phase_seconds": {"load": round(loaded - began, 4),
                          "evaluate": round(evaluated - loaded, 4),
                          "results": round(ended - evaluated, 4)},
    }  # fmt: skip


def _windows(ctx: JobContext, params: SweepChunkParams) -> dict[str, Any]:
    """Cut the campaign's bars into walk-forward windows (timestamps the backend plans on)."""
    settings = params.windows or {}
    with ctx.phase("data_loading", span_prefix="sweep_chunk"):
        data = _load(ctx, params, 0)
    with ctx.phase("evaluation", span_prefix="sweep_chunk"):
        try:
            windows = walkforward_windows(
                pd.DatetimeIndex(data.window.index), train=settings["train"],
                test=settings["test"], step=settings.get("step"),
                anchored=bool(settings.get("anchored")),
            )  # fmt: skip
        except ValueError as exc:
            raise ValueError(f"walk-forward windows: {exc}") from None
    return {
        "windows": [
            {
                "window": i,
                "train_start": w.train_first.isoformat(),
                "train_end": w.train_last.isoformat(),
                "test_start": w.test_first.isoformat(),
                "test_end": w.test_last.isoformat(),
            }
            for i, w in enumerate(windows)
        ]
    }


def _out_of_sample(ctx: JobContext, params: SweepChunkParams) -> dict[str, Any]:
    """Each window's chosen parameters on its test bars, then the stitched curve."""
    strategy = params.run_strategy()
    space = search_space(params)
    symbol, timeframe = params.data_key()
    store = bars_for(ctx, symbol, timeframe)
    rows: list[dict[str, Any]] = []
    segments: list[pd.Series] = []
    with ctx.phase("evaluation", span_prefix="sweep_chunk"):
        for n, combo in enumerate(params.combinations):
            ctx.check_cancelled()
            variant = space.apply(strategy, combo.params)
            bars = store.load(symbol, timeframe, combo.start, combo.end,
                              warmup_bars=variant.warmup_bars())  # fmt: skip
            data = prepare_data(bars, combo.start, combo.end)
            target = prepare_strategy(variant, data)
            costs = {
                "commission": variant.costs.commission if params.commission is None
                else params.commission,
                "slippage": variant.costs.slippage if params.slippage is None else params.slippage,
            }  # fmt: skip
            sim = simulate(variant, data, target, capital=params.capital, **costs)
            result = build_result(variant, data, sim, capital=params.capital, **costs)
            segments.append(result.equity_curve)
            rows.append(
                {
                    "key": combo.key, "index": combo.index, "params": combo.params,
                    "statistics": result.statistics.to_dict(), "stage": params.stage,
                    "window": combo.window, "extra": None,
                }
            )  # fmt: skip
            ctx.progress(100 * (n + 1) / len(params.combinations), items_done=n + 1,
                         items_total=len(params.combinations))  # fmt: skip
    with ctx.phase("results", span_prefix="sweep_chunk"):
        stitched = stitch_equity(segments, params.capital)
        values = stitched.to_numpy(dtype=float)
        peaks = np.maximum.accumulate(np.concatenate(([params.capital], values)))[1:]
    return {
        "results": rows,
        "stitched_equity": _thinned(stitched),
        "stitched": {
            "start": stitched.index[0].isoformat(),
            "end": stitched.index[-1].isoformat(),
            "bars": len(stitched),
            "final_equity": json_float(values[-1]),
            "total_return_pct": json_float((values[-1] / params.capital - 1.0) * 100.0),
            "max_drawdown_pct": json_float(float((values / peaks - 1.0).min()) * 100.0),
        },
    }


def _thinned(equity: pd.Series) -> list[list[Any]]:
    step = max(1, math.ceil(len(equity) / MAX_EQUITY_POINTS))
    picked = list(range(0, len(equity), step))
    if picked and picked[-1] != len(equity) - 1:
        picked.append(len(equity) - 1)
    return [[equity.index[i].isoformat(), json_float(equity.iloc[i])] for i in picked]
