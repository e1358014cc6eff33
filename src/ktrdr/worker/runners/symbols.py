"""Backtests over several symbols as one operation: a universe (the strategy on each
symbol on its own share of the capital) or a portfolio (one cash account, weights and a
rebalancing rule). The phases of single backtests, each over all symbols; the symbols
run in a thread pool of the worker's ``backtest_threads`` (``KTRDR_BACKTEST_THREADS``:
the indicator and fill kernels release the GIL).

Results are lean as single backtests are: the record holds the book's statistics and
references; the per-symbol table, the trades of all symbols, the book's equity (and for
a portfolio its cash and positions) are artifacts (``/results/per_symbol`` and so on).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ktrdr.engine.backtest import build_result, prepare_data, prepare_strategy, simulate
from ktrdr.engine.backtest.result import BacktestResult
from ktrdr.engine.portfolio import (
    align_symbols,
    combine_universe,
    simulate_portfolio,
    symbol_strategy,
)
from ktrdr.engine.portfolio.stats import no_trades
from ktrdr.engine.strategy.paths import strategy_document
from ktrdr.jobs.backtest import BacktestParams
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.run_setup import backtest_setup, note_model
from ktrdr.worker.runners.stores import Tables, bars_for, write_tables

PHASES = ("data_loading", "strategy_init", "simulation", "results")
# GET /operations/{id}/results shows the equity curve thinned to this many points (the
# artifact holds every bar; /results/equity serves it whole).
MAX_STORED_EQUITY_POINTS = 5_000


def run_symbols_job(ctx: JobContext, params: BacktestParams) -> dict[str, Any]:
    assert params.symbols is not None and params.timeframe is not None
    symbols, timeframe = params.symbols, params.timeframe
    setup = backtest_setup(ctx, params)
    strategy, models, commission, slippage = (
        setup.strategy, setup.models, setup.commission, setup.slippage
    )  # fmt: skip
    threads = min(ctx.threads, len(symbols))
    per_symbol = {s: symbol_strategy(strategy, s) for s in symbols}

    with ThreadPoolExecutor(threads, thread_name_prefix="symbol") as pool:
        with ctx.phase("data_loading", span_prefix="backtest") as span:
            ctx.progress(2, message=f"loading {len(symbols)} symbols {timeframe}")

            def load(symbol: str) -> pd.DataFrame:
                return bars_for(ctx, symbol, timeframe).load(
                    symbol, timeframe, params.start, params.end,
                    warmup_bars=strategy.warmup_bars(),
                )  # fmt: skip

            bars = dict(zip(symbols, pool.map(load, symbols), strict=True))
            if params.portfolio is not None:
                prepared = align_symbols(bars, params.start, params.end)
            else:
                prepared = {s: prepare_data(b, params.start, params.end) for s, b in bars.items()}
            window_bars = sum(p.window_end - p.window_start for p in prepared.values())
            span.set_attribute("backtest.symbols", len(symbols))
            span.set_attribute("backtest.timeframe", timeframe)
            span.set_attribute("backtest.threads", threads)
        ctx.check_cancelled()

        with ctx.phase("strategy_init", span_prefix="backtest") as span:
            ctx.progress(15, message=f"computing {len(strategy.indicators)} indicators")

            def decide(symbol: str) -> np.ndarray:
                return prepare_strategy(per_symbol[symbol], prepared[symbol], models=models)

            targets = dict(zip(symbols, pool.map(decide, symbols), strict=True))
            span.set_attribute("backtest.strategy", strategy.name)
        ctx.check_cancelled()

        with ctx.phase("simulation", span_prefix="backtest") as span:
            ctx.progress(50, message=f"simulating {window_bars} bars", items_total=window_bars)
            costs = {"commission": commission, "slippage": slippage}
            if params.portfolio is None:
                share = params.capital / len(symbols)

                def run(symbol: str) -> BacktestResult:
                    s, data = per_symbol[symbol], prepared[symbol]
                    sim = simulate(s, data, targets[symbol], capital=share, **costs)
                    return build_result(s, data, sim, capital=share, **costs)

                results = dict(zip(symbols, pool.map(run, symbols), strict=True))
            else:
                spec = params.portfolio
                book = simulate_portfolio(
                    strategy, prepared, targets, weights=spec.weights, rebalance=spec.rebalance,
                    rebalance_every=spec.rebalance_every(), capital=params.capital, **costs,
                )  # fmt: skip
            ctx.metrics.bars_simulated(window_bars)
            span.set_attribute("backtest.bars", window_bars)
        ctx.check_cancelled()

    with ctx.phase("results", span_prefix="backtest"):
        ctx.progress(85, message="computing statistics", items_done=window_bars)
        if params.portfolio is None:
            payload, tables = _universe_payload(strategy, results, params.capital)
        else:
            payload, tables = _portfolio_payload(book, params)
        payload = {
            "kind": params.kind,
            "strategy_name": strategy.name,
            # One line for listings and report titles; `symbols` is the list.
            "symbol": ",".join(symbols),
            "symbols": symbols,
            "timeframe": timeframe,
            "commission": commission,
            "slippage": slippage,
            **payload,
            "capital": params.capital,
            "threads": threads,
        }
        payload["artifacts"] = write_tables(ctx, tables)
    payload["warnings"] = []
    note_model(payload, setup.model, [(s, data.window.index) for s, data in prepared.items()])
    payload["effective_strategy"] = strategy_document(strategy)
    return payload


def _universe_payload(
    strategy: Any, results: dict[str, BacktestResult], capital: float
) -> tuple[dict[str, Any], Tables]:
    book = combine_universe(strategy, results, capital)
    rows = [{"symbol": s, **r.statistics.to_dict()} for s, r in results.items()]
    trades = [
        pa.table({"symbol": np.full(len(r.trade_table), s), **r.trade_table.columns()})
        for s, r in results.items()
    ]
    equity = book.equity_curve
    tables: Tables = {
        "per_symbol": (pa.Table.from_pylist(rows), {}),
        "trades": (pa.concat_tables(trades, promote_options="default"), {}),
        "equity_curve": (
            pa.table({"timestamp": equity.index, "equity": equity.to_numpy()}),
            {"preview_points": MAX_STORED_EQUITY_POINTS},
        ),
    }
    return {"statistics": book.statistics.to_dict()}, tables


def _portfolio_payload(book: Any, params: BacktestParams) -> tuple[dict[str, Any], Tables]:
    spec = params.portfolio
    assert spec is not None
    index = book.equity_curve.index
    positions = {"timestamp": index, **{s: book.units[s].to_numpy() for s in book.units}}
    tables: Tables = {
        "per_symbol": (pa.Table.from_pylist(book.per_symbol()), {}),
        "equity_curve": (
            pa.table(
                {
                    "timestamp": index,
                    "equity": book.equity_curve.to_numpy(),
                    "cash": book.cash.to_numpy(),
                }
            ),
            {"preview_points": MAX_STORED_EQUITY_POINTS},
        ),
        "positions": (pa.table(positions), {}),
        # Rebalances, not round trips: an empty trade list, so every reader of a
        # backtest's trades (report pages, CSV exports) finds one.
        "trades": (pa.table({"symbol": np.array([], dtype=str), **no_trades().columns()}), {}),
    }
    summary = {
        "statistics": book.statistics.to_dict(),
        "portfolio": {
            "weights": book.weights,
            "rebalance": spec.rebalance,
            "every_bars": spec.every_bars,
            "rebalances": book.rebalances,
        },
    }
    return summary, tables
