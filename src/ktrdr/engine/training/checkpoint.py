"""Training checkpoints: everything a run needs to go on exactly where it stopped.

A checkpoint holds the weights, the optimiser's state, the batch-order generator's state,
the epoch, the best weights and loss so far and the epoch history, so a run resumed from
it draws the same batches and takes the same steps as one never stopped: on the CPU its
final model is bit-for-bit the uninterrupted run's.

Files are written atomically (a temporary file, fsync, rename) with a SHA-256 manifest
written after them; a checkpoint whose bytes do not match its manifest (a crash mid-write,
a bad disk) is skipped with a warning and the previous one is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_FILE = re.compile(r"^epoch-(\d{6})\.pt$")


@dataclass
class CheckpointState:
    """What ``fit_model`` saves after an epoch and restores before the next one."""

    epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    generator: Any  # torch.ByteTensor
    best_loss: float
    best_epoch: int
    best_model: dict[str, Any]
    history: list[dict[str, Any]]


class CheckpointStore:
    """Checkpoints of one training run in ``folder``, newest kept ``keep`` deep."""

    def __init__(self, folder: Path, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError("keep at least one checkpoint")
        self.folder = Path(folder)
        self.keep = keep

    def save(self, state: CheckpointState) -> Path:
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"epoch-{state.epoch:06d}.pt"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as out:
                torch.save(state.__dict__, out)
                out.flush()
                os.fsync(out.fileno())
            digest = _sha256(Path(tmp))
            os.replace(tmp, target)
            _write_atomically(_manifest(target), json.dumps({"sha256": digest}))
        finally:
            Path(tmp).unlink(missing_ok=True)
        for old in self._files()[: -self.keep]:
            old.unlink(missing_ok=True)
            _manifest(old).unlink(missing_ok=True)
        return target

    def latest(self) -> CheckpointState | None:
        """The newest checkpoint whose bytes match its manifest, or None."""
        import torch

        for path in reversed(self._files()):
            problem = _verify(path)
            if problem is not None:
                log.warning("skipping checkpoint %s: %s; trying the previous one", path, problem)
                continue
            data = torch.load(path, weights_only=True, map_location="cpu")
            return CheckpointState(**data)
        return None

    def clear(self) -> None:
        """Remove every checkpoint of the run (after it completed)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _FILE.match(p.name))


def _manifest(path: Path) -> Path:
    return path.with_suffix(".sha256.json")


def _verify(path: Path) -> str | None:
    manifest = _manifest(path)
    try:
        expected = json.loads(manifest.read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError):
        return "no readable manifest (the write did not finish)"
    if _sha256(path) != expected:
        return "its SHA-256 does not match the manifest (corrupt or half-written)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
