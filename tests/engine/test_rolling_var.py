"""The compiled rolling standard deviation is pandas' bit for bit: on random series with
NaN, ±inf, flat runs, coarse rounding and large offsets (where pandas' ill-conditioning
rule starts a window over), for every window, min_periods and ddof that the indicators use
and more."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.data import generate_synthetic_bars
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
