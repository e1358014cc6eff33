"""Training benchmark (run by hand, not a test).

The packaged ``fuzzy_nn`` strategy on synthetic 1h bars: how long feature preparation
(indicators, fuzzy memberships, labels, split) and one training epoch take, beside a bare
PyTorch loop over the same rows with the same network, batch size and optimiser -- the
engine/bare ratio per epoch is the training loop's own overhead (validation pass, loss
weights, reporting, keeping the best weights).

    .venv/bin/python bench/bench_training.py [--bars 200000] [--epochs 5] [--repeat 3]

Writes bench/results/training-<UTC timestamp>.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchlib import environment, machine_lines, timestamp, write_json
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.strategy import load_strategy
from ktrdr.engine.training import TrainingData, fit_model, prepare_training_data
from ktrdr.engine.training.network import build_mlp


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

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
        *machine_lines(report["environment"]),
    ]
    out = Path(__file__).parent / "results" / f"training-{stamp}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write("\n".join(lines) + f"\n\nwritten to {out}\n")


if __name__ == "__main__":
    main()
