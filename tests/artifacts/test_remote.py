"""The object-store backend against a real S3-compatible server (moto's, a process)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from ktrdr.artifacts import ArtifactCorrupt, ArtifactNotFound, artifact_store
from ktrdr.artifacts.remote import ArtifactIncomplete, ArtifactUnavailable, RemoteArtifactStore
from ktrdr.config import WorkerSettings
from tests.support.s3 import S3Server
from tests.support.stack import free_port


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = s3_server.env(s3_server.new_bucket())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _store(env: dict[str, str], cache: Path, max_bytes: int = 10**9) -> RemoteArtifactStore:
    store = artifact_store(cache.parent, env["KTRDR_ARTIFACTS_URL"], cache_dir=cache,
                           cache_max_bytes=max_bytes)  # fmt: skip
    assert isinstance(store, RemoteArtifactStore)
    return store


def _objects(server: S3Server, env: dict[str, str]) -> dict[str, bytes]:
    bucket = env["KTRDR_ARTIFACTS_URL"].removeprefix("s3://").split("/")[0]
    client = server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_writes_land_whole_under_the_key_with_their_checksum(
    s3_server: S3Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    store = _store(s3_env, tmp_path / "a")
    ref = store.put("results/t.arrow", b"table bytes")
    assert ref.sha256 == hashlib.sha256(b"table bytes").hexdigest()
    assert ref.size_bytes == 11
    # Only the key itself remains: the temporary upload was copied over and removed.
    assert _objects(s3_server, s3_env) == {"artifacts/results/t.arrow": b"table bytes"}
    bucket = s3_env["KTRDR_ARTIFACTS_URL"].split("/")[2]
    head = s3_server.client().head_object(Bucket=bucket, Key="artifacts/results/t.arrow")
    assert head["Metadata"] == {"sha256": ref.sha256}
    # Another host (its own cache) reads it, verified against the ref.
    other = _store(s3_env, tmp_path / "b")
    assert other.get("results/t.arrow", ref.sha256) == b"table bytes"
    assert other.exists("results/t.arrow") and not other.exists("results/u.arrow")
    assert other.list("results") == ["results/t.arrow"]
    with pytest.raises(ArtifactNotFound, match=r"results/u\.arrow"):
        other.get("results/u.arrow")


def test_a_failed_write_leaves_the_old_object_and_no_temporary(
    s3_server: S3Server, s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(s3_env, tmp_path / "c")
    store.put("bars/X/1h.parquet", b"old")

    def broken_copy(*_args: object, **_kwargs: object) -> None:
        raise ConnectionError("connection reset during copy")

    monkeypatch.setattr(store.fs, "copy", broken_copy)
    with pytest.raises(ArtifactUnavailable, match=r"could not write .bars/X/1h\.parquet."):
        store.put("bars/X/1h.parquet", b"new, never visible")
    assert _objects(s3_server, s3_env) == {"artifacts/bars/X/1h.parquet": b"old"}


def test_reads_are_cached_until_the_object_changes(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _store(s3_env, tmp_path / "w")
    reader = _store(s3_env, tmp_path / "r")
    writer.put("models/m/v1/model.pt", b"weights-1")
    path = reader.fetch("models/m/v1/model.pt")
    assert path == tmp_path / "r" / "models/m/v1/model.pt"
    assert path.read_bytes() == b"weights-1"
    downloads: list[str] = []
    real = reader._download
    monkeypatch.setattr(
        reader, "_download", lambda key, tmp: (downloads.append(key), real(key, tmp))
    )
    assert reader.fetch("models/m/v1/model.pt").read_bytes() == b"weights-1"
    assert downloads == []  # same ETag: the cached copy
    writer.put("models/m/v1/model.pt", b"weights-2")
    assert reader.fetch("models/m/v1/model.pt").read_bytes() == b"weights-2"
    assert downloads == ["models/m/v1/model.pt"]


def test_the_cache_evicts_the_least_recently_used_past_its_limit(
    s3_env: dict[str, str], tmp_path: Path
) -> None:
    writer = _store(s3_env, tmp_path / "w")
    for name in "abc":
        writer.put(f"bars/{name}", name.encode() * 100)
    reader = _store(s3_env, tmp_path / "r", max_bytes=250)
    reader.fetch("bars/a")
    time.sleep(0.01)
    reader.fetch("bars/b")
    time.sleep(0.01)
    reader.fetch("bars/a")  # a used again: b is now the least recent
    time.sleep(0.01)
    reader.fetch("bars/c")
    cached = sorted(p.name for p in (tmp_path / "r" / "bars").iterdir())
    assert cached == ["a", "c"]
    assert reader.cache.size_bytes() == 200


def test_an_object_without_its_checksum_is_refused_by_name(
    s3_server: S3Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    bucket = s3_env["KTRDR_ARTIFACTS_URL"].split("/")[2]
    # What a half-done or foreign upload looks like: bytes, no sha256 metadata.
    s3_server.client().put_object(Bucket=bucket, Key="artifacts/bars/EURUSD/1h.parquet",
                                  Body=b"PAR1 half")  # fmt: skip
    store = _store(s3_env, tmp_path / "c")
    with pytest.raises(ArtifactIncomplete, match=r"'bars/EURUSD/1h.parquet'.*no sha256"):
        store.fetch("bars/EURUSD/1h.parquet")
    assert not (tmp_path / "c" / "bars/EURUSD/1h.parquet").exists()


def test_bytes_that_do_not_match_their_checksum_are_refused_by_name(
    s3_server: S3Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    bucket = s3_env["KTRDR_ARTIFACTS_URL"].split("/")[2]
    claimed = hashlib.sha256(b"the real bytes").hexdigest()
    s3_server.client().put_object(Bucket=bucket, Key="artifacts/models/m/v1/model.pt",
                                  Body=b"damaged", Metadata={"sha256": claimed})  # fmt: skip
    store = _store(s3_env, tmp_path / "c")
    with pytest.raises(ArtifactCorrupt, match=r"'models/m/v1/model.pt' does not match"):
        store.fetch("models/m/v1/model.pt")
    assert not (tmp_path / "c" / "models/m/v1/model.pt").exists()
    # A ref's checksum that the object's does not match: refused before any download.
    store.put("results/r.arrow", b"x")
    with pytest.raises(ArtifactCorrupt, match=r"results/r\.arrow"):
        store.get("results/r.arrow", "0" * 64)


def test_an_unreachable_store_fails_fast_with_the_reason(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    store = _store(s3_env, tmp_path / "c")
    started = time.monotonic()
    with pytest.raises(ArtifactUnavailable, match=r"s3://.*could not look up 'bars/X/1h.parquet'"):
        store.fetch("bars/X/1h.parquet")
    assert time.monotonic() - started < 30


def test_settings_choose_the_backend(s3_env: dict[str, str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("KTRDR_DATA_HOME", str(tmp_path))
    store = WorkerSettings().artifact_store()
    assert isinstance(store, RemoteArtifactStore)
    assert store.cache_root == tmp_path / "cache"
    monkeypatch.delenv("KTRDR_ARTIFACTS_URL")
    assert WorkerSettings().artifact_store().cache_root is None  # the data home's directory
    monkeypatch.setenv("KTRDR_ARTIFACTS_URL", "/mnt/shared")
    with pytest.raises(ValueError, match="use s3://bucket/prefix"):
        WorkerSettings()
