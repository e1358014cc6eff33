"""Artifact stores: large payloads addressed by key, written atomically, checksummed.

Callers use the ``ArtifactStore`` protocol only (put / get / open / exists), so an object
store backend (fsspec / S3) can stand beside ``LocalArtifactStore`` without changing them.
A stored artifact is always complete: bytes go to a temporary file that is fsynced and
then renamed over the key, so a reader (or an operation record naming the key) never sees
a half-written artifact, even after a crash or a kill -9.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ktrdr.artifacts.durable import write_synced

# Keys are relative, slash-separated paths of safe segments: no `..`, no absolute paths.
_SEGMENT = r"[A-Za-z0-9_=-][A-Za-z0-9_.=-]*"
KEY_PATTERN = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*$")
KEY_MAX_LENGTH = 400
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
# A buffer this large is hashed on another thread while it is written and fsynced
# (hashlib and file writes release the GIL): a 16 MB equity curve costs ~10 ms to hash.
# Files are written by ktrdr.artifacts.durable (O_DIRECT for large buffers where possible).
_HASH_ASIDE_BYTES = 1 << 20
_hash_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="artifact-hash")


class ArtifactError(Exception):
    """Base class: something is wrong with a stored artifact."""


class ArtifactNotFound(ArtifactError, LookupError):
    def __init__(self, key: str):
        self.key = key
        super().__init__(f"no artifact {key!r} in the artifact store")


class ArtifactCorrupt(ArtifactError):
    def __init__(self, key: str, expected: str, actual: str):
        self.key = key
        super().__init__(
            f"artifact {key!r} does not match its checksum (expected sha256 {expected[:12]}…, "
            f"found {actual[:12]}…); it was changed or damaged after it was written"
        )


def check_key(key: str) -> str:
    """The key itself, or ValueError saying what a key may contain."""
    if len(key) > KEY_MAX_LENGTH or not KEY_PATTERN.match(key):
        raise ValueError(
            f"bad artifact key {key[:80]!r}: use slash-separated segments of letters, digits, "
            f"'_', '-', '=', '.' (not starting with '.'), at most {KEY_MAX_LENGTH} characters"
        )
    return key


@dataclass(frozen=True)
class ArtifactRef:
    """What an operation keeps of an artifact: where it is and what it must hash to."""

    key: str
    sha256: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "sha256": self.sha256, "size_bytes": self.size_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRef:
        return cls(str(data["key"]), str(data["sha256"]), int(data["size_bytes"]))


class ArtifactStore(Protocol):
    def put(self, key: str, data: bytes | Iterable[bytes]) -> ArtifactRef:
        """Store ``data`` under ``key`` atomically (complete, durable) and return its ref."""
        ...

    def get(self, key: str, sha256: str | None = None) -> bytes:
        """The bytes under ``key``; with ``sha256``, verified (ArtifactCorrupt otherwise)."""
        ...

    def open(self, key: str, sha256: str | None = None) -> BinaryIO:
        """A readable binary file of the artifact, verified like ``get`` before it is handed
        out (a remote backend would serve it from a checksummed local cache)."""
        ...

    def exists(self, key: str) -> bool: ...

    def put_file(self, key: str, path: str | os.PathLike[str]) -> ArtifactRef:
        """Store the file at ``path`` under ``key`` (atomically, like ``put``)."""
        ...

    def fetch(self, key: str, sha256: str | None = None) -> Path:
        """A local, complete file holding the artifact (verified like ``get``)."""
        ...

    def list(self, prefix: str) -> list[str]:
        """The keys under ``prefix``, sorted."""
        ...

    def delete(self, key: str) -> None: ...

    @property
    def cache_root(self) -> Path | None:
        """Where a remote store keeps its local copies (laid out by key); None for a local
        directory, whose files are the artifacts themselves."""
        ...


class LocalArtifactStore:
    """Artifacts as files under one directory (the data home's ``artifacts/``)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | Iterable[bytes]) -> ArtifactRef:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        digest = hashlib.sha256()
        aside = None
        if isinstance(data, bytes | bytearray | memoryview):
            body: bytes | bytearray | memoryview | Iterable[bytes] = data
            if len(data) >= _HASH_ASIDE_BYTES:
                aside = _hash_aside(data)
            else:
                digest.update(data)
        else:
            body = _hashed(data, digest)
        try:
            size = write_synced(tmp, body)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        sha256 = aside.result() if aside is not None else digest.hexdigest()
        _fsync_dir(target.parent)
        return ArtifactRef(key, sha256, size)

    def get(self, key: str, sha256: str | None = None) -> bytes:
        path = self._existing(key)
        data = path.read_bytes()
        if sha256 is not None:
            _verify(key, sha256, hashlib.sha256(data).hexdigest())
        return data

    def open(self, key: str, sha256: str | None = None) -> BinaryIO:
        path = self._existing(key)
        handle = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
        if sha256 is not None:
            try:
                _verify(key, sha256, _file_sha256(handle))
            except BaseException:
                handle.close()
                raise
            handle.seek(0)
        return handle

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    @property
    def cache_root(self) -> Path | None:
        return None

    def put_file(self, key: str, path: str | os.PathLike[str]) -> ArtifactRef:
        with open(path, "rb") as source:
            return self.put(key, iter(lambda: source.read(_CHUNK), b""))

    def fetch(self, key: str, sha256: str | None = None) -> Path:
        if sha256 is not None:
            self.open(key, sha256).close()
        return self._existing(key)

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def _existing(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise ArtifactNotFound(key)
        return path


def _verify(key: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactCorrupt(key, expected, actual)


def _hashed(chunks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _hash_aside(data: bytes | bytearray | memoryview) -> Future[str]:
    return _hash_threads.submit(lambda: hashlib.sha256(data).hexdigest())


def _new_hash_threads() -> None:
    # A forked child has none of the parent's threads, but its pool would think so.
    global _hash_threads
    _hash_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="artifact-hash")


os.register_at_fork(after_in_child=_new_hash_threads)


def _file_sha256(handle: io.BufferedReader | BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
