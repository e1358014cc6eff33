"""Durable file writes: large aligned buffers bypass the page cache where the file system
allows it, and every path (direct, refused, unaligned, chunked) writes the exact bytes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ktrdr.artifacts import durable
from ktrdr.artifacts.durable import write_synced

MB = 1 << 20


def _aligned(size: int) -> memoryview:
    """A page-aligned buffer of random bytes (pyarrow's allocator aligns large buffers)."""
    buffer = pa.allocate_buffer(size)
    view = memoryview(buffer)  # type: ignore[arg-type]
    np.frombuffer(view, np.uint8)[:] = np.random.default_rng(size).integers(0, 256, size)
    return view


def _spy(monkeypatch: pytest.MonkeyPatch, refuse: str = "") -> list[tuple[str, bool]]:
    """Record each open/write and whether O_DIRECT was on; ``refuse`` one with EINVAL."""
    calls: list[tuple[str, bool]] = []
    real_open, real_write = os.open, os.write

    def spy_open(path: str, flags: int, mode: int = 0o777) -> int:
        direct = bool(flags & durable._O_DIRECT)
        calls.append(("open", direct))
        if refuse == "open" and direct:
            raise OSError(errno.EINVAL, "no O_DIRECT here")
        return real_open(path, flags, mode)

    def spy_write(fd: int, data: memoryview) -> int:
        direct = bool(durable.fcntl.fcntl(fd, durable.fcntl.F_GETFL) & durable._O_DIRECT)
        calls.append(("write", direct))
        if refuse == "write" and direct:
            raise OSError(errno.EINVAL, "misaligned")
        return real_write(fd, data)

    monkeypatch.setattr(durable.os, "open", spy_open)
    monkeypatch.setattr(durable.os, "write", spy_write)
    return calls


@pytest.mark.skipif(not durable._O_DIRECT, reason="no O_DIRECT on this platform")
@pytest.mark.parametrize("size", [4 * MB, 4 * MB + 1234])
def test_a_large_aligned_buffer_is_written_directly_then_its_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    data = _aligned(size)
    calls = _spy(monkeypatch)
    assert write_synced(tmp_path / "f", data) == size
    assert (tmp_path / "f").read_bytes() == bytes(data)
    assert calls[0] == ("open", True)
    if calls[1] == ("open", False):
        pytest.skip("the test directory's file system refuses O_DIRECT")
    tail = [("write", False)] if size % 4096 else []
    assert calls[1:] == [("write", True), *tail]


@pytest.mark.skipif(not durable._O_DIRECT, reason="no O_DIRECT on this platform")
@pytest.mark.parametrize("refuse", ["open", "write"])
def test_a_refused_direct_write_falls_back_to_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refuse: str
) -> None:
    data = _aligned(3 * MB + 5)
    calls = _spy(monkeypatch, refuse)
    assert write_synced(tmp_path / "f", data) == len(data)
    assert (tmp_path / "f").read_bytes() == bytes(data)
    assert calls[-1] == ("write", False)


def test_small_unaligned_and_chunked_data_go_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = _aligned(2 * MB + 1)
    cases = [b"small", big[1:], [b"ab", big, b"cd"]]
    calls = _spy(monkeypatch)
    for i, data in enumerate(cases):
        expected = b"".join(bytes(c) for c in data) if isinstance(data, list) else bytes(data)
        assert write_synced(tmp_path / str(i), iter(data) if isinstance(data, list) else data) == (
            len(expected)
        )
        assert (tmp_path / str(i)).read_bytes() == expected
    assert all(not direct for _, direct in calls)
