"""The worker's shared trees against a real S3-compatible server (moto's, a process):
checkpoints that follow a run to another host, and bars the store no longer has."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from ktrdr.artifacts import artifact_store
from ktrdr.telemetry.metrics import JobMetrics
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.stores import SharedTree, bars_for, checkpoint_store
from tests.support.s3 import S3Server


@pytest.fixture
def env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = s3_server.env(s3_server.new_bucket())
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def host(home: Path, env: dict[str, str]) -> JobContext:
    """What a job on a worker with data home ``home`` sees of the store."""
    store = artifact_store(home, env["KTRDR_ARTIFACTS_URL"])
    metrics = JobMetrics(registry=CollectorRegistry())
    seen = SimpleNamespace(
        artifacts=store, data_home=str(home), metrics=metrics, operation_id="op_training_1"
    )
    return cast(JobContext, seen)


def _state(epoch: int) -> Any:
    torch = pytest.importorskip("torch")
    from ktrdr.engine.training.checkpoint import CheckpointState

    weights = {"w": torch.full((2,), float(epoch))}
    return CheckpointState(
        epoch=epoch, model=weights, optimizer={}, generator=torch.get_rng_state(),
        best_loss=1.0 / epoch, best_epoch=epoch, best_model=weights, history=[],
    )  # fmt: skip


def test_a_damaged_checkpoint_object_is_skipped_for_the_one_before(
    s3_server: S3Server, env: dict[str, str], tmp_path: Path
) -> None:
    writer = checkpoint_store(host(tmp_path / "a", env), "op_training_1")
    writer.save(_state(1))
    writer.save(_state(2))
    bucket = env["KTRDR_ARTIFACTS_URL"].split("/")[2]
    client = s3_server.client()
    key = "artifacts/checkpoints/op_training_1/epoch-000002.pt"
    meta = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    client.put_object(Bucket=bucket, Key=key, Body=b"torn write", Metadata=meta)

    resumed = checkpoint_store(host(tmp_path / "b", env), "op_training_1").latest()
    assert resumed is not None and resumed.epoch == 1
    intact = checkpoint_store(host(tmp_path / "c", env), "op_training_1")
    intact.clear()
    assert client.list_objects_v2(Bucket=bucket, Prefix="artifacts/checkpoints/")["KeyCount"] == 0
    assert checkpoint_store(host(tmp_path / "d", env), "op_training_1").latest() is None


def test_bars_the_store_no_longer_has_are_not_read_from_the_cache(
    env: dict[str, str], tmp_path: Path
) -> None:
    import pandas as pd

    from ktrdr.engine.data import generate_synthetic_bars
    from ktrdr.engine.errors import DataNotFoundError

    ctx = host(tmp_path / "a", env)
    bars = generate_synthetic_bars("1h", 200, seed=1)
    bars_for(ctx, "XYZ", "1h").save("XYZ", "1h", bars, source="synthetic")
    SharedTree(ctx, "bars").push("XYZ/1h.parquet")
    reader = host(tmp_path / "b", env)
    assert isinstance(bars_for(reader, "XYZ", "1h").load("XYZ", "1h"), pd.DataFrame)
    ctx.artifacts.delete("bars/XYZ/1h.parquet")  # type: ignore[union-attr]
    with pytest.raises(DataNotFoundError, match="no data for XYZ 1h"):
        bars_for(reader, "XYZ", "1h").load("XYZ", "1h")
