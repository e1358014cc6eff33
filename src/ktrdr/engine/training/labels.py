"""Labels from future price movement: what the close did ``horizon`` bars later.

Classes are ints in ``MODEL_CLASSES`` order: 0 = SELL (fell by more than the threshold),
1 = HOLD (moved less than the threshold either way), 2 = BUY (rose by more).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ktrdr.engine.strategy.schema import MODEL_CLASSES

SELL_CLASS, HOLD_CLASS, BUY_CLASS = (MODEL_CLASSES.index(c) for c in ("SELL", "HOLD", "BUY"))
CLASS_NAMES: tuple[str, ...] = MODEL_CLASSES
LabelArray = npt.NDArray[np.int64]


def forward_labels(close: npt.ArrayLike, horizon: int, threshold: float) -> LabelArray:
    """Class of the forward return ``close[t + horizon] / close[t] - 1`` for every bar t that
    has one; the last ``horizon`` bars have no future close, so the result is that much
    shorter than ``close``."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 bar, got {horizon}")
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    prices = np.asarray(close, dtype=float)
    if len(prices) <= horizon:
        return np.empty(0, dtype=np.int64)
    forward = prices[horizon:] / prices[:-horizon] - 1.0
    labels = np.full(len(forward), HOLD_CLASS, dtype=np.int64)
    labels[forward > threshold] = BUY_CLASS
    labels[forward < -threshold] = SELL_CLASS
    return labels


def class_counts(labels: LabelArray) -> dict[str, int]:
    """How many labels fall in each class, by class name (zero counts included)."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    return {name: int(counts[i]) for i, name in enumerate(CLASS_NAMES)}
