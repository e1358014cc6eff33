"""Training rows from several symbols: each symbol split on its own, then stacked.

Every symbol gets the single-symbol treatment of ``prepare_training_data``: its own
indicators, labels and chronological train | gap | validation | gap | test split with
purge gaps of the label look-ahead. The stacked data then holds all symbols' train rows,
then all validation rows, then all test rows (each part in time order, symbols
interleaved), so ``TrainingData``'s parts stay contiguous slices and no row of a
symbol's validation or test window is ever a training row. The purge gaps are left out.

Sequence models (lstm/gru) read the rows before each row as its history; in stacked
rows those belong to another symbol or another part, so only the mlp can be trained on
several symbols (``ktrdr.engine.stacking`` says so before anything is queued).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.stacking import stacking_problem
from ktrdr.engine.strategy.schema import Strategy
from ktrdr.engine.training.dataset import SPLITS, TrainingData, prepare_training_data


@dataclass(frozen=True)
class StackedTrainingData:
    """``data``: the stacked rows; ``row_symbol[i]``: index into ``symbols`` of row i."""

    data: TrainingData
    symbols: list[str]
    row_symbol: npt.NDArray[np.int64]
    per_symbol: dict[str, TrainingData]

    def date_ranges(self) -> dict[str, dict[str, dict[str, str | int]]]:
        """Each symbol's own split: first and last timestamp and rows of each part."""
        return {s: d.date_ranges() for s, d in self.per_symbol.items()}


def prepare_stacked_training_data(
    strategy: Strategy,
    bars_by_symbol: dict[str, pd.DataFrame],
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> StackedTrainingData:
    """Features and labels of every symbol's bars in [start, end], split per symbol."""
    problem = stacking_problem(strategy, len(bars_by_symbol))
    if problem:
        raise DataValidationError([problem], source="training data")
    per_symbol = {}
    for symbol, bars in bars_by_symbol.items():
        try:
            per_symbol[symbol] = prepare_training_data(strategy, bars, start, end)
        except DataValidationError as exc:
            raise DataValidationError(
                [f"{symbol}: {p}" for p in exc.problems], source="training data"
            ) from None
    return stack(per_symbol)


def stack(per_symbol: dict[str, TrainingData]) -> StackedTrainingData:
    """All symbols' train rows, then validation rows, then test rows (see the module)."""
    symbols = list(per_symbol)
    first = per_symbol[symbols[0]]
    names = first.feature_names
    for symbol, d in per_symbol.items():
        if d.feature_names != names:
            raise DataValidationError(
                [f"{symbol} gives features {d.feature_names}, {symbols[0]} gives {names}"]
            )
    columns: dict[str, list[npt.NDArray[np.generic]]] = {"X": [], "y": [], "w": [], "k": []}
    times: list[pd.DatetimeIndex] = []
    bounds, at = {}, 0
    for split in SPLITS:
        parts = [(k, d, d.part(split)) for k, d in enumerate(per_symbol.values())]
        stamps = parts[0][1].timestamps[:0].append([d.timestamps[p] for _, d, p in parts])
        order = np.argsort(stamps.asi8, kind="stable")  # time order; at equal times, symbols'
        times.append(stamps[order])
        columns["X"].append(np.concatenate([d.X[p] for _, d, p in parts])[order])
        columns["y"].append(np.concatenate([d.y[p] for _, d, p in parts])[order])
        columns["w"].append(np.concatenate([d.sample_weight[p] for _, d, p in parts])[order])
        owner = [np.full(p.stop - p.start, k, dtype=np.int64) for k, _, p in parts]
        columns["k"].append(np.concatenate(owner)[order])
        bounds[split] = slice(at, at + len(order))
        at += len(order)
    joined = {key: np.concatenate(values) for key, values in columns.items()}
    data = replace(
        first,
        X=np.ascontiguousarray(joined["X"], dtype=np.float32),
        y=joined["y"].astype(first.y.dtype),
        timestamps=times[0].append(times[1:]),
        train=bounds["train"],
        validation=bounds["validation"],
        test=bounds["test"],
        label_horizon=max(d.label_horizon for d in per_symbol.values()),
        sample_weight=joined["w"].astype(np.float32),
    )
    return StackedTrainingData(data, symbols, joined["k"], per_symbol)


def training_rows(
    strategy: Strategy,
    bars_by_symbol: dict[str, pd.DataFrame],
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> tuple[TrainingData, StackedTrainingData | None]:
    """The rows a training run learns from: one symbol's as they always were, several
    symbols' stacked (then also the stacking, for per-symbol figures)."""
    if len(bars_by_symbol) == 1:
        (bars,) = bars_by_symbol.values()
        return prepare_training_data(strategy, bars, start, end), None
    stacked = prepare_stacked_training_data(strategy, bars_by_symbol, start, end)
    return stacked.data, stacked


def per_symbol_summary(
    stacked: StackedTrainingData, predicted: npt.NDArray[np.int64]
) -> dict[str, dict[str, object]]:
    """Each symbol's split (dates and rows) and its accuracy on its own test rows;
    ``predicted``: the model's class for every stacked test row."""
    data = stacked.data
    owner = stacked.row_symbol[data.test]
    right = predicted == data.y[data.test]
    out: dict[str, dict[str, object]] = {}
    for k, symbol in enumerate(stacked.symbols):
        mine = owner == k
        out[symbol] = {
            "date_ranges": stacked.per_symbol[symbol].date_ranges(),
            "test_accuracy": float(right[mine].mean()) if mine.any() else 0.0,
        }
    return out
