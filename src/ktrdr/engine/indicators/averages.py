"""Moving averages and smoothers, seeded the way TA-Lib seeds them.

Recursive averages (EMA, Wilder's RMA, KAMA) start from a seed and carry it for ever; two
libraries that seed differently disagree long after any practical warm-up. KTRDR follows
TA-Lib's conventions, so a value can be checked against the reference to 1e-9: an EMA is
seeded with the simple mean of its first ``period`` values (not the first value), and the
first value appears at bar ``period - 1`` of the input's first valid run.

Inputs are float Series on the bars' index; results are NaN until enough history exists
(never back-filled, so no value depends on later bars).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sma(x: pd.Series, period: int) -> pd.Series:
    # A compiled single pass: pandas' rolling mean was most of a crossover backtest's time.
    # Imported here so that validating a strategy (the API does) never loads numba.
    from ktrdr.engine.indicators.rolling_kernels import rolling_mean

    values = x.to_numpy(dtype=np.float64)
    return pd.Series(rolling_mean(values, period), index=x.index, name=x.name, copy=False)


def _seeded_recursion(x: pd.Series, period: int, alpha: float) -> pd.Series:
    """y = y_prev + alpha * (x - y_prev), seeded at the ``period``-th valid value with the
    mean of the first ``period`` valid values; NaN before the seed."""
    from ktrdr.engine.indicators.kernels import first_number, seeded_ewm

    values = x.to_numpy(dtype=float)
    # Without a gap from the first value on, one compiled pass writes the result in place
    # (the same steps as below, without its mask, tail copy and NaN scans).
    first = first_number(values)
    seed_at = first + period - 1
    if first >= 0 and seed_at < len(values):
        seed = values[first : seed_at + 1].mean()
        if not np.isnan(seed):
            out, complete = seeded_ewm(values, seed_at, float(seed), alpha)
            if complete:
                return pd.Series(out, index=x.index, copy=False)
    return _seeded_recursion_with_gaps(x, period, alpha)


def _seeded_recursion_with_gaps(x: pd.Series, period: int, alpha: float) -> pd.Series:
    values = x.to_numpy(dtype=float)
    out = np.full(len(values), np.nan)
    present = ~np.isnan(values)
    if np.count_nonzero(present) < period:
        return pd.Series(out, index=x.index)
    first = int(present.argmax())  # the first valid value (no index array of them all)
    seed_at = first + period - 1
    tail = values[seed_at:].copy()
    tail[0] = values[first : seed_at + 1].mean()
    # ewm(adjust=False) is exactly this recursion once its first value is the seed. The
    # compiled copy of pandas' steps gives the same bits without pandas' set-up; pandas'
    # weights across missing values are its own, so a tail with gaps stays with pandas.
    if np.isnan(tail).any():
        out[seed_at:] = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    else:
        from ktrdr.engine.indicators.kernels import ewm_mean

        out[seed_at:] = ewm_mean(tail, alpha)
    return pd.Series(out, index=x.index, copy=False)


def wilder_pair(x: pd.Series, y: pd.Series, period: int) -> tuple[pd.Series, pd.Series]:
    """``wilder(x, period), wilder(y, period)`` for two series missing the same bars (RSI's
    gains and losses): the seeds as ``_seeded_recursion`` takes them, both recursions in
    one compiled pass; anything else goes through ``wilder`` one by one."""
    xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
    missing = np.isnan(xv)
    if np.count_nonzero(~missing) < period or not np.array_equal(missing, np.isnan(yv)):
        return wilder(x, period), wilder(y, period)
    first = int((~missing).argmax())
    seed_at = first + period - 1
    tails = []
    for values in (xv, yv):
        tail = values[seed_at:].copy()
        tail[0] = values[first : seed_at + 1].mean()
        tails.append(tail)
    if np.isnan(tails[0]).any():
        return wilder(x, period), wilder(y, period)
    from ktrdr.engine.indicators.kernels import ewm_mean_pair

    outs = []
    for smoothed in ewm_mean_pair(tails[0], tails[1], 1.0 / period):
        out = np.full(len(xv), np.nan)
        out[seed_at:] = smoothed
        outs.append(pd.Series(out, index=x.index, copy=False))
    return outs[0], outs[1]


def ema(x: pd.Series, period: int) -> pd.Series:
    """EMA with alpha = 2/(period+1), seeded with the SMA of the first ``period`` values."""
    return _seeded_recursion(x, period, 2.0 / (period + 1))


def wilder(x: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing (RMA): alpha = 1/period, seeded with the first ``period`` values'
    mean."""
    return _seeded_recursion(x, period, 1.0 / period)


def wma(x: pd.Series, period: int) -> pd.Series:
    """Linearly weighted moving average: weights 1..period, the newest bar heaviest."""
    values = x.to_numpy(dtype=float)
    out = np.full(len(values), np.nan)
    if len(values) >= period:
        weights = np.arange(1, period + 1, dtype=float)
        windows = np.lib.stride_tricks.sliding_window_view(values, period)
        out[period - 1 :] = windows @ weights / weights.sum()
    return pd.Series(out, index=x.index, copy=False)


def dema(x: pd.Series, period: int) -> pd.Series:
    """Double EMA: 2·EMA − EMA(EMA)."""
    e1 = ema(x, period)
    return 2.0 * e1 - ema(e1, period)


def tema(x: pd.Series, period: int) -> pd.Series:
    """Triple EMA: 3·EMA − 3·EMA(EMA) + EMA(EMA(EMA))."""
    e1 = ema(x, period)
    e2 = ema(e1, period)
    return 3.0 * e1 - 3.0 * e2 + ema(e2, period)


def trima(x: pd.Series, period: int) -> pd.Series:
    """Triangular moving average: an SMA of an SMA (TA-Lib's split of ``period``)."""
    if period % 2:
        first = second = (period + 1) // 2
    else:
        first, second = period // 2, period // 2 + 1
    return sma(sma(x, first), second)


def kama(x: pd.Series, period: int, fast: int = 2, slow: int = 30) -> pd.Series:
    """Kaufman's adaptive moving average: the efficiency ratio |x_t − x_{t−n}| / Σ|Δx|
    blends between the fast and slow EMA constants, squared. Seeded with x[period-1]; the
    first value is at bar ``period`` (TA-Lib's convention)."""
    from ktrdr.engine.indicators.kernels import kama_kernel

    values = x.to_numpy(dtype=np.float64)
    fast_sc, slow_sc = 2.0 / (fast + 1), 2.0 / (slow + 1)
    return pd.Series(kama_kernel(values, period, fast_sc, slow_sc), index=x.index, copy=False)
