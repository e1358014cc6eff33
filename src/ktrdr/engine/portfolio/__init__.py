"""One strategy over several symbols: a universe of independent runs, or a portfolio that
shares one cash account.

- ``run_universe`` backtests each symbol on its own (capital split equally), in parallel
  threads, and adds the equity curves up (``universe``).
- ``run_portfolio`` trades all symbols from one account with per-symbol weights and a
  rebalancing rule (``book``, ``kernel``, ``ktrdr.engine.rebalance``).

Both come in steps a job runner can wrap in phases: ``align_symbols`` →
``portfolio_targets`` → ``simulate_portfolio``; per-symbol ``run_backtest`` →
``combine_universe``.
"""

from ktrdr.engine.portfolio.book import (
    PortfolioResult,
    align_symbols,
    check_weights,
    portfolio_targets,
    run_portfolio,
    simulate_portfolio,
)
from ktrdr.engine.portfolio.universe import (
    UniverseResult,
    combine_universe,
    run_universe,
    symbol_strategy,
)

__all__ = [
    "PortfolioResult",
    "UniverseResult",
    "align_symbols",
    "check_weights",
    "combine_universe",
    "portfolio_targets",
    "run_portfolio",
    "run_universe",
    "simulate_portfolio",
    "symbol_strategy",
]
