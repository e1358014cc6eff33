"""pandas' rolling standard deviation as a compiled pass (numba), bit for bit.

``Series.rolling(window, min_periods).std(ddof)`` is Welford's online variance with Kahan
compensation, recomputed from scratch over the window when a step loses most of its
significant digits (pandas' ``roll_var``); ±inf count as missing; the root of a negative
rounding residue is 0. This is those steps in the same order, without pandas' set-up and
its separate passes: the volatility-target sizing's σ was a third of a stops backtest.
Kept apart from ``kernels`` so that importing the indicator registry never loads numba.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

# pandas' InvCondTol: a step that keeps fewer than ~3 significant digits is ill-conditioned.
_INV_COND_TOL = float(np.finfo(np.float64).eps) * 1e3

Moments = tuple[float, float, float, float, bool]  # nobs, mean, ssqdm, compensation, unstable


@njit(cache=True, inline="always")
def _add(v: float, nobs: float, mean: float, ssqdm: float, comp: float, unstable: bool) -> Moments:
    if np.isnan(v) or np.isinf(v):
        return nobs, mean, ssqdm, comp, unstable
    prev_m2 = ssqdm
    nobs += 1.0
    prev_mean = mean - comp
    y = v - comp
    t = y - mean
    comp = t + mean - y
    mean = mean + t / nobs
    ssqdm = ssqdm + (v - prev_mean) * (v - mean)
    return nobs, mean, ssqdm, comp, unstable or prev_m2 * _INV_COND_TOL > ssqdm


@njit(cache=True, inline="always")
def _remove(
    v: float, nobs: float, mean: float, ssqdm: float, comp: float, unstable: bool
) -> Moments:
    if np.isnan(v) or np.isinf(v):
        return nobs, mean, ssqdm, comp, unstable
    nobs -= 1.0
    if nobs == 0.0:
        return nobs, 0.0, 0.0, comp, False
    prev_m2 = ssqdm
    prev_mean = mean - comp
    y = v - comp
    t = y - mean
    comp = t + mean - y
    mean = mean - t / nobs
    ssqdm = ssqdm - (v - prev_mean) * (v - mean)
    return nobs, mean, ssqdm, comp, unstable or prev_m2 * _INV_COND_TOL > ssqdm


@njit(cache=True, nogil=True, error_model="numpy")
def rolling_std(
    values: npt.NDArray[np.float64], window: int, min_periods: int, ddof: int
) -> npt.NDArray[np.float64]:
    """``pd.Series(values).rolling(window, min_periods=min_periods).std(ddof=ddof)``."""
    n = len(values)
    out = np.empty(n)
    minp = max(min_periods, 1)
    nobs = mean = ssqdm = comp_add = comp_remove = 0.0
    unstable = False
    for i in range(n):
        start = max(0, i + 1 - window)
        # pandas starts over on the first window and on one that shares no bar with the
        # last (a window of 1); otherwise the bars that left are removed, the new one added.
        if i > 0 and start < i:
            for j in range(max(0, i - window), start):
                nobs, mean, ssqdm, comp_remove, unstable = _remove(
                    values[j], nobs, mean, ssqdm, comp_remove, unstable
                )
            nobs, mean, ssqdm, comp_add, unstable = _add(
                values[i], nobs, mean, ssqdm, comp_add, unstable
            )
        else:
            unstable = True
        if unstable:
            nobs = mean = ssqdm = comp_add = comp_remove = 0.0
            for j in range(start, i + 1):
                nobs, mean, ssqdm, comp_add, unstable = _add(
                    values[j], nobs, mean, ssqdm, comp_add, unstable
                )
            unstable = False
        if nobs >= minp and nobs > ddof:
            var = ssqdm / (nobs - ddof)
            out[i] = 0.0 if var < 0.0 else np.sqrt(var)
        else:
            out[i] = np.nan
    return out
