"""Large payloads (result tables, uploaded files) as artifacts addressed by key and checksum.

Importable by the API and by workers alike: no engine, no database, no HTTP in here.
"""

from ktrdr.artifacts.backends import artifact_store
from ktrdr.artifacts.errors import ArtifactUnavailable
from ktrdr.artifacts.store import (
    SHA256_PATTERN,
    ArtifactCorrupt,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    ArtifactStore,
    LocalArtifactStore,
    check_key,
)

__all__ = [
    "SHA256_PATTERN",
    "ArtifactCorrupt",
    "ArtifactError",
    "ArtifactNotFound",
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactUnavailable",
    "LocalArtifactStore",
    "artifact_store",
    "check_key",
]
