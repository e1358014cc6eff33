"""Training: forward-return labels, a chronological split, an MLP on the fuzzy memberships,
and a versioned model store a backtest can load from.

PyTorch (the ``ml`` extra) is imported only inside the functions that need it, so this
package imports without it; those functions raise TrainingUnavailable when it is missing.

Typical use::

    data = prepare_training_data(strategy, bars, start, end)
    fitted = fit_model(data, strategy.training, on_epoch=report, should_stop=cancelled)
    metrics = evaluate(fitted, data)
    ModelStore(models_dir).save(fitted, strategy=strategy, symbol=..., timeframe=...,
                                metrics=metrics, data=data)
"""

from ktrdr.engine.errors import ModelNotFoundError, TrainingCancelled, TrainingUnavailable
from ktrdr.engine.training.dataset import (
    MIN_SPLIT_ROWS,
    SPLITS,
    TrainingData,
    chronological_split,
    prepare_training_data,
)
from ktrdr.engine.training.evaluate import evaluate
from ktrdr.engine.training.fit import EpochReport, FittedModel, class_weights, fit_model
from ktrdr.engine.training.labels import (
    BUY_CLASS,
    CLASS_NAMES,
    HOLD_CLASS,
    SELL_CLASS,
    forward_labels,
)
from ktrdr.engine.training.network import TORCH_MISSING, require_torch
from ktrdr.engine.training.store import LoadedModel, ModelInfo, ModelStore, strategy_sha256

__all__ = [
    "BUY_CLASS",
    "CLASS_NAMES",
    "HOLD_CLASS",
    "MIN_SPLIT_ROWS",
    "SELL_CLASS",
    "SPLITS",
    "TORCH_MISSING",
    "EpochReport",
    "FittedModel",
    "LoadedModel",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelStore",
    "TrainingCancelled",
    "TrainingData",
    "TrainingUnavailable",
    "chronological_split",
    "class_weights",
    "evaluate",
    "fit_model",
    "forward_labels",
    "prepare_training_data",
    "require_torch",
    "strategy_sha256",
]
