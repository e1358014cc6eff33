"""The artifact store (atomic, checksummed, safe keys) and the table renderings."""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ktrdr.artifacts import ArtifactCorrupt, ArtifactNotFound, LocalArtifactStore, artifact_store
from ktrdr.artifacts.tables import (
    iter_json,
    read_table,
    records,
    thin_positions,
    to_csv,
    to_parquet,
    write_table,
)


def test_put_get_open_round_trip_with_checksum(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    data = b"date,open\n" * 1000
    ref = store.put("uploads/a.csv", data)
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size_bytes == len(data)
    assert store.exists("uploads/a.csv") and not store.exists("uploads/b.csv")
    assert store.get(ref.key, ref.sha256) == data
    with store.open(ref.key, ref.sha256) as handle:
        assert handle.read() == data
    chunked = store.put("uploads/c.csv", iter([data[:7], data[7:]]))
    assert chunked.sha256 == ref.sha256
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["a.csv", "c.csv"]


def test_a_large_buffer_hashed_while_it_is_written_has_its_own_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalArtifactStore(tmp_path)
    data = np.random.default_rng(0).bytes(3 << 20)
    for given in (data, memoryview(data), bytearray(data)):
        ref = store.put("big/a.bin", given)
        assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size_bytes == len(data)
        assert store.get(ref.key, ref.sha256) == data

    def full_disk(fd: int) -> None:
        raise OSError("no space left")

    monkeypatch.setattr("ktrdr.artifacts.store.os.fsync", full_disk)
    with pytest.raises(OSError, match="no space left"):
        store.put("big/b.bin", data)
    assert sorted(p.name for p in (tmp_path / "big").iterdir()) == ["a.bin"]


def test_damaged_artifact_is_refused_on_read(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = store.put("x/y.bin", b"abc")
    (tmp_path / "x" / "y.bin").write_bytes(b"abd")
    with pytest.raises(ArtifactCorrupt, match="does not match its checksum"):
        store.get(ref.key, ref.sha256)
    with pytest.raises(ArtifactCorrupt):
        store.open(ref.key, ref.sha256)
    with pytest.raises(ArtifactNotFound, match=r"no artifact 'x/z\.bin'"):
        store.get("x/z.bin")


def test_failed_write_leaves_neither_the_key_nor_a_temporary_file(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)

    def broken() -> object:
        yield b"partial"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.put("ops/o1/trades.arrow", broken())  # type: ignore[arg-type]
    assert not store.exists("ops/o1/trades.arrow")
    assert list((tmp_path / "ops" / "o1").iterdir()) == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/../b", ".hidden", "a b", ""])
def test_keys_cannot_escape_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="bad artifact key"):
        LocalArtifactStore(tmp_path).put(key, b"x")


def test_shared_store_lives_under_the_data_home(tmp_path: Path) -> None:
    artifact_store(tmp_path).put("k", b"v")
    assert (tmp_path / "artifacts" / "k").read_bytes() == b"v"


def _table() -> pa.Table:
    times = pd.DatetimeIndex(
        ["2020-01-06 00:00", "2020-01-06 00:01:30.25", "2020-01-07 09:00"], tz="UTC"
    )
    return pa.table(
        {
            "timestamp": times,
            "equity": np.array([1.0 / 3.0, math.nan, 1e300]),
            "bars": np.array([1, 2, 3], dtype=np.int64),
            "side": np.array(["long", "short", "long"]),
        }
    )


def test_json_records_use_pandas_iso_times_and_null_for_nan(tmp_path: Path) -> None:
    table = _table()
    expected = [
        {"timestamp": ts.isoformat(), "equity": eq, "bars": b, "side": s}
        for ts, eq, b, s in zip(
            table.column("timestamp").to_pandas(),
            [1.0 / 3.0, None, 1e300],
            [1, 2, 3],
            ["long", "short", "long"],
            strict=True,
        )
    ]
    assert records(table) == expected
    assert expected[1]["timestamp"] == "2020-01-06T00:01:30.250000+00:00"
    assert json.loads(b"".join(iter_json(table))) == expected
    ref = write_table(LocalArtifactStore(tmp_path), "t.arrow", table)
    assert read_table(LocalArtifactStore(tmp_path), ref).to_pandas().equals(table.to_pandas())


def test_csv_and_parquet_carry_the_exact_values() -> None:
    table = _table()
    back = pd.read_csv(io.BytesIO(to_csv(table)))
    assert back["timestamp"].tolist() == [r["timestamp"] for r in records(table)]
    assert back["equity"].tolist()[0] == 1.0 / 3.0 and math.isnan(back["equity"].tolist()[1])
    assert back["equity"].tolist()[2] == 1e300
    assert pq.read_table(io.BytesIO(to_parquet(table))).to_pandas().equals(table.to_pandas())


def test_thinning_keeps_every_kth_row_and_the_last() -> None:
    assert thin_positions(10, 20).tolist() == list(range(10))
    assert thin_positions(10, 4).tolist() == [0, 3, 6, 9]
    assert thin_positions(11, 4).tolist() == [0, 3, 6, 9, 10]
