"""The backtest kernels loaded before the first job asks for them.

Numba keeps the compiled kernels on disk (``cache=True``), but a process still pays for
loading and linking each one on its first call: about 0.35 s of CPU for the fill,
statistics and indicator kernels. Paid inside a sweep's first chunk, it made that chunk a
third slower than the same chunk on a worker that had run one before (measured on 1M
bars: 0.48 s against 0.36 s for 13 combinations), so of two workers sharing a sweep the
fresh one ended last. A backtesting worker therefore runs a tiny batch and a tiny
backtest on synthetic bars in a background thread as it starts: registration is not
delayed, and a job that arrives meanwhile waits on numba's own lock for the same loads
instead of doing them again.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

_FAST = "indicators.sma_fast.params.period"
_SLOW = "indicators.sma_slow.params.period"


def warm_backtest_kernels() -> float:
    """Run the batch and the single-backtest paths once on 600 synthetic bars; seconds."""
    from ktrdr.engine.backtest import run_backtest
    from ktrdr.engine.campaigns import evaluate_batch
    from ktrdr.engine.data.synthetic import generate_synthetic_bars
    from ktrdr.engine.data.window import prepare_data
    from ktrdr.engine.strategy import validate_strategy_text
    from ktrdr.engine.strategy.loader import builtin_strategy_text

    began = time.perf_counter()
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    bars = generate_synthetic_bars("1h", 600, seed=0)
    combos = [{_FAST: 5, _SLOW: 20}, {_FAST: 10, _SLOW: 30}]
    evaluate_batch(strategy, prepare_data(bars), combos, capital=10_000.0, threads=1)
    run_backtest(strategy, bars, capital=10_000.0)
    return time.perf_counter() - began


def start_warming() -> threading.Thread:
    """``warm_backtest_kernels`` in a daemon thread; a failure is logged, never raised
    (the first job then loads the kernels itself, as it always could)."""

    def warm() -> None:
        try:
            log.debug("backtest kernels loaded in %.2fs", warm_backtest_kernels())
        except Exception:
            log.warning("could not load the backtest kernels ahead of the first job",
                        exc_info=True)  # fmt: skip

    thread = threading.Thread(target=warm, name="warm-kernels", daemon=True)
    thread.start()
    return thread
