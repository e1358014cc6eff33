"""Writing a file so that it is on disk when the call returns (the store renames it after).

A large, page-aligned buffer (a result table serialised by pyarrow) is written with
O_DIRECT where the file system allows it: the device reads it straight from the buffer, so
the kernel neither copies it into the page cache nor writes those pages back at fsync.
On this project's VMs the copy into fresh page-cache pages costs 3-28 ms of CPU for a
16 MB equity curve (the host backs new guest pages lazily), then fsync writes them back.
The part that is not a whole number of blocks, and any buffer or file system O_DIRECT
refuses, is written normally. Either way the file is fsynced before the caller may rename
it, so durability is the same. (A reader then reads it from disk, not from memory: the
API's result routes, not the run.)
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterable

import numpy as np

# Alignment O_DIRECT needs for the buffer, the length and the file offset (the largest
# logical block size in use; 512-byte devices accept it too).
_BLOCK = 4096
# Smaller writes gain nothing from skipping the page cache.
_DIRECT_MIN_BYTES = 1 << 20
_O_DIRECT = getattr(os, "O_DIRECT", 0)

Chunk = bytes | bytearray | memoryview


def write_synced(path: os.PathLike[str] | str, data: Chunk | Iterable[Chunk]) -> int:
    """Create (or truncate) ``path`` holding ``data`` (one buffer, or chunks read as they
    come) and fsync it; returns the bytes written."""
    single = isinstance(data, bytes | bytearray | memoryview)
    chunks: Iterable[Chunk] = [data] if single else data  # type: ignore[list-item,assignment]
    direct = single and _direct_candidate(data)  # type: ignore[arg-type]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (_O_DIRECT if direct else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if not direct or exc.errno != errno.EINVAL:
            raise
        direct = False  # a file system without O_DIRECT (tmpfs, some overlays)
        fd = os.open(path, flags & ~_O_DIRECT, 0o644)
    try:
        size = 0
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            done = _write_direct(fd, view) if direct else 0
            _write_all(fd, view[done:])
            size += len(view)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size


def _direct_candidate(chunk: Chunk) -> bool:
    if not _O_DIRECT or len(chunk) < _DIRECT_MIN_BYTES:
        return False
    return int(np.frombuffer(chunk, np.uint8).ctypes.data) % _BLOCK == 0


def _write_direct(fd: int, view: memoryview) -> int:
    """Write the whole blocks at the start of ``view`` with O_DIRECT, then turn it off for
    the rest; returns how many bytes were written."""
    whole = len(view) - len(view) % _BLOCK
    done = 0
    try:
        while done < whole:
            written = os.write(fd, view[done:whole])
            done += written
            if written % _BLOCK:
                break  # a short write off the block grid: the rest goes through the cache
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        # Refused after all (an alignment this file system wants stricter): write normally.
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_DIRECT)
    os.lseek(fd, done, os.SEEK_SET)
    return done


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]
