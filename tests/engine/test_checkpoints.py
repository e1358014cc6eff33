"""Checkpoints: a stopped run resumed from its checkpoint ends bit-for-bit where an
uninterrupted run with the same seed ends; a corrupt checkpoint is skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ktrdr.engine.training import TrainingCancelled, fit_model, prepare_training_data
from ktrdr.engine.training.checkpoint import CheckpointStore
from tests.engine.test_training import wave_bars, wave_strategy

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    strategy = wave_strategy(epochs=9, early_stopping_patience=0, batch_size=128)
    data = prepare_training_data(strategy, wave_bars(900))
    return strategy.training, data, fit_model(data, strategy.training)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(),
                                          strict=True)
    )  # fmt: skip


def _stop_at(epoch: int):  # type: ignore[no-untyped-def]
    seen = {"n": 0}

    def should_stop() -> bool:
        seen["n"] += 1
        return seen["n"] == epoch  # checked before each epoch

    return should_stop


@pytest.mark.parametrize("model", ["mlp", "lstm"])
def test_a_run_resumed_from_its_checkpoint_equals_an_uninterrupted_one(
    tmp_path: Path,
    setup,
    model: str,  # type: ignore[no-untyped-def]
) -> None:
    config, data, _ = setup
    config = config.model_copy(update={"model": model, "sequence_length": 6, "epochs": 7})
    whole = fit_model(data, config)
    store = CheckpointStore(tmp_path / "run")
    with pytest.raises(TrainingCancelled):
        fit_model(data, config, checkpoints=store, checkpoint_every=2, should_stop=_stop_at(5))
    resumed_at: list[int] = []
    seen: list[int] = []
    resumed = fit_model(
        data, config, checkpoints=store, checkpoint_every=2, on_resume=resumed_at.append,
        on_epoch=lambda r: seen.append(r.epoch),
    )  # fmt: skip
    # Cancelled before epoch 5: the checkpoint written then holds epochs 1-4.
    assert resumed_at == [4]
    assert seen == [5, 6, 7]  # no epoch before the checkpoint is run again
    assert _same_weights(resumed.module, whole.module)
    assert [h.val_loss for h in resumed.history] == [h.val_loss for h in whole.history]
    assert resumed.best_epoch == whole.best_epoch


def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(
    tmp_path: Path,
    setup,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    config, data, whole = setup
    store = CheckpointStore(tmp_path / "run", keep=3)
    with pytest.raises(TrainingCancelled):
        fit_model(data, config, checkpoints=store, checkpoint_every=2, should_stop=_stop_at(7))
    files = sorted((tmp_path / "run").glob("epoch-*.pt"))
    assert [f.name for f in files] == ["epoch-000002.pt", "epoch-000004.pt", "epoch-000006.pt"]
    raw = files[-1].read_bytes()
    files[-1].write_bytes(raw[: len(raw) // 2])  # half-written
    resumed_at: list[int] = []
    with caplog.at_level(logging.WARNING, logger="ktrdr.engine.training.checkpoint"):
        resumed = fit_model(
            data, config, checkpoints=store, checkpoint_every=2, on_resume=resumed_at.append
        )
    assert resumed_at == [4]
    assert "epoch-000006.pt" in caplog.text and "does not match" in caplog.text
    assert _same_weights(resumed.module, whole.module)


def test_clear_removes_the_run(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    config, data, _ = setup
    store = CheckpointStore(tmp_path / "run")
    fit_model(data, config, checkpoints=store, checkpoint_every=2)
    assert len(list((tmp_path / "run").glob("epoch-*.pt"))) == 2  # keep=2
    store.clear()
    assert not (tmp_path / "run").exists()
    assert store.latest() is None
