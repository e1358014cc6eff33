"""Result tables as Arrow IPC artifacts, and the renderings the API serves.

Tables are written once by a worker (columnar Arrow IPC, a regular time column as its
steps: ~16 bytes per equity point; see ktrdr.artifacts.encoding) and rendered on request
as JSON records, CSV or Parquet. The JSON form is the one operation
results always had: ISO-8601 times (``2020-01-06T00:00:00+00:00``), NaN/±inf as null.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ktrdr.artifacts.encoding import decode_table, encode_table
from ktrdr.artifacts.store import ArtifactRef, ArtifactStore

# Uncompressed: written on the backtest's hot path, where lz4 / zstd cost 9-13x the
# serialisation itself (1M-point equity: 10 ms plain, 90 ms lz4, 130 ms zstd, measured);
# Parquet downloads are compressed when asked for.
TABLE_COMPRESSION: str | None = None
ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.file"
_JSON_CHUNK_ROWS = 20_000
_NS_PER_S = 1_000_000_000


class TableFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


MEDIA_TYPES = {
    TableFormat.JSON: "application/json",
    TableFormat.CSV: "text/csv; charset=utf-8",
    TableFormat.PARQUET: "application/vnd.apache.parquet",
}


def write_table(store: ArtifactStore, key: str, table: pa.Table) -> ArtifactRef:
    """Store ``table`` under ``key`` as Arrow IPC; returns once it is durably complete."""
    return store.put(key, memoryview(ipc_file_bytes(encode_table(table))))


def ipc_file_bytes(table: pa.Table) -> pa.Buffer:
    """``table`` as one Arrow IPC file in a buffer allocated once at its final size.

    Sized by a first pass into a counting stream (it copies nothing), then written into
    the buffer: a growing output stream re-allocates and copies as it doubles, which made
    a 1M-point equity curve (24 MB) cost 110-130 ms to serialise instead of 3-6 ms.
    """
    options = pa.ipc.IpcWriteOptions(compression=TABLE_COMPRESSION)
    counter = pa.MockOutputStream()
    with pa.ipc.new_file(counter, table.schema, options=options) as writer:
        writer.write_table(table)
    buffer = pa.allocate_buffer(counter.size())
    with pa.ipc.new_file(pa.FixedSizeBufferWriter(buffer), table.schema, options=options) as w:
        w.write_table(table)
    return buffer


def read_table(store: ArtifactStore, ref: ArtifactRef) -> pa.Table:
    """The table behind ``ref``, checksum verified."""
    data = store.get(ref.key, ref.sha256)
    return decode_table(pa.ipc.open_file(pa.py_buffer(data)).read_all())


def thin_positions(rows: int, max_points: int) -> npt.NDArray[np.int64]:
    """Every k-th row so that at most ~``max_points`` remain, always keeping the last."""
    if rows <= max_points or max_points <= 1:
        return np.arange(rows, dtype=np.int64)
    step = math.ceil(rows / max_points)
    picked = np.arange(0, rows, step, dtype=np.int64)
    if picked[-1] != rows - 1:
        picked = np.append(picked, rows - 1)
    return picked


def _iso_times(column: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """Timestamps as ``pd.Timestamp.isoformat()`` writes them, vectorised for whole seconds."""
    kind = column.type
    assert isinstance(kind, pa.TimestampType)
    stamps = pc.cast(column, pa.timestamp("ns", kind.tz)).to_numpy(zero_copy_only=False)
    stamps = stamps.astype("datetime64[ns]")
    values = stamps.view(np.int64)
    suffix = "+00:00" if kind.tz in ("UTC", "+00:00") else ""
    text = np.datetime_as_string(stamps.astype("datetime64[s]"), unit="s").tolist()
    out: list[str | None] = [t + suffix for t in text]
    # Fractions of a second and missing times: pandas' own formatting (rare, per item).
    for i in np.flatnonzero((values % _NS_PER_S != 0) | np.isnat(stamps)).tolist():
        stamp = pd.Timestamp(stamps[i]).tz_localize(kind.tz) if kind.tz else None
        stamp = stamp if stamp is not None else pd.Timestamp(stamps[i])
        out[i] = None if pd.isna(stamp) else stamp.isoformat()
    return out


def _json_column(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    kind = column.type
    if pa.types.is_timestamp(kind):
        return _iso_times(column)
    if pa.types.is_floating(kind):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        out: list[Any] = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)).tolist():
            out[i] = None
        return out
    if pa.types.is_integer(kind) and column.null_count == 0:
        return list(column.to_numpy(zero_copy_only=False).tolist())
    return list(column.to_pylist())


def records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (column order kept)."""
    names = table.column_names
    columns = [_json_column(table.column(n)) for n in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def iter_json(table: pa.Table) -> Iterator[bytes]:
    """The records as one JSON array, produced in chunks (bounded memory per chunk)."""
    yield b"["
    for start in range(0, table.num_rows, _JSON_CHUNK_ROWS):
        chunk = json.dumps(records(table.slice(start, _JSON_CHUNK_ROWS)), allow_nan=False)
        yield (b"," if start else b"") + chunk[1:-1].encode()
    yield b"]"


def to_csv(table: pa.Table) -> bytes:
    """CSV with the JSON form's values: ISO times, empty cells for NaN/±inf."""
    columns: dict[str, pa.Array] = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            columns[name] = pa.array(_iso_times(column), pa.string())
        elif pa.types.is_floating(column.type):
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            columns[name] = pa.array(values, mask=~np.isfinite(values))
        else:
            columns[name] = column.combine_chunks()
    out = io.BytesIO()
    pa_csv.write_csv(pa.table(columns), out)
    return out.getvalue()


def to_parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def render(table: pa.Table, fmt: TableFormat) -> Iterator[bytes]:
    """``table`` in ``fmt``, as chunks of a response body."""
    if fmt == TableFormat.JSON:
        return iter_json(table)
    if fmt == TableFormat.CSV:
        return iter([to_csv(table)])
    return iter([to_parquet(table)])
