"""Where a worker keeps bars and trained models: under its data home, shared by its jobs."""

from __future__ import annotations

from pathlib import Path

from ktrdr.constants import BARS_DIR
from ktrdr.engine.data import DataStore
from ktrdr.engine.data.cache import BarsCache
from ktrdr.engine.training import ModelStore
from ktrdr.engine.training.checkpoint import CheckpointStore

# Checkpoints of runs that did not complete are kept this long for a resume, then pruned
# by the next training job on the worker (completed runs remove theirs at once).
CHECKPOINT_RETENTION_S = 7 * 24 * 3600


# One per worker process, shared by its jobs; sized from the worker's settings at start.
_bars_cache = BarsCache(512 * 2**20)


def configure_bars_cache(max_mb: int) -> BarsCache:
    global _bars_cache
    _bars_cache = BarsCache(max_mb * 2**20)
    return _bars_cache


def data_store(data_home: str) -> DataStore:
    return DataStore(Path(data_home) / BARS_DIR, cache=_bars_cache)


def model_store(data_home: str) -> ModelStore:
    return ModelStore(Path(data_home) / "models")


def checkpoint_store(data_home: str, run_id: str) -> CheckpointStore:
    """Checkpoints of one training run (a re-queued or resumed run keeps its run id)."""
    return CheckpointStore(Path(data_home) / "checkpoints" / run_id)


def prune_checkpoints(data_home: str, max_age_s: float = CHECKPOINT_RETENTION_S) -> list[str]:
    """Remove run folders untouched for ``max_age_s``; returns their names."""
    import shutil
    import time

    root = Path(data_home) / "checkpoints"
    removed = []
    for folder in root.iterdir() if root.is_dir() else []:
        if folder.is_dir() and time.time() - folder.stat().st_mtime > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
