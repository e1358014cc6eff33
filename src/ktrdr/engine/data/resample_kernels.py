"""Compiled sums behind ``resample``'s fast path (numba), kept apart so that importing
the data package stays light."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit


@njit(cache=True, nogil=True)
def group_sums(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Sum of each run ``values[starts[k]:starts[k + 1]]`` (the last to the end) with
    pandas' groupby-sum compensation, step for step, so the bits are pandas'."""
    m = len(starts)
    out = np.empty(m)
    for k in range(m):
        stop = starts[k + 1] if k + 1 < m else len(values)
        total = 0.0
        compensation = 0.0
        for i in range(starts[k], stop):
            val = values[i]
            if not np.isnan(val):
                y = val - compensation
                t = total + y
                compensation = t - total - y
                if compensation != compensation:
                    compensation = 0.0  # an infinite sum: keep it, drop the correction
                total = t
        out[k] = total
    return out
