"""Purged k-fold cross-validation of a training configuration (López de Prado ch. 7).

The rows before the test split (train, its purge gap and validation) are cut into
contiguous folds; each fold is the test part of one fit on the other rows, with training
rows whose label window overlaps the fold purged and ``embargo`` rows after it left out.
The held-out test split is never touched, so the final model's test metrics stay clean.

A row's label window is taken as ``[row, row + label_horizon]`` in rows: label_horizon is
the longest look-ahead of any label in bars, and a row is at least one bar after the
previous one, so this window covers the label's own one (the purge errs on the safe side).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ktrdr.engine.strategy.schema import TrainingConfig
from ktrdr.engine.training.cv import purged_kfold
from ktrdr.engine.training.dataset import TrainingData
from ktrdr.engine.training.fit import fit_model
from ktrdr.engine.training.labels import CLASS_NAMES, LabelArray, class_counts


def class_balance(labels: LabelArray) -> dict[str, float]:
    """Share of each class (0..1) among ``labels``, by class name."""
    counts = class_counts(labels)
    total = max(sum(counts.values()), 1)
    return {name: counts[name] / total for name in CLASS_NAMES}


def cross_validate(
    data: TrainingData,
    config: TrainingConfig,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Per-fold metrics and their mean and spread (JSON-ready). ``on_fold(done, folds)``
    is told after each fold; ``should_stop`` is passed on to every fit (a cancel)."""
    settings = config.validation
    n = data.validation.stop
    rows = np.arange(n)
    # Each fold trains for the full budget: early stopping would choose on its test rows.
    fold_config = config.model_copy(update={"early_stopping_patience": 0})
    folds: list[dict[str, Any]] = []
    for k, (train, test) in enumerate(
        purged_kfold(rows, rows + data.label_horizon, settings.folds, settings.embargo), 1
    ):
        fitted = fit_model(data, fold_config, should_stop=should_stop, rows=(train, test))
        last = fitted.history[-1]
        y_test = data.y[test]
        majority = np.bincount(y_test, minlength=len(CLASS_NAMES)).max() / len(y_test)
        # After the fold: its last label window is purged, then the embargo starts.
        after = test[-1] + data.label_horizon + 1
        embargoed = np.count_nonzero((rows >= after) & (rows < after + settings.embargo))
        folds.append(
            {
                "fold": k,
                "test_rows": len(test),
                "train_rows": len(train),
                "purged_rows": n - len(test) - len(train) - int(embargoed),
                "embargoed_rows": int(embargoed),
                "test_start": data.timestamps[test[0]].isoformat(),
                "test_end": data.timestamps[test[-1]].isoformat(),
                "loss": last.val_loss,
                "accuracy": last.val_accuracy,
                "baseline_accuracy": float(majority),
                "class_balance": {
                    "train": class_balance(data.y[train]),
                    "test": class_balance(y_test),
                },
            }
        )
        if on_fold is not None:
            on_fold(k, settings.folds)
    accuracy = np.array([f["accuracy"] for f in folds])
    loss = np.array([f["loss"] for f in folds])
    return {
        "method": settings.method,
        "folds": folds,
        "embargo": settings.embargo,
        "label_window_rows": data.label_horizon,
        "mean_accuracy": float(accuracy.mean()),
        "std_accuracy": float(accuracy.std()),
        "mean_loss": float(loss.mean()),
        "mean_baseline_accuracy": float(np.mean([f["baseline_accuracy"] for f in folds])),
    }
