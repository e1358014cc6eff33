"""Training rows: fuzzy memberships as features, forward-return labels, a chronological split.

Rows stay in time order. Between train | validation | test, ``label_horizon`` rows are left
out (a purge gap), so no label's look-ahead window reaches into the next part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.data.window import prepare_data
from ktrdr.engine.errors import DataValidationError, StrategyError
from ktrdr.engine.features import compute_features, membership_matrix
from ktrdr.engine.strategy.schema import Strategy
from ktrdr.engine.training.cv import uniqueness_weights
from ktrdr.engine.training.labels import NO_LABEL, LabelArray, class_counts, make_labels

# Fewer rows than this in any part makes losses and accuracies mostly noise.
MIN_SPLIT_ROWS = 20
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TrainingData:
    """Feature rows (float32) with their labels (int64, see ``labels``) in time order.

    ``train``, ``validation`` and ``test`` slice the rows; the rows between them are the
    purge gaps and belong to no part.
    """

    X: npt.NDArray[np.float32]
    y: LabelArray
    timestamps: pd.DatetimeIndex
    feature_names: list[str]
    train: slice
    validation: slice
    test: slice
    label_horizon: int  # the purge gap: the longest look-ahead of any label, in rows
    label_threshold: float
    sample_weight: npt.NDArray[np.float32]

    def part(self, split: str) -> slice:
        """The slice of ``split`` (one of SPLITS)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        part: slice = getattr(self, split)
        return part

    @property
    def label_counts(self) -> dict[str, dict[str, int]]:
        """Labels per class name in each split."""
        return {s: class_counts(self.y[self.part(s)]) for s in SPLITS}

    def date_ranges(self) -> dict[str, dict[str, str | int]]:
        """First and last timestamp (UTC ISO) and row count of each split."""
        out: dict[str, dict[str, str | int]] = {}
        for s in SPLITS:
            stamps = self.timestamps[self.part(s)]
            out[s] = {
                "start": stamps[0].isoformat(),
                "end": stamps[-1].isoformat(),
                "rows": len(stamps),
            }
        return out


def chronological_split(
    n_rows: int, validation_fraction: float, test_fraction: float, gap: int
) -> tuple[slice, slice, slice]:
    """Train | gap | validation | gap | test over ``n_rows`` rows in time order; the
    fractions are of the rows left after the two gaps."""
    usable = max(n_rows - 2 * gap, 0)
    n_test = round(usable * test_fraction)
    n_val = round(usable * validation_fraction)
    n_train = usable - n_val - n_test
    val_start = n_train + gap
    test_start = val_start + n_val + gap
    return (
        slice(0, n_train),
        slice(val_start, val_start + n_val),
        slice(test_start, test_start + n_test),
    )


def prepare_training_data(
    strategy: Strategy,
    bars: pd.DataFrame,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> TrainingData:
    """Features and labels for the bars in [start, end]; earlier bars only warm the
    indicators up (as in a backtest). Uses ``strategy.training`` for labels and split."""
    if not strategy.fuzzy_sets:
        raise StrategyError(
            [
                f"strategy {strategy.name!r} has no fuzzy_sets, and a model's features are the "
                "fuzzy memberships; define at least one fuzzy variable with sets under fuzzy_sets"
            ]
        )
    cfg = strategy.training
    data = prepare_data(bars, start, end)
    names, matrix = membership_matrix(strategy, compute_features(strategy, data.bars))
    window = slice(data.window_start, data.window_end)
    labels, label_end = make_labels(cfg, data.window["close"].to_numpy(dtype=float))
    # The last window bars have no label (their look-ahead runs past the data); drop them
    # with the feature rows, and rows whose features are still warming up.
    X = matrix[window][: len(labels)]
    stamps = data.window.index[: len(labels)]
    complete = ~np.isnan(X).any(axis=1) & (labels != NO_LABEL)
    bars = np.flatnonzero(complete)
    X, y, stamps, label_end = X[complete], labels[complete], stamps[complete], label_end[complete]
    # Purge gap: the longest look-ahead of any label (label_horizon for forward labels).
    gap = int((label_end - bars).max()) if len(bars) else cfg.label_horizon
    train, validation, test = chronological_split(
        len(X), cfg.validation_fraction, cfg.test_fraction, gap
    )
    smallest = min(p.stop - p.start for p in (train, validation, test))
    if smallest < MIN_SPLIT_ROWS:
        raise DataValidationError(
            [_too_few_rows(len(X), data.window_end - data.window_start, len(labels), strategy)],
            source="training data",
        )
    weights = (
        uniqueness_weights(bars, label_end)
        if cfg.sample_weights == "uniqueness"
        else np.ones(len(y))
    )
    return TrainingData(
        X=np.ascontiguousarray(X, dtype=np.float32),
        y=y,
        timestamps=pd.DatetimeIndex(stamps),
        feature_names=names,
        train=train,
        validation=validation,
        test=test,
        label_horizon=gap,
        label_threshold=cfg.label_threshold,
        sample_weight=weights.astype(np.float32),
    )


def _too_few_rows(rows: int, window_bars: int, labelled: int, strategy: Strategy) -> str:
    cfg = strategy.training
    gap = cfg.label_horizon
    smallest_fraction = min(
        cfg.validation_fraction, cfg.test_fraction, 1 - cfg.validation_fraction - cfg.test_fraction
    )
    needed = 2 * gap + math.ceil(MIN_SPLIT_ROWS / smallest_fraction)
    return (
        f"only {rows} usable rows: {window_bars} bars in the window, minus the last {gap} "
        f"(no label {gap} bars ahead) leaves {labelled}, minus {labelled - rows} with "
        f"incomplete features (indicator warm-up); about {needed} are needed for at least "
        f"{MIN_SPLIT_ROWS} rows in each of train/validation/test (fractions "
        f"{1 - cfg.validation_fraction - cfg.test_fraction:g}/{cfg.validation_fraction:g}/"
        f"{cfg.test_fraction:g}) plus two purge gaps of {gap} rows; load more bars "
        f"(at least {strategy.warmup_bars()} of them before start warm the indicators up) "
        "or lower training.label_horizon"
    )
