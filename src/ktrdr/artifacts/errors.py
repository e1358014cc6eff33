"""Errors of the artifact stores that are about the store, not about one artifact."""

from __future__ import annotations

from ktrdr.artifacts.store import ArtifactError


class ArtifactUnavailable(ArtifactError):
    """The object store could not be reached or refused the request (not the object's fault):
    the API answers 503, a job fails with this message."""
