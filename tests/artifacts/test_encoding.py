"""Result tables' layout in their artifacts: regular time columns stored as their steps and
restored exactly; tables built from numpy equal to pyarrow's own conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ktrdr.artifacts import LocalArtifactStore
from ktrdr.artifacts.encoding import STEPS_KEY, arrow_table, decode_table, encode_table
from ktrdr.artifacts.tables import read_table, write_table

ROWS = 50_000


def _grid(unit: str = "us", tz: str | None = "UTC") -> pd.DatetimeIndex:
    """Minute bars with weekend gaps and one odd step: a few hundred runs of steps."""
    index = pd.date_range("2020-01-06", periods=ROWS * 2, freq="1min", tz=tz, unit=unit)
    index = index[index.day_of_week < 5][:ROWS]
    return index.delete(1234)


def _equity(times: pd.DatetimeIndex) -> pa.Table:
    rng = np.random.default_rng(3)
    table = pa.table({"timestamp": times, "equity": rng.random(len(times)),
                      "close": rng.random(len(times))})  # fmt: skip
    return table.replace_schema_metadata({b"origin": b"test"})


@pytest.mark.parametrize(("unit", "tz"), [("us", "UTC"), ("ns", "UTC"), ("s", None)])
def test_a_bar_grid_is_stored_as_steps_and_read_back_exactly(
    tmp_path: Path, unit: str, tz: str | None
) -> None:
    table = _equity(_grid(unit, tz))
    encoded = encode_table(table)
    assert pa.types.is_run_end_encoded(encoded.schema.field("timestamp").type)
    assert encoded.schema.field("timestamp").metadata[STEPS_KEY]
    assert encoded.column("timestamp").nbytes < 10_000
    assert decode_table(encoded).equals(table, check_metadata=True)
    store = LocalArtifactStore(tmp_path)
    ref = write_table(store, "eq.arrow", table)
    assert ref.size_bytes < 16 * ROWS + 10_000  # equity and close only
    back = read_table(store, ref)
    assert back.equals(table, check_metadata=True)
    assert back.column("timestamp").to_pandas().tolist() == list(table["timestamp"].to_pandas())


def test_extreme_values_and_several_chunks_round_trip() -> None:
    ends = np.array([np.iinfo(np.int64).max - 5, np.iinfo(np.int64).min + 1], dtype=np.int64)
    values = np.concatenate([np.arange(ROWS, dtype=np.int64) * 60, ends])
    column = pa.chunked_array([pa.array(values[:10]), pa.array(values[10:])])
    table = pa.table({"t": column.cast(pa.timestamp("ns"))})
    assert pa.types.is_run_end_encoded(encode_table(table).schema.field("t").type)
    assert decode_table(encode_table(table)).column("t").to_numpy().view(np.int64).tolist() == (
        values.tolist()
    )


def test_irregular_short_or_missing_times_are_stored_as_they_are() -> None:
    rng = np.random.default_rng(1)
    irregular = pd.DatetimeIndex(np.sort(rng.integers(0, 10**15, ROWS)), tz="UTC")
    with_gap = pd.Series(_grid()).astype(object)
    with_gap[7] = None
    for times in (irregular, _grid()[:100], pd.DatetimeIndex(with_gap)):
        table = pa.table({"timestamp": times, "x": np.zeros(len(times))})
        assert encode_table(table) is table
        assert decode_table(table) is table


def test_field_metadata_other_than_the_encoding_survives() -> None:
    table = _equity(_grid())
    field = table.schema.field("timestamp").with_metadata({b"note": b"bar open"})
    table = table.cast(table.schema.set(0, field))
    back = decode_table(encode_table(table))
    assert back.schema.field("timestamp").metadata == {b"note": b"bar open"}
    assert back.equals(table, check_metadata=True)


@pytest.mark.parametrize(
    "times",
    [
        _grid(),
        _grid("ns", None),
        pd.DatetimeIndex(["2020-01-01", None, "2020-01-03"], tz="UTC"),
        pd.date_range("2020-01-01", periods=5, freq="h", tz="Europe/London"),
    ],
)
def test_tables_built_from_numpy_equal_pyarrows_conversion(times: pd.DatetimeIndex) -> None:
    columns = {
        "timestamp": times,
        "value": np.linspace(0, 1, len(times)),
        "side": np.where(np.arange(len(times)) % 2, "long", "short"),
        "bars": np.arange(len(times)),
    }
    built = arrow_table(columns)
    assert built.equals(pa.table(columns), check_metadata=True)
    assert built.schema == pa.table(columns).schema
