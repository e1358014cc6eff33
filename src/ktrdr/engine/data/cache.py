"""Recently read bar files kept in memory, so repeated runs on the same data skip Parquet.

A worker runs many jobs on the same few datasets (every chunk of a sweep, every backtest
of a research session): decoding a 1,000,000-bar Parquet file costs about as much as the
backtest itself. Entries are keyed by the file's identity (path, inode, size, mtime), so a
save — which writes a new file and renames it over the old one — is never served stale.
Least recently used entries are dropped past ``max_bytes``. pandas' copy-on-write keeps
the cached frame unchanged whatever a caller does with what it gets.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pandas as pd

FileKey = tuple[str, int, int, int]


def file_key(path: Path) -> FileKey:
    st = os.stat(path)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


class BarsCache:
    """A byte-bounded LRU of decoded bar files; safe to share between threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[FileKey, tuple[pd.DataFrame, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, path: Path, read: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
        """The decoded file at ``path``: from memory when this exact file was read before."""
        key = file_key(path)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            self.misses += 1
        frame = read(path)
        # The file may have been replaced while it was read: keep it only if it was not.
        if file_key(path) == key:
            self._put(key, frame)
        return frame

    def _put(self, key: FileKey, frame: pd.DataFrame) -> None:
        size = int(frame.memory_usage(index=True, deep=False).sum())
        if size > self.max_bytes:
            return
        with self._lock:
            stale = [k for k in self._entries if k[0] == key[0]]
            for k in stale:  # older versions of the same file can never be asked for again
                self._bytes -= self._entries.pop(k)[1]
            self._entries[key] = (frame, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
