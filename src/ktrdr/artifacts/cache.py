"""A worker's local copy of remote artifacts: files laid out by key, bounded in size.

Each cached file ``<root>/<key>`` has a sidecar ``<root>/.meta/<key>.json`` holding the
remote object's ETag and SHA-256 as they were when the bytes were verified. A copy is used
only while the sidecar's ETag is the object's current one, so a replaced object is fetched
again and a half-downloaded file (no sidecar yet) is never used. When the cache grows past
its limit the least recently used files go first (use = a fetch that found it current).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ktrdr.artifacts.store import check_key

log = logging.getLogger(__name__)

_META = ".meta"


@dataclass(frozen=True)
class CachedCopy:
    etag: str
    sha256: str
    size_bytes: int


class LocalCache:
    def __init__(self, root: str | os.PathLike[str], max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _meta(self, key: str) -> Path:
        return self.root / _META / f"{check_key(key)}.json"

    def lookup(self, key: str) -> CachedCopy | None:
        """The copy's record if its file is complete (sidecar present, size matching)."""
        try:
            data = json.loads(self._meta(key).read_text(encoding="utf-8"))
            copy = CachedCopy(str(data["etag"]), str(data["sha256"]), int(data["size_bytes"]))
            if self.path(key).stat().st_size != copy.size_bytes:
                return None
        except (OSError, ValueError, KeyError):
            return None
        return copy

    def temp_path(self, key: str) -> Path:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")

    def admit(self, key: str, source: Path, copy: CachedCopy, *, move: bool = True) -> Path:
        """Put ``source`` (a verified file) in place for ``key`` and record it, then trim."""
        target = self.path(key)
        meta = self._meta(key)
        meta.parent.mkdir(parents=True, exist_ok=True)
        # The sidecar goes after the file: a crash between the two leaves a file without a
        # record, which lookup() treats as absent.
        meta.unlink(missing_ok=True)
        if move:
            os.replace(source, target)
        tmp = meta.with_name(f".{meta.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(
            json.dumps({"etag": copy.etag, "sha256": copy.sha256, "size_bytes": copy.size_bytes}),
            encoding="utf-8",
        )
        os.replace(tmp, meta)
        self.touch(key)
        self.trim(keep=key)
        return target

    def touch(self, key: str) -> None:
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(self._meta(key), (now, now))

    def forget(self, key: str) -> None:
        self._meta(key).unlink(missing_ok=True)
        self.path(key).unlink(missing_ok=True)

    def size_bytes(self) -> int:
        return sum(size for _, _, size in self._entries())

    def _entries(self) -> list[tuple[float, str, int]]:
        meta_root = self.root / _META
        out = []
        for meta in meta_root.rglob("*.json") if meta_root.is_dir() else []:
            key = meta.relative_to(meta_root).as_posix()[: -len(".json")]
            try:
                size = (self.root / key).stat().st_size
                out.append((meta.stat().st_mtime, key, size))
            except OSError:
                continue
        return out

    def trim(self, keep: str | None = None) -> list[str]:
        """Evict least recently used copies until the cache fits; ``keep`` stays (it is the
        file being handed out). Returns the evicted keys."""
        with self._lock:
            entries = sorted(self._entries())
            total = sum(size for _, _, size in entries)
            evicted = []
            for _, key, size in entries:
                if total <= self.max_bytes:
                    break
                if key == keep:
                    continue
                self.forget(key)
                total -= size
                evicted.append(key)
            if evicted:
                log.info("artifact cache over %d bytes: evicted %s", self.max_bytes, evicted)
            return evicted
