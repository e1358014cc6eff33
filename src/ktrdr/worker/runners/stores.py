"""Where a worker keeps bars, trained models, checkpoints and its results' tables.

The engine's stores read and write plain folders. With the data home's artifact directory
(one machine, or a volume every worker mounts) those folders are the data home's own
``data/``, ``models/`` and ``checkpoints/``, as always. With an object store
(KTRDR_ARTIFACTS_URL) they are folders of the worker's artifact cache: before a job reads
a file it is fetched (verified by checksum, reused while unchanged), and what a job writes
is uploaded under the same key, so a worker on another host reads what this one wrote.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ktrdr.artifacts import ArtifactCorrupt, ArtifactRef, ArtifactStore, artifact_store
from ktrdr.artifacts.keys import BARS, CHECKPOINTS, MODELS, bars_key
from ktrdr.artifacts.tables import write_table
from ktrdr.constants import BARS_DIR
from ktrdr.engine.data import DataStore
from ktrdr.engine.data.cache import BarsCache
from ktrdr.engine.data.store import normalize_symbol
from ktrdr.engine.model_choice import ModelSummary
from ktrdr.engine.strategy import Strategy
from ktrdr.engine.timeframes import check_timeframe
from ktrdr.engine.training import ModelStore
from ktrdr.engine.training.checkpoint import CheckpointState
from ktrdr.telemetry.training_metrics import TrainingMetrics
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.checkpoints import TracedCheckpoints

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ktrdr.jobs.backtest import BacktestParams

# Checkpoints of runs that did not complete are kept this long for a resume, then pruned
# by the next training job on the worker (completed runs remove theirs at once).
CHECKPOINT_RETENTION_S = 7 * 24 * 3600

# The data home's folder names for the files under each key prefix.
_LOCAL_FOLDERS = {BARS: BARS_DIR, MODELS: "models", CHECKPOINTS: "checkpoints"}

# Decoded bar files kept in memory between jobs: one per worker process, shared by its
# jobs; sized from the worker's settings at start (KTRDR_BARS_CACHE_MB).
_bars_cache = BarsCache(512 * 2**20)


def configure_bars_cache(max_mb: int) -> BarsCache:
    global _bars_cache
    _bars_cache = BarsCache(max_mb * 2**20)
    return _bars_cache


class SharedTree:
    """One folder the engine uses, mirrored to the artifact store under ``prefix``."""

    def __init__(self, ctx: JobContext, prefix: str):
        self.store: ArtifactStore = ctx.artifacts or artifact_store(ctx.data_home)
        cache = self.store.cache_root
        self.shared = cache is not None
        self.prefix = prefix
        self.root = (
            cache / prefix if cache is not None else Path(ctx.data_home) / _LOCAL_FOLDERS[prefix]
        )

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}"

    def pull(self, relative: str) -> bool:
        """Bring the store's current copy of one file here; False if the store has none."""
        if not self.shared:
            return (self.root / relative).is_file()
        key = self._key(relative)
        if not self.store.exists(key):
            # Deleted (or never written): a copy cached earlier must not stand in for it.
            (self.root / relative).unlink(missing_ok=True)
            return False
        self.store.fetch(key)
        return True

    def pull_all(self, under: str = "") -> None:
        """Every file under ``under`` (a folder of this tree, or all of it)."""
        if self.shared:
            for key in self.store.list(self._key(under) if under else self.prefix):
                self.store.fetch(key)

    def push(self, relative: str) -> ArtifactRef | None:
        if not self.shared:
            return None
        return self.store.put_file(self._key(relative), self.root / relative)

    def remove(self, relative: str) -> None:
        if self.shared:
            self.store.delete(self._key(relative))


def bars_file(symbol: str, timeframe: str) -> str:
    """The bars' path inside the bars tree (their key without the prefix)."""
    check_timeframe(timeframe)
    return bars_key(normalize_symbol(symbol), timeframe).removeprefix(f"{BARS}/")


def bars_for(ctx: JobContext, symbol: str, timeframe: str) -> DataStore:
    """A DataStore holding the current bars of ``symbol`` ``timeframe`` (fetched if shared)."""
    tree = SharedTree(ctx, BARS)
    tree.pull(bars_file(symbol, timeframe))
    # The in-memory cache keys on the file's identity: a fetched new version is a new file.
    return DataStore(tree.root, cache=_bars_cache)


def publish_bars(ctx: JobContext, symbol: str, timeframe: str) -> ArtifactRef | None:
    """Upload the bars a DataStore from :func:`bars_for` just saved; their ref when shared."""
    return SharedTree(ctx, BARS).push(bars_file(symbol, timeframe))


def model_store(ctx: JobContext, name: str | None = None) -> ModelStore:
    """Models (of ``name``, fetched from the object store when shared)."""
    tree = SharedTree(ctx, MODELS)
    if name is not None:
        tree.pull_all(name)
    return ModelStore(tree.root)


def publish_model(ctx: JobContext, folder: Path) -> None:
    """Upload a version folder ModelStore.save wrote (metadata after the weights)."""
    tree = SharedTree(ctx, MODELS)
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.suffix == ".json")
    for path in files:
        tree.push(path.relative_to(tree.root).as_posix())


class SharedCheckpointStore(TracedCheckpoints):
    """Checkpoints (traced, see TracedCheckpoints) that follow a re-queued run to whichever
    worker takes it next: each one written is uploaded, a resume fetches the run's."""

    def __init__(self, tree: SharedTree, run_id: str, metrics: TrainingMetrics,
                 operation_id: str):  # fmt: skip
        super().__init__(tree.root / run_id, metrics, operation_id)
        self.tree = tree
        self.run_id = run_id

    def save(self, state: CheckpointState) -> Path:
        before = {p.name for p in self._files()}
        target = super().save(state)
        # The weights, then the manifest that vouches for them (a reader skips a checkpoint
        # whose manifest is missing or does not match).
        for path in (target, target.with_suffix(".sha256.json")):
            self.tree.push(f"{self.run_id}/{path.name}")
        for gone in before - {p.name for p in self._files()}:
            self.tree.remove(f"{self.run_id}/{gone}")
            self.tree.remove(f"{self.run_id}/{Path(gone).with_suffix('.sha256.json').name}")
        return target

    def latest(self) -> CheckpointState | None:
        if self.tree.shared:
            for key in self.tree.store.list(f"{self.tree.prefix}/{self.run_id}"):
                try:
                    self.tree.store.fetch(key)
                except ArtifactCorrupt as exc:
                    # As for a damaged local file: skipped, the previous checkpoint is used.
                    log.warning("skipping checkpoint object: %s", exc)
        return super().latest()

    def clear(self) -> None:
        if self.tree.shared:
            for key in self.tree.store.list(f"{self.tree.prefix}/{self.run_id}"):
                self.tree.store.delete(key)
        super().clear()


def checkpoint_store(ctx: JobContext, run_id: str) -> SharedCheckpointStore:
    """Checkpoints of one training run (a re-queued or resumed run keeps its run id)."""
    tree = SharedTree(ctx, CHECKPOINTS)
    return SharedCheckpointStore(tree, run_id, ctx.metrics.training, ctx.operation_id)


def prune_checkpoints(ctx: JobContext, max_age_s: float = CHECKPOINT_RETENTION_S) -> list[str]:
    """Remove this worker's run folders untouched for ``max_age_s``; returns their names."""
    root = SharedTree(ctx, CHECKPOINTS).root
    removed = []
    for folder in root.iterdir() if root.is_dir() else []:
        if folder.is_dir() and time.time() - folder.stat().st_mtime > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def chosen_model(
    strategy: Strategy, params: BacktestParams, models: ModelStore
) -> ModelSummary | None:
    """The model version a backtest trades on (the backend's choice at submission, when
    it made one); None for rule-based strategies."""
    cfg = strategy.decisions.model
    if cfg is None:
        return None
    version = params.model["version"] if params.model is not None else cfg.version
    return models.describe(strategy.model_name, version)


# A result's tables by part: (the table, extra fields for its reference in the record).
Tables = dict[str, tuple[pa.Table, dict[str, Any]]]


def write_tables(ctx: JobContext, tables: Tables) -> dict[str, dict[str, Any]]:
    """Each table as an artifact of this attempt; returns the references for the record.

    Every table is complete and durable before this returns (ArtifactStore.put), so the
    result naming them, sent afterwards, never references a half-written artifact. The
    tables are written at once: each write mostly waits on the disk (its fsync), and a
    backtest's trades then cost no time beside its equity curve (1M bars: 69 -> 44 ms)."""
    store = ctx.artifacts or artifact_store(ctx.data_home)
    prefix = f"operations/{ctx.operation_id}/attempt-{ctx.attempt}"

    def write(part: str) -> dict[str, Any]:
        table, extra = tables[part]
        ref = write_table(store, f"{prefix}/{part}.arrow", table)
        return {**ref.to_dict(), "rows": table.num_rows, **extra}

    if len(tables) <= 1:
        return {part: write(part) for part in tables}
    with ThreadPoolExecutor(len(tables), thread_name_prefix="result-tables") as pool:
        return dict(zip(tables, pool.map(write, tables), strict=True))
