"""How result tables are laid out in their artifacts: built from numpy without copies, and
a regular time column stored as its steps.

A 1,000,000-bar equity curve is written on every backtest's hot path, and its bytes are
copied, hashed and fsynced: a third of them (8 MB) is the timestamp column, which on a bar
grid is the same step over and over. Such a column is stored run-end encoded: the first
value, then each step between consecutive values, as runs (a grid with weekend gaps is a
few hundred runs). :func:`decode_table` restores the exact column (int64 differences and
their running sum are inverse, overflow included), so every reader of an artifact goes
through ``read_table`` and sees the table as it was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

# Field metadata marking a column stored as run-end encoded steps; the value is the
# original type (unit and time zone), so the column comes back as it was.
STEPS_KEY = b"ktrdr.steps"
# Only worth it (and only done) when the column has at most rows / _MIN_RUN_RATIO runs.
_MIN_ROWS = 1024
_MIN_RUN_RATIO = 16


def arrow_table(columns: Mapping[str, Any]) -> pa.Table:
    """``pa.table(columns)``, with UTC or naive DatetimeIndex columns taken as they are in
    memory (pyarrow's conversion of a tz-aware index costs ~4.5 ms per million rows)."""
    arrays = [_array(value) for value in columns.values()]
    return pa.Table.from_arrays(arrays, names=list(columns))


def _array(value: Any) -> pa.Array:
    if (
        isinstance(value, pd.DatetimeIndex)
        and (value.tz is None or str(value.tz) == "UTC")
        and not value.hasnans
    ):
        stamps = np.ascontiguousarray(value.asi8)
        kind = pa.timestamp(value.unit, None if value.tz is None else "UTC")
        return pa.Array.from_buffers(kind, len(stamps), [None, pa.py_buffer(stamps)])
    return pa.array(value)


def encode_table(table: pa.Table) -> pa.Table:
    """``table`` with each regular timestamp column stored as its run-end encoded steps."""
    fields, columns, changed = [], [], False
    for field, column in zip(table.schema, table.columns, strict=True):
        encoded = _steps(field, column)
        changed |= encoded is not None
        fields.append(field if encoded is None else encoded[0])
        columns.append(column if encoded is None else encoded[1])
    if not changed:
        return table
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return pa.Table.from_arrays(columns, schema=schema)


def _steps(field: pa.Field, column: pa.ChunkedArray) -> tuple[pa.Field, pa.Array] | None:
    kind = field.type
    if not isinstance(kind, pa.TimestampType) or len(column) < _MIN_ROWS or column.null_count:
        return None
    values = column.combine_chunks().view(pa.int64()).to_numpy()
    steps = np.empty_like(values)
    steps[0] = values[0]
    np.subtract(values[1:], values[:-1], out=steps[1:])  # wraps like the sum that undoes it
    changes = np.flatnonzero(steps[1:] != steps[:-1])
    if len(changes) + 1 > len(values) // _MIN_RUN_RATIO:
        return None
    ends_type = pa.int32() if len(values) < 2**31 else pa.int64()
    run_ends = np.append(changes + 1, len(values))
    encoded = pa.RunEndEncodedArray.from_arrays(
        pa.array(run_ends, ends_type), pa.array(steps[run_ends - 1])
    )
    metadata = {**(field.metadata or {}), STEPS_KEY: _type_text(kind).encode()}
    return pa.field(field.name, encoded.type, field.nullable, metadata), encoded


def decode_table(table: pa.Table) -> pa.Table:
    """The table :func:`encode_table` was given (a table it left alone comes back as is)."""
    if not any(STEPS_KEY in (field.metadata or {}) for field in table.schema):
        return table
    fields, columns = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        metadata = dict(field.metadata or {})
        text = metadata.pop(STEPS_KEY, None)
        if text is None:
            fields.append(field)
            columns.append(column)
            continue
        kind = _type_from_text(text.decode())
        runs = column.combine_chunks()
        ends = runs.run_ends.to_numpy().astype(np.int64)
        lengths = np.diff(ends, prepend=0)
        stamps = np.cumsum(np.repeat(runs.values.to_numpy(), lengths), dtype=np.int64)
        columns.append(pa.Array.from_buffers(kind, len(stamps), [None, pa.py_buffer(stamps)]))
        fields.append(pa.field(field.name, kind, field.nullable, metadata or None))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def _type_text(kind: pa.TimestampType) -> str:
    return f"{kind.unit}/{kind.tz or ''}"


def _type_from_text(text: str) -> pa.TimestampType:
    unit, _, tz = text.partition("/")
    return pa.timestamp(unit, tz or None)
