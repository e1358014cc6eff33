"""Result tables built from numpy equal to pyarrow's own conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ktrdr.artifacts.encoding import arrow_table

ROWS = 50_000


def _grid(unit: str = "us", tz: str | None = "UTC") -> pd.DatetimeIndex:
    """Minute bars with weekend gaps and one odd step: a few hundred runs of steps."""
    index = pd.date_range("2020-01-06", periods=ROWS * 2, freq="1min", tz=tz, unit=unit)
    index = index[index.day_of_week < 5][:ROWS]
    return index.delete(1234)


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
