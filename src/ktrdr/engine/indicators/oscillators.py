"""Momentum oscillators (RSI, MACD, stochastics, CCI, MFI, Aroon, …), TA-Lib-compatible.

Where a ratio is 0/0 (a flat window: no range, no gains and no losses, no money flow)
KTRDR returns NaN — "no reading" — where TA-Lib returns 0. A 0 would read as "oversold"
or "at the low" on a window where nothing happened and could open positions; NaN gives
every fuzzy membership 0 and no signal fires. Elsewhere the values equal TA-Lib's.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.indicators.averages import ema, sma, wilder, wilder_pair

# A deviation this small relative to the level is rounding noise, not movement: two means
# of one constant window can differ in the last bit and must not make a signal of it.
_RELATIVE_EPS = 1e-12


def snap_noise(value: pd.Series, level: pd.Series) -> pd.Series:
    """0 where ``value`` (a difference of two averages of one price) is below rounding noise
    of the price ``level``: on a flat market its sign would be a coin toss."""
    return value.where(value.abs() > _RELATIVE_EPS * level.abs(), 0.0).where(value.notna())


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den.where(den != 0)


def _gains(diff: pd.Series) -> pd.Series:
    """``diff.clip(lower=0.0)`` without pandas' masking passes: negatives become 0, NaN
    and -0.0 stay as they are (as clip keeps them)."""
    values = diff.to_numpy(dtype=np.float64)
    return pd.Series(np.where(values < 0.0, 0.0, values), index=diff.index, copy=False)


def _split_changes(diff: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    """Gains and losses of price changes (NaN stays NaN, -0.0 stays -0.0)."""
    falling = -diff
    return np.where(diff < 0.0, 0.0, diff), np.where(falling < 0.0, 0.0, falling)


def rsi(x: pd.Series, period: int) -> pd.Series:
    """Wilder's RSI, 100·gain/(gain+loss) with Wilder-smoothed averages; NaN when flat."""
    from ktrdr.engine.indicators.kernels import first_step, rsi_kernel

    values = x.to_numpy(dtype=np.float64)
    # Seeded as ``wilder_pair`` seeds (the mean of the first ``period`` gains and losses),
    # then one compiled pass; a missing price inside takes the general path below.
    first = first_step(values)
    seed_at = first + period - 1
    if first > 0 and seed_at < len(values):
        gains, losses = _split_changes(np.diff(values[first - 1 : seed_at + 1]))
        gain, loss = float(gains.mean()), float(losses.mean())
        if not (np.isnan(gain) or np.isnan(loss)):
            out, complete = rsi_kernel(values, seed_at, gain, loss, 1.0 / period)
            if complete:
                return pd.Series(out, index=x.index, copy=False)
    return _rsi_by_series(x, period)


def _rsi_by_series(x: pd.Series, period: int) -> pd.Series:
    # x.diff(), its gains and losses on the arrays (pandas' own element operations).
    values = x.to_numpy(dtype=np.float64)
    diff = np.full(len(values), np.nan)
    np.subtract(values[1:], values[:-1], out=diff[1:])
    rising, falling = _split_changes(diff)
    gains, losses = wilder_pair(
        pd.Series(rising, index=x.index, copy=False),
        pd.Series(falling, index=x.index, copy=False),
        period,
    )
    gain, loss = gains.to_numpy(), losses.to_numpy()
    total = gain + loss
    # _ratio's rule (0/0 is no reading) on the arrays: pandas' where and division are
    # these element operations, paid for once per Series.
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 * (gain / np.where(total != 0, total, np.nan))
    return pd.Series(value, index=x.index, copy=False)


def cmo(x: pd.Series, period: int) -> pd.Series:
    """Chande momentum oscillator, 100·(gain−loss)/(gain+loss), Wilder-smoothed (as TA-Lib)."""
    diff = x.diff()
    gain = wilder(_gains(diff), period)
    loss = wilder(_gains(-diff), period)
    return 100.0 * _ratio(gain - loss, gain + loss)


def macd(x: pd.Series, fast: int, slow: int, signal: int) -> pd.DataFrame:
    """MACD as TA-Lib aligns it: both EMAs start at bar ``slow - 1`` (the fast one seeded
    with the mean of the ``fast`` bars ending there), every output from the signal's seed."""
    valid = np.flatnonzero(x.notna().to_numpy())
    start = valid[0] if len(valid) else 0
    fast_input = x.copy()
    fast_input.iloc[: start + slow - fast] = np.nan
    line = snap_noise(ema(fast_input, fast) - ema(x, slow), x)
    sig = snap_noise(ema(line, signal), x)
    line = line.where(sig.notna())
    return pd.DataFrame({"macd": line, "signal": sig, "histogram": snap_noise(line - sig, x)})


def roc(x: pd.Series, period: int) -> pd.Series:
    """Rate of change in percent over ``period`` bars."""
    prev = x.shift(period)
    return _ratio(x - prev, prev) * 100.0


def rocp(x: pd.Series, period: int) -> pd.Series:
    """Rate of change as a fraction: (x − x_{t−n}) / x_{t−n}."""
    prev = x.shift(period)
    return _ratio(x - prev, prev)


def rocr(x: pd.Series, period: int) -> pd.Series:
    """Rate of change as a ratio: x / x_{t−n}."""
    return _ratio(x, x.shift(period))


def momentum(x: pd.Series, period: int) -> pd.Series:
    """Price change over ``period`` bars: x − x_{t−n}."""
    return x - x.shift(period)


def trix(x: pd.Series, period: int) -> pd.Series:
    """One-bar rate of change (percent) of a triple-smoothed EMA."""
    smooth = ema(ema(ema(x, period), period), period)
    prev = smooth.shift(1)
    return _ratio(snap_noise(smooth - prev, smooth), prev) * 100.0


def _fast_k(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.Series:
    lowest = low.rolling(period, min_periods=period).min()
    highest = high.rolling(period, min_periods=period).max()
    rng = highest - lowest
    # A range of rounding noise (an RSI that is constant but for its last bits) is no range.
    rng = rng.where(rng > _RELATIVE_EPS * highest.abs(), 0.0)
    return 100.0 * _ratio(close - lowest, rng)


def _k_and_d(k: pd.Series, d_period: int) -> pd.DataFrame:
    # Both lines start together, at %D's first value (TA-Lib's alignment).
    d = sma(k, d_period)
    first = d.first_valid_index()
    k = k.where(k.index >= first) if first is not None else k * np.nan
    return pd.DataFrame({"k": k, "d": d})


def stochastic(
    high: pd.Series, low: pd.Series, close: pd.Series, k_period: int, d_period: int
) -> pd.DataFrame:
    """Fast stochastic (TA-Lib's STOCHF): %K over ``k_period`` bars, %D its SMA."""
    return _k_and_d(_fast_k(high, low, close, k_period), d_period)


def stochastic_slow(
    high: pd.Series,
    low: pd.Series,
    close: pd.Series,
    k_period: int,
    slowing: int,
    d_period: int,
) -> pd.DataFrame:
    """Slow stochastic (TA-Lib's STOCH with SMA): slow %K = SMA(fast %K, slowing), %D =
    SMA(slow %K, d_period)."""
    return _k_and_d(sma(_fast_k(high, low, close, k_period), slowing), d_period)


def stoch_rsi(x: pd.Series, period: int, k_period: int, d_period: int) -> pd.DataFrame:
    """Stochastic RSI (TA-Lib's STOCHRSI): the fast stochastic of RSI(period) over
    ``k_period`` bars, %D its SMA."""
    r = rsi(x, period)
    return _k_and_d(_fast_k(r, r, r, k_period), d_period)


def williams_r(high: pd.Series, low: pd.Series, close: pd.Series, period: int) -> pd.Series:
    lowest = low.rolling(period, min_periods=period).min()
    highest = high.rolling(period, min_periods=period).max()
    return -100.0 * _ratio(highest - close, highest - lowest)


def cci(
    high: pd.Series, low: pd.Series, close: pd.Series, period: int, constant: float
) -> pd.Series:
    """Commodity Channel Index: (tp − mean) / (constant · mean absolute deviation), with one
    window mean for both; 0 on a flat window (numerator and deviation both vanish)."""
    tp = ((high + low + close) / 3.0).to_numpy(dtype=float)
    out = np.full(len(tp), np.nan)
    if len(tp) >= period:
        windows = np.lib.stride_tricks.sliding_window_view(tp, period)
        mean = windows.mean(axis=1)
        mad = np.abs(windows - mean[:, None]).mean(axis=1)
        flat = mad <= _RELATIVE_EPS * np.abs(mean)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = (tp[period - 1 :] - mean) / (constant * mad)
        out[period - 1 :] = np.where(flat, 0.0, value)
    return pd.Series(out, index=high.index, copy=False)


def mfi(
    high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series, period: int
) -> pd.Series:
    """Money flow index: 100·positive flow / total flow of the typical price over
    ``period`` bars (a bar's flow is positive when its typical price rose)."""
    tp = (high + low + close) / 3.0
    flow = tp * volume
    change = tp.diff()
    positive = flow.where(change > 0, 0.0).where(change.notna())
    negative = flow.where(change < 0, 0.0).where(change.notna())
    pos = positive.rolling(period, min_periods=period).sum()
    neg = negative.rolling(period, min_periods=period).sum()
    return 100.0 * _ratio(pos, pos + neg)


def aroon(high: pd.Series, low: pd.Series, period: int) -> pd.DataFrame:
    """Aroon up/down: 100·(period − bars since the highest high / lowest low) / period over
    the last ``period + 1`` bars (the most recent extreme wins a tie, as in TA-Lib)."""
    h = high.to_numpy(dtype=float)
    lo = low.to_numpy(dtype=float)
    up = np.full(len(h), np.nan)
    down = np.full(len(h), np.nan)
    if len(h) > period:
        hw = np.lib.stride_tricks.sliding_window_view(h, period + 1)[:, ::-1]
        lw = np.lib.stride_tricks.sliding_window_view(lo, period + 1)[:, ::-1]
        # argmax on the reversed window finds the newest extreme: its age in bars.
        up[period:] = 100.0 * (period - hw.argmax(axis=1)) / period
        down[period:] = 100.0 * (period - lw.argmin(axis=1)) / period
    index = high.index
    return pd.DataFrame(
        {
            "up": pd.Series(up, index=index),
            "down": pd.Series(down, index=index),
            "oscillator": pd.Series(up - down, index=index),
        }
    )


def bop(open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    """Balance of power: (close − open) / (high − low); NaN on a bar without range."""
    return _ratio(close - open_, high - low)
