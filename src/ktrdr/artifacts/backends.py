"""Which artifact store a process uses: the data home's directory, or an object store."""

from __future__ import annotations

import os
from pathlib import Path

from ktrdr.artifacts.store import ArtifactStore, LocalArtifactStore

DEFAULT_CACHE_MAX_BYTES = 10 * 2**30


def artifact_store(
    data_home: str | os.PathLike[str],
    url: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
) -> ArtifactStore:
    """The artifact store shared by the API and the workers: ``<data home>/artifacts``
    (one machine, or a shared volume under compose), or with ``url`` (KTRDR_ARTIFACTS_URL,
    ``s3://bucket/prefix``) an object store read through a cache under ``cache_dir``
    (default ``<data home>/cache``)."""
    if not url:
        return LocalArtifactStore(Path(data_home) / "artifacts")
    # Imported only for an s3:// URL: fsspec/s3fs are the optional extra `s3`.
    from ktrdr.artifacts.remote import RemoteArtifactStore

    cache = Path(cache_dir) if cache_dir is not None else Path(data_home) / "cache"
    return RemoteArtifactStore(url, cache, cache_max_bytes)
