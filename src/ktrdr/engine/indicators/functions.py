"""Technical indicators as vectorised numpy/pandas functions.

Conventions: inputs are float Series on the bars' index; results are NaN until enough
history exists (never back-filled, so no value depends on later bars).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sma(x: pd.Series, period: int) -> pd.Series:
    # A compiled single pass: pandas' rolling mean was most of a crossover backtest's time.
    # Imported here so that validating a strategy (the API does) never loads numba.
    from ktrdr.engine.indicators.kernels import rolling_mean

    values = x.to_numpy(dtype=np.float64)
    return pd.Series(rolling_mean(values, period), index=x.index, name=x.name, copy=False)


def ema(x: pd.Series, period: int) -> pd.Series:
    """EMA with alpha = 2/(period+1), started at the first value, NaN for the first period-1."""
    return x.ewm(span=period, adjust=False, min_periods=period).mean()


def wilder(x: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing (RMA): seeded with the mean of the first ``period`` values, then
    y[t] = y[t-1] + (x[t] - y[t-1]) / period. NaN before the seed."""
    values = x.to_numpy(dtype=float)
    out = np.full(len(values), np.nan)
    valid = np.flatnonzero(~np.isnan(values))
    if len(valid) < period:
        return pd.Series(out, index=x.index)
    first = valid[0]
    seed_at = first + period - 1
    tail = values[seed_at:].copy()
    tail[0] = values[first : seed_at + 1].mean()
    # ewm(adjust=False) with alpha=1/period is exactly Wilder's recursion from the seed.
    out[seed_at:] = pd.Series(tail).ewm(alpha=1.0 / period, adjust=False).mean().to_numpy()
    return pd.Series(out, index=x.index, copy=False)


def rsi(x: pd.Series, period: int) -> pd.Series:
    """Wilder's RSI: 100 - 100 / (1 + avg gain / avg loss), with Wilder-smoothed averages."""
    diff = x.diff()
    gain = wilder(diff.clip(lower=0.0), period)
    loss = wilder((-diff).clip(lower=0.0), period)
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = gain / loss
        out = 100.0 - 100.0 / (1.0 + rs)
    # No losses at all in the window: RSI is 100 by definition.
    return out.where(~((loss == 0) & gain.notna()), 100.0)


def macd(x: pd.Series, fast: int, slow: int, signal: int) -> pd.DataFrame:
    line = ema(x, fast) - ema(x, slow)
    sig = ema(line, signal)
    return pd.DataFrame({"macd": line, "signal": sig, "histogram": line - sig})


def bollinger(x: pd.Series, period: int, num_std: float) -> pd.DataFrame:
    """Bollinger Bands with the population standard deviation (ddof=0), as Bollinger defines."""
    mid = sma(x, period)
    std = x.rolling(period, min_periods=period).std(ddof=0)
    upper, lower = mid + num_std * std, mid - num_std * std
    width = upper - lower
    return pd.DataFrame(
        {
            "upper": upper,
            "middle": mid,
            "lower": lower,
            "percent_b": (x - lower) / width.where(width != 0),
            "bandwidth": width / mid,
        }
    )


def true_range(high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    """max(high-low, |high-prev close|, |low-prev close|); the first bar uses high-low."""
    prev = close.shift(1)
    ranges = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1)
    return ranges.max(axis=1, skipna=True)


def atr(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.Series:
    return wilder(true_range(high, low, close), period)


def adx(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.DataFrame:
    """Wilder's ADX with +DI/-DI; directional movement starts at the second bar."""
    up = high.diff()
    down = -low.diff()
    plus_dm = up.where((up > down) & (up > 0), 0.0).where(up.notna())
    minus_dm = down.where((down > up) & (down > 0), 0.0).where(down.notna())
    tr = true_range(high, low, close).where(close.shift(1).notna())
    tr_s = wilder(tr, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        plus_di = 100.0 * wilder(plus_dm, period) / tr_s
        minus_di = 100.0 * wilder(minus_dm, period) / tr_s
        total = plus_di + minus_di
        dx = 100.0 * (plus_di - minus_di).abs() / total.where(total != 0)
    return pd.DataFrame({"adx": wilder(dx, period), "plus_di": plus_di, "minus_di": minus_di})


def roc(x: pd.Series, period: int) -> pd.Series:
    """Rate of change in percent over ``period`` bars."""
    prev = x.shift(period)
    return (x - prev) / prev * 100.0


def stochastic(
    high: pd.Series, low: pd.Series, close: pd.Series, k_period: int, d_period: int
) -> pd.DataFrame:
    lowest = low.rolling(k_period, min_periods=k_period).min()
    highest = high.rolling(k_period, min_periods=k_period).max()
    rng = (highest - lowest).where(highest != lowest)
    k = 100.0 * (close - lowest) / rng
    return pd.DataFrame({"k": k, "d": sma(k, d_period)})


def williams_r(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.Series:
    lowest = low.rolling(period, min_periods=period).min()
    highest = high.rolling(period, min_periods=period).max()
    return -100.0 * (highest - close) / (highest - lowest).where(highest != lowest)


def cci(
    high: pd.Series, low: pd.Series, close: pd.Series, period: int, constant: float
) -> pd.Series:
    """Commodity Channel Index on the typical price with the mean absolute deviation."""
    tp = (high + low + close) / 3.0
    mean = sma(tp, period)
    # Mean absolute deviation around each window's own mean (not vectorisable by a
    # cumulative trick), computed on a strided view instead of a Python apply.
    values = tp.to_numpy(dtype=float)
    mad = np.full(len(values), np.nan)
    if len(values) >= period:
        windows = np.lib.stride_tricks.sliding_window_view(values, period)
        mad[period - 1 :] = np.abs(windows - windows.mean(axis=1, keepdims=True)).mean(axis=1)
    mad_s = pd.Series(mad, index=tp.index)
    return (tp - mean) / (constant * mad_s.where(mad_s != 0))


def obv(close: pd.Series, volume: pd.Series) -> pd.Series:
    """On-balance volume, starting at 0 on the first bar; unchanged closes add nothing."""
    direction = np.sign(close.diff().fillna(0.0))
    return (direction * volume).cumsum()


def vwap(
    high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series, period: int
) -> pd.Series:
    """Rolling VWAP of the typical price over ``period`` bars (sessions don't exist 24/7)."""
    tp = (high + low + close) / 3.0
    pv = (tp * volume).rolling(period, min_periods=period).sum()
    vol = volume.rolling(period, min_periods=period).sum()
    return pv / vol.where(vol != 0)
