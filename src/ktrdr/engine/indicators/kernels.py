"""Compiled loops behind the indicators (numba), kept apart so importing the indicator
registry (strategy validation) stays light."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit


@njit(cache=True)
def rolling_mean(values: npt.NDArray[np.float64], period: int) -> npt.NDArray[np.float64]:
    """Mean of the last `period` values; NaN unless all of them are numbers (as pandas'
    rolling(period, min_periods=period)). Kahan-compensated running sum: one pass, and
    no drift over millions of bars."""
    out = np.full(len(values), np.nan)
    total = 0.0
    compensation = 0.0
    valid = 0
    for i in range(len(values)):
        v = values[i]
        if not np.isnan(v):
            y = v - compensation
            t = total + y
            compensation = (t - total) - y
            total = t
            valid += 1
        if i >= period:
            old = values[i - period]
            if not np.isnan(old):
                y = -old - compensation
                t = total + y
                compensation = (t - total) - y
                total = t
                valid -= 1
        if valid == period:
            out[i] = total / period
        elif valid == 0:
            total = 0.0  # an all-NaN window: restart clean rather than carry rounding
            compensation = 0.0
    return out
