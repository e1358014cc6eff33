"""Fit the MLP on the training rows, early-stopping on the validation loss.

Deterministic for a given seed on CPU: weights are initialised under ``torch.manual_seed``
(inside ``fork_rng``, so the caller's global RNG is left as it was) and batches are drawn
with a local ``torch.Generator``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ktrdr.engine.errors import TrainingCancelled
from ktrdr.engine.strategy.schema import TrainingConfig
from ktrdr.engine.training.checkpoint import CheckpointState, CheckpointStore
from ktrdr.engine.training.dataset import TrainingData
from ktrdr.engine.training.labels import CLASS_NAMES
from ktrdr.engine.training.network import build_network, predict_proba, require_torch

if TYPE_CHECKING:
    import torch

# Rows of one part: a slice of the data, or row numbers (a cross-validation fold).
Rows = slice | npt.NDArray[np.int64]


@dataclass(frozen=True)
class EpochReport:
    """Losses after one epoch (``epoch`` counts from 1 up to ``epochs``)."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_accuracy: float


@dataclass
class FittedModel:
    """A trained network with the weights of its best validation epoch."""

    module: torch.nn.Module
    feature_names: list[str]
    config: TrainingConfig
    epochs_run: int
    best_epoch: int
    history: list[EpochReport] = field(default_factory=list)

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities (n, 3), columns in ``CLASS_NAMES`` order."""
        return predict_proba(self.module, X)


def class_weights(y: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Weights inversely proportional to each class's frequency (mean 1 over the rows), so a
    common class such as HOLD does not dominate the loss; absent classes get 0."""
    counts = np.bincount(y, minlength=len(CLASS_NAMES)).astype(np.float64)
    present = counts > 0
    weights = np.zeros(len(CLASS_NAMES))
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def fit_model(
    data: TrainingData,
    config: TrainingConfig,
    *,
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoints: CheckpointStore | None = None,
    checkpoint_every: int = 5,
    on_resume: Callable[[int], None] | None = None,
    rows: tuple[Rows, Rows] | None = None,
) -> FittedModel:
    """Train on ``data.train``, early-stop on ``data.validation`` and keep the best weights.

    ``on_epoch`` gets an EpochReport after every epoch; ``should_stop()`` is checked before
    every epoch and raises TrainingCancelled when it returns true. With ``checkpoints``
    the run starts from the newest valid checkpoint there (``on_resume(epoch)`` is told),
    saves one every ``checkpoint_every`` epochs and before it stops on a cancel.
    ``rows``: (train, validation) row numbers to use instead (a cross-validation fold).
    """
    require_torch()
    import torch

    with _intra_op_threads(), torch.random.fork_rng(devices=[]):
        parts = rows or (data.train, data.validation)
        return _fit(
            data, parts, config, on_epoch, should_stop, checkpoints, checkpoint_every, on_resume
        )


@contextmanager
def _intra_op_threads() -> Iterator[None]:
    """Run with ``KTRDR_TORCH_THREADS`` intra-op threads (default 1), then restore.

    These networks are small: more threads buy nothing, and on a shared CPU PyTorch's
    spinning workers collapse (measured here under load: 5 epochs in 38 s with 2 threads,
    1.1 s with 1). One thread also keeps results identical wherever a run resumes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(os.environ.get("KTRDR_TORCH_THREADS", "1"))))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit(
    data: TrainingData,
    parts: tuple[Rows, Rows],
    config: TrainingConfig,
    on_epoch: Callable[[EpochReport], None] | None,
    should_stop: Callable[[], bool] | None,
    checkpoints: CheckpointStore | None,
    checkpoint_every: int,
    on_resume: Callable[[int], None] | None,
) -> FittedModel:
    import torch

    # Seeded weights; fit_model's fork_rng gives the caller its global RNG back afterwards.
    torch.manual_seed(config.seed)
    module = build_network(
        config.model, len(data.feature_names), config.hidden_layers, config.sequence_length
    )
    generator = torch.Generator().manual_seed(config.seed)
    X_train, y_train, w_train = _inputs(data, parts[0], config)
    X_val, y_val, _ = _inputs(data, parts[1], config)
    loss_fn = _WeightedLoss(torch.from_numpy(class_weights(data.y[parts[0]])))
    optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate)

    history: list[EpochReport] = []
    best_loss, best_epoch, best_state = float("inf"), 0, _copy_state(module)
    first = 1
    restored = checkpoints.latest() if checkpoints is not None else None
    if restored is not None:
        module.load_state_dict(restored.model)
        optimizer.load_state_dict(restored.optimizer)
        generator.set_state(restored.generator)
        best_loss, best_epoch, best_state = (
            restored.best_loss, restored.best_epoch, restored.best_model
        )  # fmt: skip
        history = [EpochReport(**h) for h in restored.history]
        first = restored.epoch + 1
        if on_resume is not None:
            on_resume(restored.epoch)

    def save(epoch: int) -> None:
        if checkpoints is not None and epoch >= first:
            checkpoints.save(
                CheckpointState(
                    epoch, _copy_state(module), optimizer.state_dict(), generator.get_state(),
                    best_loss, best_epoch, best_state, [h.__dict__ for h in history],
                )
            )  # fmt: skip

    stopped_early = restored is not None and _patience_spent(config, first - 1, best_epoch)
    for epoch in range(first, config.epochs + 1):
        if stopped_early:
            break
        if should_stop is not None and should_stop():
            save(epoch - 1)
            raise TrainingCancelled(f"training cancelled before epoch {epoch}/{config.epochs}")
        module.train()
        train_loss = _train_epoch(
            module, X_train, y_train, w_train, loss_fn, optimizer, config, generator
        )
        module.eval()
        with torch.no_grad():
            logits = module(X_val)
            val_loss = float(loss_fn(logits, y_val, None))
            val_accuracy = float((logits.argmax(dim=1) == y_val).float().mean())
        report = EpochReport(epoch, config.epochs, train_loss, val_loss, val_accuracy)
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, _copy_state(module)
        if epoch % checkpoint_every == 0:
            save(epoch)
        if _patience_spent(config, epoch, best_epoch):
            break
    module.load_state_dict(best_state)
    module.eval()
    return FittedModel(
        module=module,
        feature_names=list(data.feature_names),
        config=config,
        epochs_run=len(history),
        best_epoch=best_epoch,
        history=history,
    )


class _WeightedLoss:
    """Class-weighted cross-entropy, optionally times a weight per sample (uniqueness)."""

    def __init__(self, class_weight: torch.Tensor) -> None:
        import torch

        self._loss = torch.nn.CrossEntropyLoss(weight=class_weight, reduction="none")
        self._class_weight = class_weight

    def __call__(
        self, logits: torch.Tensor, y: torch.Tensor, sample: torch.Tensor | None
    ) -> torch.Tensor:
        per_row = self._loss(logits, y)
        # As CrossEntropyLoss's mean: normalised by the weights that were applied.
        weight = self._class_weight[y] if sample is None else self._class_weight[y] * sample
        if sample is not None:
            per_row = per_row * sample
        return per_row.sum() / weight.sum()


def _inputs(
    data: TrainingData, part: Rows, config: TrainingConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features, labels and sample weights of one part (a slice, or the row numbers of a
    cross-validation fold); for a sequence model each row comes with the rows before it
    (from earlier parts too: features are causal)."""
    import torch

    from ktrdr.engine.training.network import sequence_windows

    rows = np.arange(part.start, part.stop) if isinstance(part, slice) else np.asarray(part)
    if config.model != "mlp":
        rows = rows[rows >= config.sequence_length - 1]
        windows = sequence_windows(torch.from_numpy(data.X), config.sequence_length)
        X = windows[rows - (config.sequence_length - 1)]
    else:
        X = torch.from_numpy(data.X[rows])
    return X, torch.from_numpy(data.y[rows]), torch.from_numpy(data.sample_weight[rows])


def _train_epoch(
    module: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    loss_fn: _WeightedLoss,
    optimizer: torch.optim.Optimizer,
    config: TrainingConfig,
    generator: torch.Generator,
) -> float:
    """One pass over the rows in seeded random batches; returns the mean batch loss
    weighted by batch size."""
    import torch

    order = torch.randperm(len(X), generator=generator)
    total = 0.0
    weighted = config.sample_weights != "none"
    for begin in range(0, len(X), config.batch_size):
        batch = order[begin : begin + config.batch_size]
        optimizer.zero_grad()
        loss = loss_fn(module(X[batch]), y[batch], w[batch] if weighted else None)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(X)


def _patience_spent(config: TrainingConfig, epoch: int, best_epoch: int) -> bool:
    """Early stopping: that many epochs without a better validation loss."""
    patience = config.early_stopping_patience
    return bool(patience) and epoch > best_epoch and epoch - best_epoch >= patience


def _copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
