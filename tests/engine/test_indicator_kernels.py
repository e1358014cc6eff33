"""Compiled indicator passes give pandas' bits: the rolling standard deviation on random
series with NaN, ±inf, flat runs, coarse rounding and large offsets (where pandas'
ill-conditioning rule starts a window over), for many windows, min_periods and ddof; the
one-pass RSI and the in-place seeded EMA/Wilder recursion against their Series
formulations, with gaps before, inside and after the seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.indicators.averages import _seeded_recursion, _seeded_recursion_with_gaps
from ktrdr.engine.indicators.oscillators import _rsi_by_series, rsi
from ktrdr.engine.indicators.rolling_var import rolling_std
from ktrdr.engine.indicators.volatility import rolling_std as population_std
from ktrdr.engine.indicators.volatility import volatility

RNG = np.random.default_rng(20261202)


def _series(n: int, trial: int) -> np.ndarray:
    x = RNG.normal(0.0, 1.0, n) * 10.0 ** RNG.integers(-8, 8)
    if trial % 3 == 0:
        x += 10.0 ** RNG.integers(0, 12)  # a level far above the spread: cancellation
    if trial % 4 == 1:
        x[RNG.random(n) < 0.2] = np.nan
    if trial % 5 == 2:
        x[n // 3 : n // 2] = x[0]
    if trial % 7 == 3:
        x[RNG.random(n) < 0.05] = np.inf
    if trial % 11 == 4:
        x[RNG.random(n) < 0.05] = -np.inf
    if trial % 13 == 5:
        x = np.round(x, 1)
    return x


@pytest.mark.parametrize("block", range(10))
def test_rolling_std_is_pandas_bit_for_bit(block: int) -> None:
    for trial in range(block * 200, block * 200 + 200):
        x = _series(int(RNG.integers(1, 300)), trial)
        window = int(RNG.integers(1, 60))
        min_periods = int(RNG.integers(0, window + 1)) if trial % 2 else window
        ddof = int(RNG.integers(0, 2))
        want = pd.Series(x).rolling(window, min_periods=min_periods).std(ddof=ddof)
        got = rolling_std(x, window, min_periods, ddof)
        assert got.tobytes() == want.to_numpy().tobytes(), (trial, window, min_periods, ddof)


def test_the_indicators_keep_their_pandas_values() -> None:
    close = generate_synthetic_bars("1h", 20_000, seed=3)["close"]
    log_returns = np.log(close / close.shift(1))
    want = log_returns.rolling(48, min_periods=48).std(ddof=1) * np.sqrt(8766.0)
    pd.testing.assert_series_equal(
        volatility(close, 48, 8766.0), want, check_names=False, check_exact=True
    )
    want = close.rolling(20, min_periods=20).std(ddof=0)
    pd.testing.assert_series_equal(population_std(close, 20), want, check_exact=True)


@pytest.mark.parametrize("period", [1, 2, 5, 14, 30])
def test_compiled_rsi_is_the_series_formulation(period: int) -> None:
    for trial in range(150):
        n = int(RNG.integers(1, 400))
        x = 100.0 + np.cumsum(RNG.normal(0.0, 1.0, n))
        if trial % 3 == 1:
            x[RNG.random(n) < 0.03] = np.nan  # gaps before, inside or after the seed
        if trial % 5 == 2:
            x[: int(RNG.integers(0, n + 1))] = np.nan  # a leading missing run
        if trial % 4 == 3:
            x[n // 4 : n // 2] = x[0]  # flat: 0/0
        if trial % 17 == 6:
            x[n // 2 :] = np.inf
        series = pd.Series(x, index=pd.RangeIndex(n) + 7)
        with np.errstate(invalid="ignore"):
            want = _rsi_by_series(series, period)
            got = rsi(series, period)
        assert got.index.equals(series.index)
        assert got.to_numpy().tobytes() == want.to_numpy().tobytes(), trial


@pytest.mark.parametrize("period", [1, 3, 14, 50])
def test_seeded_recursion_in_place_is_the_tail_formulation(period: int) -> None:
    for trial in range(150):
        n = int(RNG.integers(1, 400))
        x = 100.0 + np.cumsum(RNG.normal(0.0, 1.0, n))
        if trial % 3 == 1:
            x[RNG.random(n) < 0.03] = np.nan  # gaps before, inside or after the seed
        if trial % 5 == 2:
            x[: int(RNG.integers(0, n + 1))] = np.nan  # a leading missing run
        if trial % 7 == 3 and n > 2:
            x[n // 2] = np.inf
            x[n // 2 + 1] = -np.inf  # the average turns NaN: pandas' restart rule
        series = pd.Series(x, index=pd.RangeIndex(n) + 3)
        for alpha in (2.0 / (period + 1), 1.0 / period):
            with np.errstate(invalid="ignore"):
                want = _seeded_recursion_with_gaps(series, period, alpha)
                got = _seeded_recursion(series, period, alpha)
            assert got.index.equals(series.index)
            assert got.to_numpy().tobytes() == want.to_numpy().tobytes(), trial
