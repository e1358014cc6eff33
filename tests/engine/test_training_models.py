"""LSTM/GRU models and the label methods through the training pipeline (needs PyTorch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ktrdr.engine.backtest import prepare_data, prepare_strategy
from ktrdr.engine.training import ModelStore, evaluate, fit_model, prepare_training_data
from ktrdr.engine.training.labels import triple_barrier_labels, zigzag_labels
from tests.engine.test_training import wave_bars, wave_strategy

pytest.importorskip("torch")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_sequence_models_train_deterministically_and_backtest(kind: str, tmp_path: Path) -> None:
    import torch

    # Any class above a third is a decision: the backtest must trade on the model.
    strategy = wave_strategy(
        0.34, model=kind, sequence_length=8, hidden_layers=[8], epochs=4, batch_size=128
    )
    data = prepare_training_data(strategy, wave_bars(900))
    first, second = fit_model(data, strategy.training), fit_model(data, strategy.training)
    for a, b in zip(
        first.module.state_dict().values(), second.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    metrics = evaluate(first, data)
    # The wave is learnable from a few bars of momentum: better than the commonest class.
    assert metrics["accuracy"] > metrics["baseline_accuracy"]
    store = ModelStore(tmp_path)
    info = store.save(first, strategy=strategy, symbol="TEST", timeframe="1h",
                      metrics=metrics, data=data)  # fmt: skip
    assert info.metadata["model"] == kind and info.metadata["sequence_length"] == 8
    loaded = store.load(info.name)
    proba = loaded.predict_proba(data.X)
    np.testing.assert_array_equal(proba, first.predict_proba(data.X))
    assert np.isnan(proba[:7]).all() and not np.isnan(proba[7:]).any()
    target = prepare_strategy(strategy, prepare_data(wave_bars(900)), store)
    assert (target != 0).any()


def test_triple_barrier_labels_reach_the_training_rows() -> None:
    strategy = wave_strategy(labels="triple_barrier", barrier_take_profit=0.01,
                             barrier_stop_loss=0.01, barrier_max_bars=6,
                             barrier_volatility_window=None)  # fmt: skip
    bars = wave_bars(900)
    data = prepare_training_data(strategy, bars)
    labels, end = triple_barrier_labels(bars["close"].to_numpy(), take_profit=0.01,
                                        stop_loss=0.01, max_bars=6)  # fmt: skip
    first = bars.index.get_loc(data.timestamps[0])
    rows = [bars.index.get_loc(ts) for ts in data.timestamps]
    np.testing.assert_array_equal(data.y, labels[rows])
    # The purge gap is the longest look-ahead: no training label reaches validation.
    assert data.label_horizon == int((end - np.arange(len(end)))[first:].max())
    last_train = rows[data.train.stop - 1]
    assert end[last_train] < rows[data.validation.start]


def test_zigzag_labels_and_uniqueness_weights_reach_the_training_rows() -> None:
    strategy = wave_strategy(labels="zigzag", zigzag_threshold=0.03, sample_weights="uniqueness")
    bars = wave_bars(900)
    data = prepare_training_data(strategy, bars)
    labels, _ = zigzag_labels(bars["close"].to_numpy(), 0.03)
    rows = [bars.index.get_loc(ts) for ts in data.timestamps]
    np.testing.assert_array_equal(data.y, labels[rows])
    assert data.sample_weight.mean() == pytest.approx(1.0, rel=1e-6)
    assert data.sample_weight.std() > 0
    fitted = fit_model(data, strategy.training.model_copy(update={"epochs": 2}))
    assert fitted.epochs_run == 2
