"""A campaign's chunk: many parameter sets on the same bars, statistics per set.

Phases data_loading -> strategy_init -> evaluation -> results, one span each (prefix
`sweep_chunk`); progress per combination; cancellation between combinations.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from ktrdr.engine.backtest import build_result, prepare_data, prepare_strategy, simulate
from ktrdr.engine.backtest.result import json_float
from ktrdr.jobs.campaigns import SweepChunkParams, search_space
from ktrdr.worker.job import JobCancelled, JobContext
from ktrdr.worker.runners.stores import data_store

PHASES = ("data_loading", "strategy_init", "evaluation", "results")
MAX_EQUITY_POINTS = 5_000


def block_returns(equity: np.ndarray, capital: float, blocks: int) -> list[float]:
    """Compounded return of each of `blocks` equal runs of bars (compact, for PBO)."""
    values = np.concatenate(([capital], equity))
    edges = np.linspace(0, len(values) - 1, min(blocks, len(values) - 1) + 1).round().astype(int)
    return [float(values[b] / values[a] - 1.0) for a, b in pairwise(edges)]


def thinned_equity(equity: Any) -> list[list[Any]]:
    step = max(1, -(-len(equity) // MAX_EQUITY_POINTS))
    picked = list(range(0, len(equity), step))
    if picked and picked[-1] != len(equity) - 1:
        picked.append(len(equity) - 1)
    return [[equity.index[i].isoformat(), json_float(equity.iloc[i])] for i in picked]


def run_sweep_chunk(ctx: JobContext) -> dict[str, Any]:
    params = SweepChunkParams.model_validate(ctx.params)
    symbol, timeframe = params.data_key()
    strategy = params.run_strategy()
    commission = strategy.costs.commission if params.commission is None else params.commission
    slippage = strategy.costs.slippage if params.slippage is None else params.slippage
    combos = params.combinations

    with ctx.phase("data_loading", span_prefix="sweep_chunk") as span:
        ctx.progress(1, message=f"loading {symbol} {timeframe}", items_total=len(combos))
        space = search_space(params)
        warmup = max(space.apply(strategy, c.params).warmup_bars() for c in combos)
        bars = data_store(ctx.data_home).load(
            symbol, timeframe, params.start, params.end, warmup_bars=warmup
        )
        data = prepare_data(bars, params.start, params.end)
        span.set_attribute("sweep.combinations", len(combos))
        span.set_attribute("backtest.rows", len(bars))
    ctx.check_cancelled()

    with ctx.phase("strategy_init", span_prefix="sweep_chunk"):
        strategies = [space.apply(strategy, c.params) for c in combos]
    ctx.check_cancelled()

    rows: list[dict[str, Any]] = []
    with ctx.phase("evaluation", span_prefix="sweep_chunk") as span:
        for i, (combo, variant) in enumerate(zip(combos, strategies, strict=True)):
            if ctx.cancelled:
                raise JobCancelled(ctx.cancel_reason or "cancelled")
            target = prepare_strategy(variant, data)
            sim = simulate(
                variant, data, target, capital=params.capital, commission=commission,
                slippage=slippage,
            )  # fmt: skip
            result = build_result(
                variant, data, sim, capital=params.capital, commission=commission,
                slippage=slippage,
            )  # fmt: skip
            extra: dict[str, Any] = {}
            if params.return_blocks:
                extra["block_returns"] = block_returns(
                    result.equity_curve.to_numpy(), params.capital, params.return_blocks
                )
            if params.keep_equity:
                extra["equity"] = thinned_equity(result.equity_curve)
            rows.append(
                {
                    "key": combo.key,
                    "index": combo.index,
                    "params": combo.params,
                    "statistics": result.statistics.to_dict(),
                    "stage": params.stage,
                    "window": params.window,
                    "extra": extra or None,
                }
            )
            ctx.metrics.bars_simulated(data.window_end - data.window_start)
            ctx.progress(
                5 + 90 * (i + 1) / len(combos), message=f"{i + 1}/{len(combos)} combinations",
                items_done=i + 1, items_total=len(combos),
            )  # fmt: skip
        span.set_attribute("sweep.evaluated", len(rows))

    with ctx.phase("results", span_prefix="sweep_chunk"):
        ctx.progress(99, message=f"{len(rows)} results")
    return {"results": rows, "bars": data.window_end - data.window_start}
