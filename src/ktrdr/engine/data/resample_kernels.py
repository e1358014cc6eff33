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


@njit(cache=True, nogil=True)
def run_starts(stamps: npt.NDArray[np.int64], period: int) -> npt.NDArray[np.int64]:
    """Where each run of sorted ``stamps`` with the same ``floor(stamp / period)`` starts.
    One division per run, not per stamp: a stamp starts a new run only once it reaches
    the end of the current one (flooring every hourly stamp was most of a daily resample)."""
    n = len(stamps)
    starts = np.empty(n, dtype=np.int64)
    m = 0
    end = 0
    for i in range(n):
        v = stamps[i]
        if i == 0 or v >= end:
            end = v - v % period + period  # Python's modulo: floors before 1970 too
            starts[m] = i
            m += 1
    return starts[:m]


@njit(cache=True, nogil=True)
def fill_from(
    visible_from: npt.NDArray[np.int64], values: npt.NDArray[np.float64], n: int
) -> npt.NDArray[np.float64]:
    """``n`` values: from position ``visible_from[k]`` on, ``values[k]`` (the last k whose
    position has come; NaN before the first). ``visible_from`` is sorted."""
    out = np.empty(n)
    m = len(visible_from)
    k = 0
    current = np.nan
    for i in range(n):
        while k < m and visible_from[k] <= i:
            current = values[k]
            k += 1
        out[i] = current
    return out
