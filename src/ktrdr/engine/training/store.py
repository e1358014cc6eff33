"""Trained models on disk, versioned per name: ``<root>/<name>/v<N>/{model.pt,metadata.json}``.

A version is written into a temporary folder and renamed into place, so a crash never leaves
a half-written version, and an existing version is never overwritten. ``model.pt`` holds the
state dict only and is loaded with ``weights_only=True`` (no pickled code is executed).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ktrdr.engine.model_choice import (
    ModelSummary,
    beats_baseline,
    choose_model,
    summary_from_metadata,
)
from ktrdr.engine.strategy.schema import MODEL_NAME_PATTERN, Strategy
from ktrdr.engine.training.dataset import TrainingData
from ktrdr.engine.training.fit import FittedModel
from ktrdr.engine.training.labels import CLASS_NAMES
from ktrdr.engine.training.network import build_network, predict_proba, require_torch

if TYPE_CHECKING:
    import torch

MODEL_FILE = "model.pt"
METADATA_FILE = "metadata.json"
METADATA_FORMAT = 1
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")
# Saves racing for the same version number retry with the next one.
_MAX_SAVE_ATTEMPTS = 100


@dataclass(frozen=True)
class ModelInfo:
    """One stored model version and its metadata (as written in metadata.json)."""

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]

    @property
    def created_at(self) -> str:
        return str(self.metadata["created_at"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"])


@dataclass(frozen=True)
class LoadedModel:
    """A stored model ready to predict."""

    info: ModelInfo
    module: torch.nn.Module

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.metadata

    @property
    def feature_names(self) -> list[str]:
        return self.info.feature_names

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities (n, 3), columns in ``CLASS_NAMES`` order (SELL, HOLD, BUY)."""
        return predict_proba(self.module, X)


def strategy_sha256(strategy: Strategy) -> str:
    """Hash of the strategy's canonical JSON: tells whether a model came from this strategy."""
    canonical = json.dumps(strategy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ModelStore:
    """Versioned trained models under ``root`` (created on first save)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(
        self,
        fitted: FittedModel,
        *,
        strategy: Strategy,
        symbol: str,
        timeframe: str,
        metrics: dict[str, Any],
        data: TrainingData,
    ) -> ModelInfo:
        """Store ``fitted`` as the next version of ``strategy.model_name``."""
        require_torch()
        import torch

        name = _checked_name(strategy.model_name)
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        try:
            torch.save(fitted.module.state_dict(), staging / MODEL_FILE)
            for _ in range(_MAX_SAVE_ATTEMPTS):
                version = self._next_version(name)
                metadata = _metadata(
                    fitted, name, version, strategy, symbol, timeframe, metrics, data
                )
                (staging / METADATA_FILE).write_text(
                    json.dumps(metadata, indent=2, allow_nan=False), encoding="utf-8"
                )
                target = folder / f"v{version}"
                try:
                    staging.rename(target)
                except OSError:
                    if not target.exists():
                        raise
                    continue  # another save took this version first
                return ModelInfo(name, version, target, metadata)
            raise RuntimeError(f"could not find a free version for model {name!r} in {folder}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def list(self, name: str | None = None) -> list[ModelInfo]:
        """Stored versions (of ``name``, or of every model), by name then version."""
        if not self.root.is_dir() or (name is not None and not _valid_name(name)):
            return []
        folders = [self.root / name] if name is not None else sorted(self.root.iterdir())
        found: list[ModelInfo] = []
        for folder in folders:
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            for version, path in sorted(_versions(folder)):
                metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
                found.append(ModelInfo(folder.name, version, path, metadata))
        return found

    def load(self, name: str, version: int | None = None) -> LoadedModel:
        """The model ``name`` at ``version`` (default: the newest)."""
        require_torch()
        import torch

        info, _ = self._find(name, version)
        module = build_network(
            info.metadata.get("model", "mlp"),
            len(info.feature_names),
            list(info.metadata["hidden_layers"]),
            int(info.metadata.get("sequence_length", 0)),
        )
        state = torch.load(info.path / MODEL_FILE, weights_only=True, map_location="cpu")
        module.load_state_dict(state)
        module.eval()
        return LoadedModel(info, module)

    def describe(self, name: str, version: int | None = None) -> ModelSummary:
        """What a backtest needs to know of the version ``load`` would give (metadata only,
        no PyTorch): the pinned version, else the newest that beats its baseline."""
        return self._find(name, version)[1]

    def _find(self, name: str, version: int | None) -> tuple[ModelInfo, ModelSummary]:
        infos = self.list()
        summaries = [summary_from_metadata(i.metadata) for i in infos]
        chosen = choose_model(summaries, name, version, str(self.root))
        index = next(
            i for i, s in enumerate(summaries) if (s.name, s.version) == (name, chosen.version)
        )
        return infos[index], chosen

    def _next_version(self, name: str) -> int:
        return 1 + max((v for v, _ in _versions(self.root / name)), default=0)


def _versions(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for path in folder.iterdir() if folder.is_dir() else []:
        match = _VERSION_DIR.match(path.name)
        if match and (path / METADATA_FILE).is_file():
            out.append((int(match.group(1)), path))
    return out


def _valid_name(name: str) -> bool:
    """A name that is one plain folder under the root (no separators, no '..')."""
    return re.fullmatch(MODEL_NAME_PATTERN, name) is not None


def _checked_name(name: str) -> str:
    if not _valid_name(name):
        raise ValueError(
            f"model name {name!r} can't be a folder name; use letters, digits, '_', '.' and "
            "'-' (set decisions.model.name, or rename the strategy)"
        )
    return name


def _metadata(
    fitted: FittedModel,
    name: str,
    version: int,
    strategy: Strategy,
    symbol: str,
    timeframe: str,
    metrics: dict[str, Any],
    data: TrainingData,
) -> dict[str, Any]:
    import torch

    return {
        "format": METADATA_FORMAT,
        "name": name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "strategy": strategy.name,
        "strategy_sha256": strategy_sha256(strategy),
        "symbol": symbol,
        "timeframe": timeframe,
        "feature_names": list(fitted.feature_names),
        "classes": list(CLASS_NAMES),
        "hidden_layers": list(fitted.config.hidden_layers),
        "model": fitted.config.model,
        "sequence_length": fitted.config.sequence_length,
        "labels": {
            "horizon_bars": data.label_horizon,
            "threshold": data.label_threshold,
        },
        "training": fitted.config.model_dump(mode="json"),
        "epochs_run": fitted.epochs_run,
        "best_epoch": fitted.best_epoch,
        "date_ranges": data.date_ranges(),
        "label_counts": data.label_counts,
        "metrics": metrics,
        # Saved either way, but only a model that beats always guessing the commonest class
        # is picked by default (see ktrdr.engine.model_choice.choose_model).
        "beats_baseline": beats_baseline(metrics["accuracy"], metrics["baseline_accuracy"]),
        "torch_version": torch.__version__,
    }
