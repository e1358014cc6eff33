"""What every backtest job settles before it touches data: the strategy as it will run
(its model version pinned), the model store it reads, and the costs in force.

Single-symbol and multi-symbol backtests both start here, and both end by noting the
model they traded on (and any in-sample warning) in their result the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ktrdr.engine.model_choice import ModelSummary, in_sample_warning, pin_model_version
from ktrdr.engine.strategy import Strategy
from ktrdr.engine.training import ModelStore
from ktrdr.jobs.backtest import BacktestParams
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.stores import chosen_model, model_store


@dataclass(frozen=True)
class BacktestSetup:
    strategy: Strategy
    models: ModelStore
    model: ModelSummary | None  # None: a rule-based strategy
    commission: float
    slippage: float


def backtest_setup(ctx: JobContext, params: BacktestParams) -> BacktestSetup:
    strategy = params.run_strategy()
    models = model_store(ctx, strategy.model_name if strategy.decisions.model else None)
    # The model version is fixed once (the backend's choice at submission when it made
    # one) so a model saved meanwhile cannot change what this run trades on.
    chosen = chosen_model(strategy, params, models)
    if chosen is not None:
        strategy = pin_model_version(strategy, chosen.version)
    costs = strategy.costs
    return BacktestSetup(
        strategy=strategy,
        models=models,
        model=chosen,
        commission=costs.commission if params.commission is None else params.commission,
        slippage=costs.slippage if params.slippage is None else params.slippage,
    )


def note_model(
    payload: dict[str, Any], model: ModelSummary | None, windows: Iterable[tuple[str, pd.Index]]
) -> None:
    """Record the model traded on and warn for each symbol whose window it was trained on."""
    if model is None:
        return
    payload["model"] = model.to_dict()
    for symbol, window in windows:
        warning = in_sample_warning(model, symbol, window[0], window[-1])
        if warning:
            payload["warnings"].append(warning)
