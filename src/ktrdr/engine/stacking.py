"""Which strategies can be trained on several symbols' stacked rows: light (the schema
only), so the backend refuses a run before queueing with the rule the trainer applies."""

from __future__ import annotations

from ktrdr.engine.strategy.schema import Strategy


def stacking_problem(strategy: Strategy, symbols: int) -> str | None:
    """Why ``strategy`` cannot be trained on ``symbols`` stacked symbols, or None."""
    model = strategy.training.model
    if symbols > 1 and strategy.training.validation.method == "purged_kfold":
        return (
            "training.validation.method purged_kfold folds one series in time order; "
            "stacked symbols are split per symbol instead: use method chronological for "
            "several symbols, or run the k-fold on one symbol"
        )
    if symbols > 1 and model != "mlp":
        return (
            f"training.model {model} learns from sequences of consecutive rows, which in "
            "stacked symbols would run from one symbol into another; train an mlp on "
            "several symbols (training.model: mlp) or a sequence model on one symbol"
        )
    return None
