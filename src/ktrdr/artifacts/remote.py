"""Artifacts in an S3-compatible object store (``s3://bucket/prefix``), through fsspec/s3fs.

Writes are atomic: the bytes go to a temporary key under ``<prefix>/.tmp/`` (a name no
artifact key can take), carrying their SHA-256 as object metadata, and are then copied
server-side onto the real key (a copy appears whole or not at all) before the temporary
object is removed. Readers therefore see the previous object or the complete new one.

Reads go through :class:`~ktrdr.artifacts.cache.LocalCache`: a copy is downloaded once,
checked against the SHA-256 in the object's metadata, and reused while the object's ETag
is unchanged. An object without that checksum (not written by this store, or a stray
partial upload) or whose bytes do not match it is refused with :class:`ArtifactCorrupt`
naming the key; a store that cannot be reached raises :class:`ArtifactUnavailable`.
Endpoint and credentials come from the usual AWS variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``), read by botocore.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from ktrdr.artifacts.cache import CachedCopy, LocalCache
from ktrdr.artifacts.errors import ArtifactUnavailable
from ktrdr.artifacts.store import (
    ArtifactCorrupt,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    check_key,
)

log = logging.getLogger(__name__)

SHA256_METADATA = "sha256"
_TMP = ".tmp"
_CHUNK = 1 << 20
# Bounded waits: an unreachable store fails the operation within seconds, never hangs it.
_CLIENT_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}}
# Downloads that race a replacement of the object are retried this often.
_FETCH_ATTEMPTS = 3

T = TypeVar("T")


class ArtifactIncomplete(ArtifactCorrupt):
    def __init__(self, key: str, url: str):
        self.key = key
        ArtifactError.__init__(
            self,
            f"artifact {key!r} in {url} has no {SHA256_METADATA} checksum: it was not written "
            "by ktrdr's artifact store or its upload did not finish; write it again "
            "(re-run the download or training that makes it)",
        )


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix without slashes), or ValueError."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(
            f"KTRDR_ARTIFACTS_URL {url!r} is not an object store URL; use s3://bucket/prefix "
            "(endpoint and credentials from AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY) or leave it unset for the data home's directory"
        )
    return parts.netloc, parts.path.strip("/")


class RemoteArtifactStore:
    """The ArtifactStore protocol over S3, with a local checksummed cache."""

    def __init__(self, url: str, cache_dir: str | Path, cache_max_bytes: int):
        import fsspec  # optional extra `s3`: imported only when an s3:// URL is configured

        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse_s3_url(url)
        self.cache = LocalCache(cache_dir, cache_max_bytes)
        self.fs = fsspec.filesystem(
            "s3",
            use_listings_cache=False,
            skip_instance_cache=True,
            config_kwargs=_CLIENT_CONFIG,
        )

    @property
    def cache_root(self) -> Path:
        return self.cache.root

    def _path(self, key: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, check_key(key)) if p)

    def _call(self, what: str, key: str, action: Callable[[], T]) -> T:
        """Run one store request; map s3fs/botocore failures to artifact errors."""
        try:
            return action()
        except ArtifactError:
            raise
        except FileNotFoundError as exc:
            raise ArtifactNotFound(key) from exc
        except Exception as exc:  # botocore / aiohttp / OSError: the store, not the object
            raise ArtifactUnavailable(
                f"artifact store {self.url} could not {what} {key!r}: {type(exc).__name__}: "
                f"{exc}; check that the store is reachable (AWS_ENDPOINT_URL) and the "
                "credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
            ) from exc

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes | Iterable[bytes]) -> ArtifactRef:
        single = isinstance(data, bytes | bytearray | memoryview)
        body = bytes(data) if single else b"".join(data)  # type: ignore[arg-type]
        digest = hashlib.sha256(body).hexdigest()

        def upload(tmp: str) -> None:
            self.fs.pipe_file(tmp, body, Metadata={SHA256_METADATA: digest})

        self._atomic(key, upload)
        return ArtifactRef(key, digest, len(body))

    def put_file(self, key: str, path: str | os.PathLike[str]) -> ArtifactRef:
        """Upload a local file; when it is the cache's own copy of ``key`` it stays cached."""
        path = Path(path)
        digest, size = _file_digest(path)

        def upload(tmp: str) -> None:
            self.fs.put_file(str(path), tmp, Metadata={SHA256_METADATA: digest})

        etag = self._atomic(key, upload)
        if path.resolve() == self.cache.path(key).resolve():
            self.cache.admit(key, path, CachedCopy(etag, digest, size), move=False)
        return ArtifactRef(key, digest, size)

    def _atomic(self, key: str, upload: Callable[[str], None]) -> str:
        """Upload to a temporary key, copy onto ``key``; the new object's ETag."""
        final = self._path(key)
        tmp = "/".join(
            p for p in (self.bucket, self.prefix, _TMP, f"{check_key(key)}.{secrets.token_hex(6)}")
            if p
        )  # fmt: skip

        def run() -> str:
            upload(tmp)
            try:
                self.fs.copy(tmp, final)
            finally:
                self.fs.rm_file(tmp)
            return str(self._head(key)["ETag"])

        return self._call("write", key, run)

    def delete(self, key: str) -> None:
        def run() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self._path(key))

        self._call("delete", key, run)
        self.cache.forget(key)

    # ------------------------------------------------------------------- reads

    def _head(self, key: str) -> dict[str, Any]:
        bucket, _, rest = self._path(key).partition("/")
        return dict(self.fs.call_s3("head_object", Bucket=bucket, Key=rest))

    def exists(self, key: str) -> bool:
        try:
            self._call("look up", key, lambda: self._head(key))
        except ArtifactNotFound:
            return False
        return True

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a key prefix ending at a segment), sorted."""
        base = "/".join(p for p in (self.bucket, self.prefix) if p)
        root = f"{base}/{check_key(prefix)}"

        def run() -> list[str]:
            return [str(p)[len(base) + 1 :] for p in self.fs.find(root)]

        return sorted(self._call("list", prefix, run))

    def fetch(self, key: str, sha256: str | None = None) -> Path:
        """A verified local copy of ``key`` (downloaded once, reused while unchanged)."""
        for _ in range(_FETCH_ATTEMPTS):
            head = self._call("look up", key, lambda: self._head(key))
            etag, size = str(head["ETag"]), int(head["ContentLength"])
            stored = (head.get("Metadata") or {}).get(SHA256_METADATA)
            if not stored:
                raise ArtifactIncomplete(key, self.url)
            if sha256 is not None and stored != sha256:
                raise ArtifactCorrupt(key, sha256, stored)
            cached = self.cache.lookup(key)
            if cached is not None and (cached.etag, cached.sha256) == (etag, stored):
                self.cache.touch(key)
                return self.cache.path(key)
            tmp = self.cache.temp_path(key)
            try:
                self._download(key, tmp)
                actual, got = _file_digest(tmp)
                if actual == stored and got == size:
                    return self.cache.admit(key, tmp, CachedCopy(etag, stored, size))
                # Replaced while we read it? Then try the new object; else it is damaged.
                now = self._call("look up", key, lambda: self._head(key))
                if str(now["ETag"]) == etag:
                    raise ArtifactCorrupt(key, stored, actual)
            finally:
                tmp.unlink(missing_ok=True)
        raise ArtifactUnavailable(
            f"artifact {key!r} in {self.url} kept changing while it was downloaded "
            f"({_FETCH_ATTEMPTS} attempts); try again once its writer has finished"
        )

    def _download(self, key: str, tmp: Path) -> None:
        self._call("download", key, lambda: self.fs.get_file(self._path(key), str(tmp)))

    def get(self, key: str, sha256: str | None = None) -> bytes:
        return self.fetch(key, sha256).read_bytes()

    def open(self, key: str, sha256: str | None = None) -> BinaryIO:
        return open(self.fetch(key, sha256), "rb")


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
