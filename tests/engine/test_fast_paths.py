"""The compiled fast paths give the bits of the formulations they replace: each is
compared with that formulation (pandas or NumPy) on random series with gaps, flat runs
and NaN, so a backtest's results did not move when they came in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.data.resample import _AGG, _rule, join_closed, resample_bars
from ktrdr.engine.indicators.averages import ema
from ktrdr.engine.indicators.kernels import ewm_mean
from ktrdr.engine.indicators.rolling_kernels import rolling_mean, rolling_mean_pair, rolling_means
from ktrdr.engine.indicators.volatility import true_range
from ktrdr.engine.signal_kernels import crossover_codes, fuzzy_decisions
from ktrdr.engine.timeframes import check_timeframe

RNG = np.random.default_rng(20261202)


def _series(n: int, nan_share: float = 0.0, flat: bool = False) -> np.ndarray:
    x = RNG.normal(100.0, 3.0, n) * 10.0 ** RNG.integers(-3, 4)
    if nan_share:
        x[RNG.random(n) < nan_share] = np.nan
    if flat:
        x[n // 3 : n // 2] = 42.0
    return x


def test_sma_pair_is_two_smas_value_for_value() -> None:
    for trial in range(200):
        x = _series(int(RNG.integers(1, 400)), 0.1 if trial % 2 else 0.0, trial % 5 == 0)
        p, q = int(RNG.integers(1, 40)), int(RNG.integers(1, 40))
        a, b = rolling_mean_pair(x, p, q)
        np.testing.assert_array_equal(a, rolling_mean(x, p))
        np.testing.assert_array_equal(b, rolling_mean(x, q))


def test_sma_lanes_are_smas_value_for_value() -> None:
    # 1 to 9 periods: four-lane passes, a padded three, a pair and a single one.
    for trial in range(200):
        x = _series(int(RNG.integers(1, 400)), 0.1 if trial % 2 else 0.0, trial % 5 == 0)
        periods = [int(p) for p in RNG.integers(1, 40, int(RNG.integers(1, 10)))]
        got = rolling_means(x, periods)
        assert len(got) == len(periods)
        for values, period in zip(got, periods, strict=True):
            np.testing.assert_array_equal(values, rolling_mean(x, period))


def test_sma_lanes_write_every_bar_of_the_arrays_they_are_given() -> None:
    """Sweeps hand the lanes unfilled arrays (``cache_smas``): the NaN of a window not yet
    full (the start, gaps) is written too, whatever the memory held."""
    from ktrdr.engine.indicators.rolling_kernels import rolling_means_into

    for trial in range(50):
        x = _series(int(RNG.integers(1, 300)), 0.1 if trial % 2 else 0.0)
        periods = [int(p) for p in RNG.integers(1, 40, int(RNG.integers(1, 6)))]
        outputs = [np.full(len(x), 123.0) for _ in periods]
        rolling_means_into(x, periods, outputs)
        for values, period in zip(outputs, periods, strict=True):
            np.testing.assert_array_equal(values, rolling_mean(x, period))


@pytest.mark.parametrize("alpha", [2 / 51, 1 / 14, 0.5, 1.0, 2 / 3, 1 / 2999])
def test_ewm_kernel_is_pandas_ewm_bit_for_bit(alpha: float) -> None:
    for trial in range(100):
        x = _series(int(RNG.integers(1, 400)), flat=trial % 4 == 0)
        want = pd.Series(x).ewm(alpha=alpha, adjust=False).mean().to_numpy()
        np.testing.assert_array_equal(ewm_mean(x, alpha), want)


def test_ema_with_a_gap_after_its_seed_keeps_pandas_weights() -> None:
    x = _series(300)
    x[150:153] = np.nan  # pandas decays the weight over missing values: its own rule
    tail = x[19:].copy()
    tail[0] = x[:20].mean()
    want = pd.Series(tail).ewm(alpha=2 / 21, adjust=False).mean().to_numpy()
    np.testing.assert_array_equal(ema(pd.Series(x), 20).to_numpy()[19:], want)


def test_true_range_is_the_max_of_the_three_ranges() -> None:
    h = RNG.normal(101.0, 1.0, 1000)
    low = h - RNG.random(1000)
    c = (h + low) / 2
    h[5] = np.nan
    high_s, low_s, close_s = pd.Series(h), pd.Series(low), pd.Series(c)
    prev = close_s.shift(1)
    parts = [high_s - low_s, (high_s - prev).abs(), (low_s - prev).abs()]
    want = pd.concat(parts, axis=1).max(axis=1, skipna=False)
    np.testing.assert_array_equal(true_range(high_s, low_s, close_s).to_numpy(), want.to_numpy())


@pytest.mark.parametrize("market", ["crypto", "fx"])
@pytest.mark.parametrize(("base", "higher"), [("1h", "4h"), ("1h", "1d"), ("5m", "1h")])
def test_resampling_by_runs_is_pandas_resample(market: str, base: str, higher: str) -> None:
    bars = generate_synthetic_bars(base, 4000, seed=3, market=market)  # type: ignore[arg-type]
    bars = bars.drop(bars.index[RNG.random(len(bars)) < 0.2])  # missing bars, empty days
    want = bars.resample(_rule(higher), label="left", closed="left").agg(_AGG)
    want = want.dropna(subset=["close"])
    got = resample_bars(bars, higher)
    assert got.index.equals(want.index)
    for column in _AGG:
        np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy())


@pytest.mark.parametrize("higher", ["4h", "1d", "1w"])
def test_closed_bar_join_is_a_backward_as_of_merge(higher: str) -> None:
    bars = generate_synthetic_bars("1h", 3000, seed=4, market="fx")
    bars = bars.drop(bars.index[RNG.random(len(bars)) < 0.3])
    values = resample_bars(bars, higher)[["close", "volume"]].rolling(3).mean()
    for base in (bars.index, bars.index[::7]):
        right = values.set_axis(values.index + check_timeframe(higher)).sort_index()
        want = pd.merge_asof(pd.DataFrame(index=base), right, left_index=True,
                             right_index=True, direction="backward")  # fmt: skip
        got = join_closed(values, higher, base)
        for column in values:
            np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy())


def _numpy_crossover(fast: np.ndarray, slow: np.ndarray, eps: float) -> np.ndarray:
    """The crossover rule in NumPy: a side is more than ``eps`` of the larger magnitude
    (fmax ignores a NaN) apart; a code where the side starts, after a bar where both exist."""
    gap = fast - slow
    with np.errstate(invalid="ignore"):
        tol = eps * np.fmax(np.abs(fast), np.abs(slow))
        above, below = gap > tol, gap < -tol
    codes = np.zeros(len(fast), np.int8)
    known = ~np.isnan(gap[:-1])
    sold = known & below[1:] & ~below[:-1]
    bought = known & above[1:] & ~above[:-1] & ~sold
    codes[1:][sold] = 2
    codes[1:][bought] = 1
    return codes


def test_crossover_codes_are_the_numpy_formulation() -> None:
    for trial in range(300):
        n = int(RNG.integers(0, 400))
        fast = _series(n, 0.1 if trial % 2 else 0.0, trial % 5 == 0)
        slow = _series(n, 0.05 if trial % 3 else 0.0, trial % 7 == 0)
        if trial % 4 == 0 and n:  # lines within rounding of each other: no side
            slow = fast * (1.0 + RNG.choice([0.0, 1e-13, -1e-13, 1e-11], n))
        eps = [1e-12, 0.0, 1e-3][trial % 3]
        got = crossover_codes(fast, slow, eps, 1, 2)
        np.testing.assert_array_equal(got, _numpy_crossover(fast, slow, eps))


def test_fuzzy_decisions_are_the_sorted_formulation() -> None:
    codes = np.array([1, 2, 3], dtype=np.int8)
    for _ in range(50):
        n = int(RNG.integers(1, 300))
        # Coarse values: ties between actions happen often.
        rows = tuple(np.round(RNG.random(n), 1) for _ in codes)
        stacked = np.vstack(rows)
        top, best = stacked.max(axis=0), stacked.argmax(axis=0)
        runner_up = np.sort(stacked, axis=0)[-2]
        want = np.where((top >= 0.5) & (top > runner_up), codes[best], 0)
        np.testing.assert_array_equal(fuzzy_decisions(rows, 0.5, codes, 0), want)


def test_wilder_pair_is_two_wilders() -> None:
    from ktrdr.engine.indicators.averages import wilder, wilder_pair

    for trial in range(150):
        n = int(RNG.integers(1, 300))
        x, y = RNG.normal(0.0, 1.0, n), RNG.normal(0.0, 1.0, n)
        x[: int(RNG.integers(0, n))] = np.nan
        y[np.isnan(x)] = np.nan
        if trial % 5 == 0 and n > 40:
            x[30] = y[30] = np.nan  # a gap after the seed: pandas' weights, one by one
        if trial % 7 == 0:
            y[int(RNG.integers(0, n))] = np.nan  # different gaps: one by one as well
        period = int(RNG.integers(1, 30))
        a, b = wilder_pair(pd.Series(x), pd.Series(y), period)
        np.testing.assert_array_equal(a.to_numpy(), wilder(pd.Series(x), period).to_numpy())
        np.testing.assert_array_equal(b.to_numpy(), wilder(pd.Series(y), period).to_numpy())
