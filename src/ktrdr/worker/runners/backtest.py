"""The backtest job: data_loading → strategy_init → simulation → results, one span each.

The trades and the whole equity curve are written as columnar artifacts before the job
returns; the report to the backend carries the statistics and the artifacts' keys and
checksums only, so a result is never referenced before its tables are complete.
"""

from __future__ import annotations

from typing import Any

from ktrdr.artifacts.encoding import arrow_table
from ktrdr.engine.backtest import build_result, prepare_data, prepare_strategy, simulate
from ktrdr.engine.backtest.debug import debug_frame, frame_to_payload
from ktrdr.engine.strategy.paths import strategy_document
from ktrdr.jobs.backtest import BacktestParams
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.run_setup import backtest_setup, note_model
from ktrdr.worker.runners.stores import bars_for, write_tables
from ktrdr.worker.runners.symbols import MAX_STORED_EQUITY_POINTS, PHASES, run_symbols_job

__all__ = ["MAX_STORED_EQUITY_POINTS", "PHASES", "run_backtest_job"]


def run_backtest_job(ctx: JobContext) -> dict[str, Any]:
    params = BacktestParams.model_validate(ctx.params)
    if params.symbols is not None:
        return run_symbols_job(ctx, params)
    symbol, timeframe = params.data_key()
    setup = backtest_setup(ctx, params)
    strategy, models, commission, slippage = (
        setup.strategy, setup.models, setup.commission, setup.slippage
    )  # fmt: skip

    with ctx.phase("data_loading", span_prefix="backtest") as span:
        ctx.progress(2, message=f"loading {symbol} {timeframe}")
        bars = bars_for(ctx, symbol, timeframe).load(
            symbol, timeframe, params.start, params.end, warmup_bars=strategy.warmup_bars()
        )
        data = prepare_data(bars, params.start, params.end)
        window_bars = data.window_end - data.window_start
        span.set_attribute("backtest.symbol", symbol)
        span.set_attribute("backtest.timeframe", timeframe)
        span.set_attribute("backtest.rows", len(bars))
        span.set_attribute("backtest.warmup_rows", data.window_start)
    ctx.check_cancelled()

    with ctx.phase("strategy_init", span_prefix="backtest") as span:
        ctx.progress(15, message=f"computing {len(strategy.indicators)} indicators")
        target = prepare_strategy(strategy, data, models=models)
        span.set_attribute("backtest.strategy", strategy.name)
        span.set_attribute("backtest.indicators", len(strategy.indicators))
    ctx.check_cancelled()

    with ctx.phase("simulation", span_prefix="backtest") as span:
        ctx.progress(50, message=f"simulating {window_bars} bars", items_total=window_bars)
        sim = simulate(
            strategy, data, target, capital=params.capital, commission=commission,
            slippage=slippage,
        )  # fmt: skip
        ctx.metrics.bars_simulated(window_bars)
        span.set_attribute("backtest.bars", window_bars)
    ctx.check_cancelled()

    with ctx.phase("results", span_prefix="backtest") as span:
        ctx.progress(85, message="computing statistics", items_done=window_bars)
        result = build_result(
            strategy, data, sim, capital=params.capital, commission=commission,
            slippage=slippage,
        )  # fmt: skip
        span.set_attribute("backtest.trades", len(result.trade_table))
        tables = {
            "trades": (arrow_table(result.trade_table.columns()), {}),
            "equity_curve": (
                arrow_table(result.equity_columns()),
                {"preview_points": MAX_STORED_EQUITY_POINTS},
            ),
        }
        artifacts = write_tables(ctx, tables)
    payload: dict[str, Any] = {**result.summary(), "capital": params.capital}
    payload["artifacts"] = artifacts
    if params.debug_frames:
        frame = debug_frame(strategy, data, sim, models=models)
        payload["debug_frame"] = frame_to_payload(frame)
    payload["warnings"] = []
    # The strategy as run (--set overrides applied, defaults filled in): kept with the run.
    payload["effective_strategy"] = strategy_document(strategy)
    note_model(payload, setup.model, [(symbol, data.window.index)])
    return payload
