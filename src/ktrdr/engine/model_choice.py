"""Which trained model a backtest uses, and whether it fits the run: one rule for the
backend (from training results, before queueing) and the worker (from the model store's
metadata, at run time). Pure and torch-free, so the backend may import it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ktrdr.engine.errors import ModelNotFoundError
from ktrdr.engine.strategy.schema import Strategy
from ktrdr.engine.timeframes import did_you_mean

TRAIN_HINT = "train one with: ktrdr train run <strategy>"
# Splits whose bars the model saw while it was fitted (train) or chosen (validation).
SEEN_SPLITS = ("train", "validation")


@dataclass(frozen=True)
class ModelSummary:
    """What a backtest must know of a stored model version (from its metadata.json or
    the result of the training run that saved it)."""

    name: str
    version: int
    symbol: str
    timeframe: str
    feature_names: list[str]
    beats_baseline: bool
    date_ranges: dict[str, dict[str, Any]] = field(default_factory=dict)
    test_accuracy: float | None = None
    baseline_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def symbols(self) -> list[str]:
        """The symbols it was trained on (``symbol`` is ``A,B,C`` for stacked symbols)."""
        return self.symbol.split(",")


def beats_baseline(test_accuracy: float, baseline_accuracy: float) -> bool:
    """A model is worth trading on only if it is right more often than always guessing the
    commonest class of the test split."""
    return test_accuracy > baseline_accuracy


def summary_from_metadata(metadata: dict[str, Any]) -> ModelSummary:
    """From a metadata.json (or a training result's ``model``) mapping."""
    metrics = metadata.get("metrics") or {}
    test = metadata.get("test_accuracy", metrics.get("accuracy"))
    base = metadata.get("baseline_accuracy", metrics.get("baseline_accuracy"))
    beats = metadata.get("beats_baseline")
    if beats is None:  # metadata written before the flag: the same rule from its metrics
        beats = test is not None and base is not None and beats_baseline(test, base)
    return ModelSummary(
        name=str(metadata["name"]),
        version=int(metadata["version"]),
        symbol=str(metadata["symbol"]),
        timeframe=str(metadata["timeframe"]),
        feature_names=list(metadata["feature_names"]),
        beats_baseline=bool(beats),
        date_ranges=dict(metadata.get("date_ranges") or {}),
        test_accuracy=test,
        baseline_accuracy=base,
    )


def choose_model(
    candidates: list[ModelSummary], name: str, version: int | None, where: str
) -> ModelSummary:
    """The pinned ``version`` of ``name``, else its newest version that beats its baseline.

    ``candidates`` are every known model version (any name); ``where`` says where they were
    looked for. ModelNotFoundError says what exists and what to do."""
    mine = sorted((c for c in candidates if c.name == name), key=lambda c: c.version)
    if not mine:
        names = sorted({c.name for c in candidates})
        raise ModelNotFoundError(
            f"no trained model named {name!r}{did_you_mean(name, names)}; "
            f"models there: {', '.join(names) or 'none'}; {TRAIN_HINT}",
            where=where,
        )
    listed = ", ".join(
        f"v{c.version}{'' if c.beats_baseline else ' (does not beat its baseline)'}" for c in mine
    )
    if version is not None:
        for c in mine:
            if c.version == version:
                return c
        raise ModelNotFoundError(
            f"model {name!r} has no version {version} (versions: {listed}); use one of "
            f"those, leave the version out for the newest that beats its baseline, or "
            f"{TRAIN_HINT}",
            where=where,
        )
    good = [c for c in mine if c.beats_baseline]
    if not good:
        raise ModelNotFoundError(
            f"no version of model {name!r} beats its baseline (versions: {listed}), so none "
            "is used by default; pin one with decisions.model.version if you mean to trade "
            f"on it anyway, or retrain (more data, other features); {TRAIN_HINT}",
            where=where,
        )
    return good[-1]


def strategy_feature_names(strategy: Strategy) -> list[str]:
    """The model features a strategy gives: ``"<variable>.<set>"`` in strategy order."""
    return [f"{var}.{name}" for var, cfg in strategy.fuzzy_sets.items() for name in cfg.sets]


def fit_problems(model: ModelSummary, strategy: Strategy) -> list[str]:
    """Why ``model`` cannot serve a run of ``strategy`` (whose data section holds the run's
    symbol and timeframe); empty when it fits. Another symbol or timeframe is allowed only
    with ``decisions.model.allow_other_symbols: true``."""
    cfg = strategy.decisions.model
    allow_other = cfg is not None and cfg.allow_other_symbols
    label = f"model {model.name} v{model.version}"
    problems = []
    features = strategy_feature_names(strategy)
    if features != model.feature_names:
        problems.append(
            f"{label} was trained on features {model.feature_names}, the strategy gives "
            f"{features}; retrain it (ktrdr train run {strategy.name}) or fix fuzzy_sets "
            "to match"
        )
    run = (strategy.data.symbol, strategy.data.timeframe)
    trained_on_run = run[0] in model.symbols and run[1] == model.timeframe
    if not trained_on_run and not allow_other:
        problems.append(
            f"{label} was trained on {model.symbol} {model.timeframe}, this run is "
            f"{run[0]} {run[1]}; train it on {run[0]} {run[1]} (ktrdr train run "
            f"{strategy.name} --symbol {run[0]} --timeframe {run[1]}), pin a version trained "
            "on it, or set decisions.model.allow_other_symbols: true to use it anyway"
        )
    return problems


def in_sample_warning(
    model: ModelSummary, symbol: str, first: datetime, last: datetime
) -> str | None:
    """A warning when the window [first, last] of ``symbol`` overlaps the bars the model
    was trained or validated on: results there are in-sample and flatter the model."""
    if symbol not in model.symbols:
        return None
    overlaps = []
    for split in SEEN_SPLITS:
        part = model.date_ranges.get(split)
        if not part:
            continue
        start, end = datetime.fromisoformat(part["start"]), datetime.fromisoformat(part["end"])
        if first <= end and start <= last:
            overlaps.append(f"{split} {start.date()}..{end.date()}")
    if not overlaps:
        return None
    return (
        f"in-sample: this window overlaps the data model {model.name} v{model.version} was "
        f"fitted on ({model.symbol} {model.timeframe}: {', '.join(overlaps)}); "
        "only bars after its validation split (its test split onward) are out-of-sample"
    )


def pin_model_version(strategy: Strategy, version: int) -> Strategy:
    """``strategy`` deciding with exactly ``version`` of its model."""
    cfg = strategy.decisions.model
    assert cfg is not None  # called for model strategies only
    decisions = strategy.decisions.model_copy(
        update={"model": cfg.model_copy(update={"version": version})}
    )
    return strategy.model_copy(update={"decisions": decisions})
