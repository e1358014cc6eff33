"""Training benchmark (run by hand, not a test).

The packaged ``fuzzy_nn`` strategy on synthetic 1h bars: how long feature preparation
(indicators, fuzzy memberships, labels, split) and one training epoch take, beside a bare
PyTorch loop over the same rows with the same network, batch size and optimiser -- the
engine/bare ratio per epoch is the training loop's own overhead (validation pass, loss
weights, reporting, keeping the best weights). The same for the LSTM (``model: lstm``,
windows of ``sequence_length`` rows; goal <= 1.1x), and the example model's checkpoint:
write (temporary file, fsync, rename, SHA-256 manifest) and read (verify, load) times and
the write's share of the epoch time at the default checkpoint_every of 5 (goal < 5 %).

    .venv/bin/python bench/bench_training.py [--bars 200000] [--epochs 5] [--repeat 3]
        [--lstm-bars 20000] [--lstm-epochs 3]

Writes bench/results/training-<UTC timestamp>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchlib import environment, machine_lines, timestamp, write_json
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.strategy import load_strategy
from ktrdr.engine.strategy.schema import TrainingConfig
from ktrdr.engine.training import TrainingData, fit_model, prepare_training_data
from ktrdr.engine.training.checkpoint import CheckpointState, CheckpointStore
from ktrdr.engine.training.network import build_mlp, build_network, sequence_windows

# The runner's default (TrainingParams.checkpoint_every).
CHECKPOINT_EVERY = 5


def bare_epochs(data: TrainingData, hidden: list[int], batch: int, lr: float, epochs: int) -> float:
    """Seconds per epoch of a plain mini-batch loop: no validation, no weights, no reports."""
    torch.manual_seed(0)
    module = build_mlp(len(data.feature_names), hidden)
    optimiser = torch.optim.Adam(module.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    X = torch.from_numpy(data.X[data.train])
    y = torch.from_numpy(data.y[data.train])
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X))
        for begin in range(0, len(X), batch):
            rows = order[begin : begin + batch]
            optimiser.zero_grad()
            loss_fn(module(X[rows]), y[rows]).backward()
            optimiser.step()
    return (time.perf_counter() - started) / epochs


def bare_lstm_epochs(data: TrainingData, config: TrainingConfig, epochs: int) -> float:
    """Seconds per epoch of a plain loop over the same LSTM and the same windows."""
    torch.manual_seed(0)
    length = config.sequence_length
    module = build_network("lstm", len(data.feature_names), config.hidden_layers, length)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    rows = torch.arange(data.train.start, data.train.stop)
    rows = rows[rows >= length - 1]
    X = sequence_windows(torch.from_numpy(data.X), length)[rows - (length - 1)]
    y = torch.from_numpy(data.y)[rows]
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X))
        for begin in range(0, len(X), config.batch_size):
            batch = order[begin : begin + config.batch_size]
            optimiser.zero_grad()
            loss_fn(module(X[batch]), y[batch]).backward()
            optimiser.step()
    return (time.perf_counter() - started) / epochs


class TimedCheckpoints(CheckpointStore):
    """Times every write the fit makes."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.writes: list[float] = []

    def save(self, state: CheckpointState) -> Path:
        started = time.perf_counter()
        path = super().save(state)
        self.writes.append(time.perf_counter() - started)
        return path


def checkpoint_figures(data: TrainingData, config: TrainingConfig, epochs: int) -> dict[str, Any]:
    """A fit that checkpoints every epoch: write times, epoch time without the writes,
    read (verify + load) times, checkpoint size."""
    with tempfile.TemporaryDirectory() as folder:
        store = TimedCheckpoints(Path(folder))
        started = time.perf_counter()
        fit_model(data, config.model_copy(update={"epochs": epochs}), checkpoints=store,
                  checkpoint_every=1)  # fmt: skip
        total = time.perf_counter() - started
        reads = []
        for _ in range(5):
            started = time.perf_counter()
            assert store.latest() is not None
            reads.append(time.perf_counter() - started)
        size = max(p.stat().st_size for p in Path(folder).glob("epoch-*.pt"))
    epoch_s = (total - sum(store.writes)) / epochs
    write_s = statistics.median(store.writes)
    return {
        "write_s": write_s,
        "read_s": statistics.median(reads),
        "bytes": size,
        "epoch_s": epoch_s,
        "share_every_epoch": write_s / epoch_s,
        f"share_every_{CHECKPOINT_EVERY}": write_s / (CHECKPOINT_EVERY * epoch_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lstm-bars", type=int, default=20_000)
    parser.add_argument("--lstm-epochs", type=int, default=3)
    args = parser.parse_args()
    # The bare loops run with the thread count fit_model uses (KTRDR_TORCH_THREADS, default
    # 1): with PyTorch's default on a loaded 2-core machine, its spinning threads made the
    # bare loop 20x slower and the comparison meaningless.
    torch.set_num_threads(max(1, int(os.environ.get("KTRDR_TORCH_THREADS", "1"))))

    strategy = load_strategy("fuzzy_nn")
    # Early stopping off: every run trains exactly --epochs epochs.
    config = strategy.training.model_copy(
        update={"epochs": args.epochs, "early_stopping_patience": 0}
    )
    bars = generate_synthetic_bars("1h", args.bars, seed=5)

    prepare_s, engine_s, bare_s = [], [], []
    data: TrainingData | None = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        data = prepare_training_data(strategy, bars)
        prepare_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        fit_model(data, config)
        engine_s.append((time.perf_counter() - started) / args.epochs)
        bare_s.append(
            bare_epochs(data, config.hidden_layers, config.batch_size, config.learning_rate,
                        args.epochs)
        )  # fmt: skip
    assert data is not None
    train_rows = data.train.stop - data.train.start
    checkpoint = checkpoint_figures(data, config, args.epochs)

    lstm_config = config.model_copy(update={"model": "lstm", "epochs": args.lstm_epochs})
    lstm_data = prepare_training_data(
        strategy, generate_synthetic_bars("1h", args.lstm_bars, seed=5)
    )
    lstm_engine, lstm_bare = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        fit_model(lstm_data, lstm_config)
        lstm_engine.append((time.perf_counter() - started) / args.lstm_epochs)
        lstm_bare.append(bare_lstm_epochs(lstm_data, lstm_config, args.lstm_epochs))
    lstm = {
        "bars": args.lstm_bars,
        "train_rows": lstm_data.train.stop - lstm_data.train.start,
        "sequence_length": lstm_config.sequence_length,
        "hidden_layers": lstm_config.hidden_layers,
        "engine_epoch_s": min(lstm_engine),
        "bare_epoch_s": min(lstm_bare),
        "ratio_engine_to_bare": min(lstm_engine) / min(lstm_bare),
        "median_engine_epoch_s": statistics.median(lstm_engine),
        "median_bare_epoch_s": statistics.median(lstm_bare),
    }
    best = {
        "prepare_s": min(prepare_s),
        "engine_epoch_s": min(engine_s),
        "bare_epoch_s": min(bare_s),
    }
    report: dict[str, Any] = {
        "bars": args.bars,
        "epochs": args.epochs,
        "repeat": args.repeat,
        "rows": len(data.y),
        "train_rows": train_rows,
        "features": len(data.feature_names),
        "best": best,
        "median": {
            "prepare_s": statistics.median(prepare_s),
            "engine_epoch_s": statistics.median(engine_s),
            "bare_epoch_s": statistics.median(bare_s),
        },
        "epoch_ratio_engine_to_bare": best["engine_epoch_s"] / best["bare_epoch_s"],
        "checkpoint": checkpoint,
        "lstm": lstm,
        "torch_threads": torch.get_num_threads(),
        "environment": environment(["torch", "numpy", "pandas", "numba"]),
    }
    stamp = timestamp()
    write_json("training", stamp, report)
    lines = [
        f"# Training benchmark — {stamp}",
        "",
        f"`fuzzy_nn` on {args.bars:,} synthetic 1h bars: {len(data.y):,} labelled rows, "
        f"{train_rows:,} for training, {len(data.feature_names)} features; "
        f"{args.epochs} epochs per run, best of {args.repeat} (medians in the JSON).",
        "",
        "| step | seconds | rows/s |",
        "|---|---:|---:|",
        f"| prepare (indicators, memberships, labels, split) | {best['prepare_s']:.3f} "
        f"| {args.bars / best['prepare_s']:,.0f} |",
        f"| one epoch, engine (`fit_model`) | {best['engine_epoch_s']:.3f} "
        f"| {train_rows / best['engine_epoch_s']:,.0f} |",
        f"| one epoch, bare PyTorch loop | {best['bare_epoch_s']:.3f} "
        f"| {train_rows / best['bare_epoch_s']:,.0f} |",
        "",
        f"Engine epoch / bare epoch: {report['epoch_ratio_engine_to_bare']:.2f} "
        f"(torch threads: {report['torch_threads']}).",
        "",
        "## Checkpoints of the example model",
        "",
        f"One checkpoint ({checkpoint['bytes']:,} bytes: weights, Adam state, best weights, "
        f"history) written every epoch of a {args.epochs}-epoch fit; medians.",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| write (temp file, fsync, rename, SHA-256 manifest) | {checkpoint['write_s']:.4f} |",
        f"| read (verify SHA-256, load) | {checkpoint['read_s']:.4f} |",
        f"| one epoch without the write | {checkpoint['epoch_s']:.4f} |",
        "",
        f"Write / epoch: {checkpoint['share_every_epoch']:.1%} when writing every epoch, "
        f"{checkpoint[f'share_every_{CHECKPOINT_EVERY}']:.1%} at the default "
        f"checkpoint_every {CHECKPOINT_EVERY} (goal < 5 %).",
        "",
        "## LSTM epoch vs a bare PyTorch loop",
        "",
        f"`model: lstm` (hidden {lstm['hidden_layers']}, sequence_length "
        f"{lstm['sequence_length']}) on {args.lstm_bars:,} bars, {lstm['train_rows']:,} "
        f"training rows, {args.lstm_epochs} epochs per run, best of {args.repeat}.",
        "",
        "| loop | seconds per epoch |",
        "|---|---:|",
        f"| engine (`fit_model`: validation pass, class weights, best weights) "
        f"| {lstm['engine_epoch_s']:.3f} |",
        f"| bare PyTorch loop, same network, windows, batches and optimiser "
        f"| {lstm['bare_epoch_s']:.3f} |",
        "",
        f"Engine / bare: {lstm['ratio_engine_to_bare']:.2f}x (goal <= 1.1x).",
        "",
        *machine_lines(report["environment"]),
    ]
    out = Path(__file__).parent / "results" / f"training-{stamp}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write("\n".join(lines) + f"\n\nwritten to {out}\n")


if __name__ == "__main__":
    main()
