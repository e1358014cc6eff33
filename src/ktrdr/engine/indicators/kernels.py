"""Compiled loops behind the indicators (numba): exponential averages, RSI, true range,
the directional system, Parabolic SAR, SuperTrend and KAMA. Kept apart so importing the
indicator registry (strategy validation) stays light; the rolling means are in
``rolling_kernels``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit


@njit(cache=True)
def kama_kernel(
    values: npt.NDArray[np.float64], period: int, fast_sc: float, slow_sc: float
) -> npt.NDArray[np.float64]:
    """Kaufman's adaptive moving average (see ``averages.kama``)."""
    n = len(values)
    out = np.full(n, np.nan)
    if n <= period:
        return out
    noise = 0.0
    for k in range(1, period + 1):
        noise += abs(values[k] - values[k - 1])
    prev = values[period - 1]
    for t in range(period, n):
        if t > period:
            old = abs(values[t - period] - values[t - period - 1])
            noise += abs(values[t] - values[t - 1]) - old
        change = abs(values[t] - values[t - period])
        # No movement at all is as efficient as a straight line (TA-Lib: ratio 1).
        ratio = 1.0 if noise <= change or noise == 0.0 else change / noise
        sc = (ratio * (fast_sc - slow_sc) + slow_sc) ** 2
        prev = prev + sc * (values[t] - prev)
        out[t] = prev
    return out


@njit(cache=True)
def directional_kernel(
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    period: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Wilder's +DI, -DI and ADX with TA-Lib's running sums: the sums start over the first
    ``period - 1`` moves, then S = S - S/period + move; +DI/-DI from bar ``period``, ADX
    (the mean of the first ``period`` DX values, then Wilder-smoothed) from ``2·period-1``."""
    n = len(close)
    plus_di = np.full(n, np.nan)
    minus_di = np.full(n, np.nan)
    adx = np.full(n, np.nan)
    if n <= period:
        return plus_di, minus_di, adx
    s_plus = 0.0
    s_minus = 0.0
    s_tr = 0.0
    dx_sum = 0.0
    dx_count = 0
    prev_adx = 0.0
    for t in range(1, n):
        up = high[t] - high[t - 1]
        down = low[t - 1] - low[t]
        p = up if (up > 0 and up > down) else 0.0
        m = down if (down > 0 and down > up) else 0.0
        tr = max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        if t < period:
            s_plus += p
            s_minus += m
            s_tr += tr
            continue
        s_plus = s_plus - s_plus / period + p
        s_minus = s_minus - s_minus / period + m
        s_tr = s_tr - s_tr / period + tr
        pdi = 100.0 * s_plus / s_tr if s_tr != 0.0 else 0.0
        mdi = 100.0 * s_minus / s_tr if s_tr != 0.0 else 0.0
        plus_di[t] = pdi
        minus_di[t] = mdi
        total = pdi + mdi
        dx = 100.0 * abs(pdi - mdi) / total if total != 0.0 else 0.0
        if dx_count < period:
            dx_sum += dx
            dx_count += 1
            if dx_count == period:
                prev_adx = dx_sum / period
                adx[t] = prev_adx
        else:
            prev_adx = (prev_adx * (period - 1) + dx) / period
            adx[t] = prev_adx
    return plus_di, minus_di, adx


@njit(cache=True)
def psar_kernel(
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    acceleration: float,
    maximum: float,
) -> npt.NDArray[np.float64]:
    """Wilder's parabolic SAR as TA-Lib computes it: the first trend is short when the
    second bar's low falls more than its high rises, long otherwise; output from bar 1."""
    n = len(high)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    down_move = low[0] - low[1]
    up_move = high[1] - high[0]
    is_long = not (down_move > 0 and down_move > up_move)
    af = acceleration
    if is_long:
        ep = high[1]
        sar = low[0]
    else:
        ep = low[1]
        sar = high[0]
    new_low = low[1]
    new_high = high[1]
    for t in range(1, n):
        prev_low = new_low
        prev_high = new_high
        new_low = low[t]
        new_high = high[t]
        if is_long:
            if new_low <= sar:
                is_long = False
                sar = max(ep, prev_high, new_high)
                out[t] = sar
                af = acceleration
                ep = new_low
                sar = max(sar + af * (ep - sar), prev_high, new_high)
            else:
                out[t] = sar
                if new_high > ep:
                    ep = new_high
                    af = min(af + acceleration, maximum)
                sar = min(sar + af * (ep - sar), prev_low, new_low)
        elif new_high >= sar:
            is_long = True
            sar = min(ep, prev_low, new_low)
            out[t] = sar
            af = acceleration
            ep = new_high
            sar = min(sar + af * (ep - sar), prev_low, new_low)
        else:
            out[t] = sar
            if new_low < ep:
                ep = new_low
                af = min(af + acceleration, maximum)
            sar = max(sar + af * (ep - sar), prev_high, new_high)
    return out


@njit(cache=True)
def supertrend_kernel(
    close: npt.NDArray[np.float64],
    upper_basic: npt.NDArray[np.float64],
    lower_basic: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """SuperTrend line and direction (+1 up, -1 down) from the basic ATR bands: a band only
    tightens while price stays on its side; the trend flips when the close crosses it."""
    n = len(close)
    line = np.full(n, np.nan)
    direction = np.full(n, np.nan)
    upper = np.nan
    lower = np.nan
    trend = 1.0
    for t in range(n):
        if np.isnan(upper_basic[t]) or np.isnan(lower_basic[t]):
            continue
        if np.isnan(upper):
            upper, lower = upper_basic[t], lower_basic[t]
            trend = 1.0 if close[t] > upper else -1.0 if close[t] < lower else 1.0
        else:
            prev_close = close[t - 1]
            upper = upper_basic[t] if (upper_basic[t] < upper or prev_close > upper) else upper
            lower = lower_basic[t] if (lower_basic[t] > lower or prev_close < lower) else lower
            if trend < 0 and close[t] > upper:
                trend = 1.0
            elif trend > 0 and close[t] < lower:
                trend = -1.0
        direction[t] = trend
        line[t] = lower if trend > 0 else upper
    return line, direction


@njit(cache=True, inline="always")
def _ewm_weights(alpha: float) -> tuple[float, float]:
    """pandas' (old, new) weights of ``ewm(alpha=alpha, adjust=False)`` (its alpha goes
    through the centre of mass)."""
    com = (1.0 - alpha) / alpha  # pandas' get_center_of_mass
    alpha = 1.0 / (1.0 + com)
    return 1.0 - alpha, alpha


@njit(cache=True, inline="always")
def _ewm_step(weighted: float, x: float, old_wt: float, new_wt: float) -> float:
    """One step of pandas' adjust=False recursion on a NaN-free series."""
    if weighted != x:
        weighted = old_wt * weighted + new_wt * x
        weighted = _normalised(weighted, old_wt + new_wt)
    return weighted


@njit(cache=True, inline="always")
def _normalised(weighted: float, total_weight: float) -> float:
    # pandas divides by the weights' sum every step. With no bar missing that sum is
    # (1 - alpha) + alpha, which is exactly 1.0 for every alpha < 1, and x / 1.0 is x to
    # the bit: skipping it keeps pandas' result and takes a division (the slowest step)
    # out of the recursion's dependency chain, about half of an EMA's time.
    return weighted if total_weight == 1.0 else weighted / total_weight


@njit(cache=True, inline="always")
def _ewm_run(
    values: npt.NDArray[np.float64], lo: int, weighted: float, alpha: float,
    out: npt.NDArray[np.float64],
) -> None:  # fmt: skip
    """pandas' ewm(adjust=False) steps from ``weighted`` at bar ``lo`` over the bars after
    it, into ``out[lo:]`` (its alpha through the centre of mass; a weight that decays over
    missing values; no update when the value equals the average)."""
    old_wt_factor, new_wt = _ewm_weights(alpha)
    out[lo] = weighted
    old_wt = 1.0
    for i in range(lo + 1, len(values)):
        cur = values[i]
        observed = not np.isnan(cur)
        if not np.isnan(weighted):
            old_wt *= old_wt_factor
            if observed:
                if weighted != cur:
                    weighted = old_wt * weighted + new_wt * cur
                    weighted = _normalised(weighted, old_wt + new_wt)
                old_wt = 1.0
        elif observed:
            weighted = cur
        out[i] = weighted


@njit(cache=True, nogil=True)
def ewm_mean(values: npt.NDArray[np.float64], alpha: float) -> npt.NDArray[np.float64]:
    """``pd.Series(values).ewm(alpha=alpha, adjust=False).mean()``, step for step as
    pandas computes it, so the result is bit for bit pandas' — in one pass without
    pandas' set-up."""
    out = np.empty(len(values))
    if len(values):
        _ewm_run(values, 0, values[0], alpha, out)
    return out


@njit(cache=True, nogil=True)
def seeded_ewm(
    values: npt.NDArray[np.float64], seed_at: int, seed: float, alpha: float
) -> tuple[npt.NDArray[np.float64], bool]:
    """NaN before ``seed_at``, ``seed`` there, then ``ewm_mean``'s steps over the bars after
    it, written in place (no tail copy); False when one of those bars is missing."""
    out = np.full(len(values), np.nan)
    for i in range(seed_at + 1, len(values)):
        if np.isnan(values[i]):
            return out, False
    _ewm_run(values, seed_at, seed, alpha, out)
    return out, True


@njit(cache=True, nogil=True)
def first_number(values: npt.NDArray[np.float64]) -> int:
    """The first position holding a number (-1: none)."""
    for i in range(len(values)):
        if not np.isnan(values[i]):
            return i
    return -1


@njit(cache=True, nogil=True)
def true_range_kernel(
    high: npt.NDArray[np.float64], low: npt.NDArray[np.float64], close: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """max(high − low, |high − prev close|, |low − prev close|), NaN if any is (and on
    the first bar, which has no previous close)."""
    n = len(close)
    out = np.empty(n)
    if n:
        out[0] = np.nan
    for i in range(1, n):
        a = high[i] - low[i]
        b = abs(high[i] - close[i - 1])
        c = abs(low[i] - close[i - 1])
        if np.isnan(a) or np.isnan(b) or np.isnan(c):
            out[i] = np.nan
        else:
            out[i] = max(a, max(b, c))
    return out


@njit(cache=True, nogil=True)
def ewm_mean_pair(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], alpha: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``ewm_mean`` of two NaN-free series of one length in one pass (the same steps,
    lane by lane): two independent division chains run side by side (RSI's gains and
    losses cost about one)."""
    old_wt, new_wt = _ewm_weights(alpha)
    n = len(a)
    out_a = np.empty(n)
    out_b = np.empty(n)
    if n == 0:
        return out_a, out_b
    wa, wb = a[0], b[0]
    out_a[0], out_b[0] = wa, wb
    for i in range(1, n):
        wa = _ewm_step(wa, a[i], old_wt, new_wt)
        wb = _ewm_step(wb, b[i], old_wt, new_wt)
        out_a[i], out_b[i] = wa, wb
    return out_a, out_b


@njit(cache=True, nogil=True)
def first_step(values: npt.NDArray[np.float64]) -> int:
    """The first bar whose change from the previous bar is a number (-1: none)."""
    for i in range(1, len(values)):
        if not np.isnan(values[i] - values[i - 1]):
            return i
    return -1


@njit(cache=True, nogil=True, error_model="numpy")
def rsi_kernel(
    values: npt.NDArray[np.float64], seed_at: int, gain: float, loss: float, alpha: float
) -> tuple[npt.NDArray[np.float64], bool]:
    """RSI from the seeds at ``seed_at`` on: each bar's change split into a gain and a loss
    (``np.where(d < 0, 0, d)`` of d and -d), both smoothed with ``ewm_mean_pair``'s steps,
    100·gain/(gain+loss) with 0/0 as NaN — one pass for what were ten array passes. False
    when a change after the seed is missing (pandas' weights over gaps are its own)."""
    n = len(values)
    out = np.full(n, np.nan)
    old_wt, new_wt = _ewm_weights(alpha)
    for i in range(seed_at, n):
        if i > seed_at:
            d = values[i] - values[i - 1]
            if np.isnan(d):
                return out, False
            up, down = (0.0 if d < 0.0 else d), -d
            gain = _ewm_step(gain, up, old_wt, new_wt)
            loss = _ewm_step(loss, 0.0 if down < 0.0 else down, old_wt, new_wt)
        total = gain + loss
        out[i] = 100.0 * (gain / (total if total != 0.0 else np.nan))
    return out, True
