"""Ranges, bands, channels and trend lines (ATR, Bollinger, Keltner, Donchian, SAR, …).

True range needs the previous close, so it starts at the second bar (TA-Lib's TRANGE):
counting the first bar's high − low would seed ATR and ADX with a move that has no
previous close to be measured from.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.indicators.averages import ema, sma, wilder
from ktrdr.engine.indicators.oscillators import snap_noise


def true_range(high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    """max(high − low, |high − prev close|, |low − prev close|); NaN on the first bar."""
    from ktrdr.engine.indicators.kernels import true_range_kernel

    values = true_range_kernel(
        high.to_numpy(dtype=np.float64),
        low.to_numpy(dtype=np.float64),
        close.to_numpy(dtype=np.float64),
    )
    return pd.Series(values, index=close.index, copy=False)


def atr(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.Series:
    """Wilder's average true range, first value at bar ``period``."""
    return wilder(true_range(high, low, close), period)


def natr(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.Series:
    """ATR as a percentage of the close."""
    return 100.0 * atr(high, low, close, period) / close.where(close != 0)


def adx(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.DataFrame:
    """Wilder's ADX with +DI/-DI (TA-Lib's running sums; see ``kernels.directional_kernel``)."""
    from ktrdr.engine.indicators.kernels import directional_kernel

    plus_di, minus_di, value = directional_kernel(
        high.to_numpy(dtype=np.float64),
        low.to_numpy(dtype=np.float64),
        close.to_numpy(dtype=np.float64),
        period,
    )
    return pd.DataFrame({"adx": value, "plus_di": plus_di, "minus_di": minus_di}, index=close.index)


def _rolling_std(x: pd.Series, period: int, ddof: int) -> pd.Series:
    """``x.rolling(period, min_periods=period).std(ddof=ddof)``, compiled (the same bits)."""
    from ktrdr.engine.indicators.rolling_var import rolling_std as kernel

    values = kernel(x.to_numpy(dtype=np.float64), period, period, ddof)
    return pd.Series(values, index=x.index, name=x.name, copy=False)


def rolling_std(x: pd.Series, period: int) -> pd.Series:
    """Population standard deviation (ddof=0) over ``period`` bars, as TA-Lib's STDDEV."""
    return _rolling_std(x, period, 0)


def bollinger(x: pd.Series, period: int, num_std: float) -> pd.DataFrame:
    """Bollinger Bands with the population standard deviation (ddof=0), as Bollinger defines."""
    mid = sma(x, period)
    std = rolling_std(x, period)
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


def keltner(
    high: pd.Series, low: pd.Series, close: pd.Series, period: int, atr_period: int, mult: float
) -> pd.DataFrame:
    """Keltner channel: EMA(close, period) ± mult·ATR(atr_period)."""
    mid = ema(close, period)
    band = mult * atr(high, low, close, atr_period)
    return pd.DataFrame({"middle": mid, "upper": mid + band, "lower": mid - band})


def donchian(high: pd.Series, low: pd.Series, period: int) -> pd.DataFrame:
    """Donchian channel: highest high and lowest low of the last ``period`` bars."""
    upper = high.rolling(period, min_periods=period).max()
    lower = low.rolling(period, min_periods=period).min()
    return pd.DataFrame({"upper": upper, "lower": lower, "middle": (upper + lower) / 2.0})


def zscore(x: pd.Series, period: int) -> pd.Series:
    """(x − SMA) / population σ over ``period`` bars; NaN on a flat window."""
    std = rolling_std(x, period)
    return (x - sma(x, period)) / std.where(std > 1e-12 * x.abs())


def log_return_sigma(values: npt.NDArray[np.float64], period: int) -> npt.NDArray[np.float64]:
    """Sample σ (ddof=1) of one-bar log returns over ``period`` bars, not annualised (an
    array: the sizing rule reads it without a Series around it)."""
    from ktrdr.engine.indicators.rolling_var import rolling_std as kernel

    ratios = np.full(len(values), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(values[1:], values[:-1], out=ratios[1:])
        returns = np.log(ratios, out=ratios)
    return kernel(returns, period, period, 1)


def volatility(x: pd.Series, period: int, bars_per_year: float | None) -> pd.Series:
    """Sample σ (ddof=1) of one-bar log returns over ``period`` bars, annualised by
    √bars_per_year when given (the timeframe's bars per year)."""
    sigma = log_return_sigma(x.to_numpy(dtype=np.float64), period)
    if bars_per_year:
        sigma *= np.sqrt(bars_per_year)
    return pd.Series(sigma, index=x.index, name=x.name, copy=False)


def linreg_slope(x: pd.Series, period: int) -> pd.Series:
    """Least-squares slope of the last ``period`` values against bar number (per bar)."""
    values = x.to_numpy(dtype=float)
    out = np.full(len(values), np.nan)
    if len(values) >= period >= 2:
        t = np.arange(period, dtype=float)
        t -= t.mean()
        windows = np.lib.stride_tricks.sliding_window_view(values, period)
        out[period - 1 :] = windows @ t / (t @ t)
    return snap_noise(pd.Series(out, index=x.index, copy=False), x)


def psar(high: pd.Series, low: pd.Series, acceleration: float, maximum: float) -> pd.Series:
    """Parabolic SAR (Wilder), as TA-Lib computes it."""
    from ktrdr.engine.indicators.kernels import psar_kernel

    values = psar_kernel(
        high.to_numpy(dtype=np.float64), low.to_numpy(dtype=np.float64), acceleration, maximum
    )
    return pd.Series(values, index=high.index, copy=False)


def supertrend(
    high: pd.Series, low: pd.Series, close: pd.Series, period: int, mult: float
) -> pd.DataFrame:
    """SuperTrend: hl2 ± mult·ATR bands that only tighten; the line is the lower band in an
    up-trend, the upper band in a down-trend; direction +1/-1."""
    from ktrdr.engine.indicators.kernels import supertrend_kernel

    mid = (high + low) / 2.0
    band = mult * atr(high, low, close, period)
    line, direction = supertrend_kernel(
        close.to_numpy(dtype=np.float64),
        (mid + band).to_numpy(dtype=np.float64),
        (mid - band).to_numpy(dtype=np.float64),
    )
    return pd.DataFrame({"value": line, "direction": direction}, index=close.index)


def ichimoku(
    high: pd.Series, low: pd.Series, conversion: int, base: int, span_b: int
) -> pd.DataFrame:
    """Ichimoku lines without look-ahead: conversion (tenkan) and base (kijun) midpoints,
    leading spans A and B as they stand at each bar (their values displaced ``base`` bars
    forward, so the span shown at bar t was computed ``base`` bars earlier). The lagging
    span (close shifted back) is omitted: it would need future closes."""

    def midpoint(n: int) -> pd.Series:
        return (high.rolling(n, min_periods=n).max() + low.rolling(n, min_periods=n).min()) / 2

    tenkan, kijun = midpoint(conversion), midpoint(base)
    return pd.DataFrame(
        {
            "conversion": tenkan,
            "base": kijun,
            "span_a": ((tenkan + kijun) / 2.0).shift(base),
            "span_b": midpoint(span_b).shift(base),
        }
    )
