"""Training on several symbols: each symbol split chronologically on its own, then stacked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.strategy import load_strategy
from ktrdr.engine.strategy.paths import apply_overrides
from ktrdr.engine.training import SPLITS, prepare_training_data
from ktrdr.engine.training.stacked import prepare_stacked_training_data, training_rows

STRATEGY = load_strategy("fuzzy_nn")


@pytest.fixture(scope="module")
def bars() -> dict[str, pd.DataFrame]:
    # Different lengths: the symbols' splits fall on different dates.
    return {
        "AAA": generate_synthetic_bars("1h", 1500, seed=1),
        "BBB": generate_synthetic_bars("1h", 2100, seed=2),
        "CCC": generate_synthetic_bars("1h", 1800, seed=3, start="2020-01-20"),
    }


def test_each_symbols_rows_are_its_own_chronological_split(
    bars: dict[str, pd.DataFrame],
) -> None:
    stacked = prepare_stacked_training_data(STRATEGY, bars)
    data = stacked.data
    for k, symbol in enumerate(stacked.symbols):
        alone = prepare_training_data(STRATEGY, bars[symbol])
        for split in SPLITS:
            part = data.part(split)
            mine = np.flatnonzero(stacked.row_symbol[part] == k) + part.start
            own = alone.part(split)
            # Exactly the rows (features, labels, times) the symbol's own split gives.
            np.testing.assert_array_equal(data.X[mine], alone.X[own])
            np.testing.assert_array_equal(data.y[mine], alone.y[own])
            assert list(data.timestamps[mine]) == list(alone.timestamps[own])
        # Train ends before validation starts, which ends before test, by the purge gap.
        ranges = stacked.per_symbol[symbol].date_ranges()
        assert ranges == alone.date_ranges()
        gap = pd.Timedelta(hours=alone.label_horizon)
        assert pd.Timestamp(ranges["train"]["end"]) + gap < pd.Timestamp(
            ranges["validation"]["start"]
        )
        assert pd.Timestamp(ranges["validation"]["end"]) + gap < pd.Timestamp(
            ranges["test"]["start"]
        )
    # No (symbol, time) of a validation or test row is ever a training row.
    keys = list(zip(stacked.row_symbol.tolist(), data.timestamps.asi8.tolist(), strict=True))
    train = set(keys[data.train])
    held_out = set(keys[data.validation]) | set(keys[data.test])
    assert not train & held_out
    in_parts = [
        d.part(split).stop - d.part(split).start
        for d in stacked.per_symbol.values()
        for split in SPLITS
    ]
    assert len(data.y) == sum(in_parts), "every symbol's rows, the purge gaps left out"
    gaps = sum(len(d.y) for d in stacked.per_symbol.values()) - sum(in_parts)
    assert gaps == 2 * 12 * len(bars), "two purge gaps of label_horizon rows per symbol"
    for split in SPLITS:  # each part in time order across symbols
        assert data.timestamps[data.part(split)].is_monotonic_increasing


def test_one_symbol_trains_as_it_always_did(bars: dict[str, pd.DataFrame]) -> None:
    data, stacked = training_rows(STRATEGY, {"AAA": bars["AAA"]})
    alone = prepare_training_data(STRATEGY, bars["AAA"])
    assert stacked is None
    np.testing.assert_array_equal(data.X, alone.X)
    assert (data.train, data.validation, data.test) == (alone.train, alone.validation, alone.test)


def test_sequence_models_are_refused_for_stacked_symbols(bars: dict[str, pd.DataFrame]) -> None:
    lstm = apply_overrides(STRATEGY, {"training.model": "lstm"})
    with pytest.raises(DataValidationError, match=r"training\.model lstm learns from sequences"):
        prepare_stacked_training_data(lstm, bars)


def test_a_symbol_with_too_few_bars_is_named(bars: dict[str, pd.DataFrame]) -> None:
    short = {**bars, "TINY": generate_synthetic_bars("1h", 80, seed=9)}
    with pytest.raises(DataValidationError, match="TINY: only"):
        prepare_stacked_training_data(STRATEGY, short)
