"""Test-split metrics of a fitted model, as plain JSON-serialisable values."""

from __future__ import annotations

from typing import Any

import numpy as np

from ktrdr.engine.training.dataset import TrainingData
from ktrdr.engine.training.fit import FittedModel
from ktrdr.engine.training.labels import CLASS_NAMES


def evaluate(fitted: FittedModel, data: TrainingData) -> dict[str, Any]:
    """Accuracy on ``data.test`` against the majority-class baseline, per-class precision,
    recall and support, the confusion matrix and each split's label distribution.

    The baseline always predicts the test split's most common class: the best any constant
    prediction can score there, so a model that beats it has learnt something.
    """
    y_true = data.y[data.test]
    # Predicted on every row, then the test part: a sequence model needs the rows before it.
    y_pred = fitted.predict_proba(data.X)[data.test].argmax(axis=1)
    k = len(CLASS_NAMES)
    # confusion[i, j]: rows truly of class i predicted as class j.
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    per_class = {
        name: {
            "precision": _ratio(confusion[i, i], predicted[i]),
            "recall": _ratio(confusion[i, i], support[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(CLASS_NAMES)
    }
    return {
        "test_rows": len(y_true),
        "accuracy": _ratio(np.trace(confusion), len(y_true)),
        "baseline_accuracy": _ratio(support.max(), len(y_true)),
        "majority_class": CLASS_NAMES[int(support.argmax())],
        "per_class": per_class,
        "confusion_matrix": {
            "classes": list(CLASS_NAMES),
            "rows_true_columns_predicted": confusion.tolist(),
        },
        "label_distribution": data.label_counts,
        "epochs_run": fitted.epochs_run,
        "best_epoch": fitted.best_epoch,
    }


def _ratio(numerator: float | np.integer, denominator: float | np.integer) -> float:
    """numerator / denominator, 0.0 when nothing was counted (keeps the JSON free of NaN)."""
    return float(numerator) / float(denominator) if denominator else 0.0
