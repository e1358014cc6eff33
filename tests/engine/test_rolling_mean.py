"""The compiled SMA agrees with pandas' rolling mean, NaN gaps included."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.engine.indicators.functions import sma

values = st.lists(
    st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan"))),
    min_size=0,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(values, st.integers(1, 12))
def test_sma_matches_pandas_rolling_mean(data: list[float], period: int) -> None:
    series = pd.Series(data, dtype=float)
    expected = series.rolling(period, min_periods=period).mean()
    got = sma(series, period)
    assert got.isna().tolist() == expected.isna().tolist()
    np.testing.assert_allclose(got.dropna(), expected.dropna(), rtol=1e-9, atol=1e-6)
