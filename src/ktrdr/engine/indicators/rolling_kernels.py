"""Rolling means (the SMA and its batch forms), compiled: compensated running sums,
up to four windows in one pass over the values."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit


@njit(cache=True, inline="always")
def _kahan(total: float, compensation: float, x: float) -> tuple[float, float]:
    """``total + x`` with Kahan compensation: (new total, new compensation)."""
    y = x - compensation
    t = total + y
    return t, (t - total) - y


@njit(cache=True, nogil=True)
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
            total, compensation = _kahan(total, compensation, v)
            valid += 1
        if i >= period:
            old = values[i - period]
            if not np.isnan(old):
                total, compensation = _kahan(total, compensation, -old)
                valid -= 1
        if valid == period:
            out[i] = total / period
        elif valid == 0:
            total = 0.0  # an all-NaN window: restart clean rather than carry rounding
            compensation = 0.0
    return out


@njit(cache=True, nogil=True)
def rolling_mean_pair(
    values: npt.NDArray[np.float64], first: int, second: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``rolling_mean`` of two periods in one pass, value for value the same (the same
    steps, lane by lane): the two compensated sums are independent chains the CPU runs
    side by side, so a crossover's two averages cost about one."""
    n = len(values)
    out_a = np.full(n, np.nan)
    out_b = np.full(n, np.nan)
    ta = ca = tb = cb = 0.0
    va = vb = 0
    for i in range(n):
        v = values[i]
        if not np.isnan(v):
            ta, ca = _kahan(ta, ca, v)
            tb, cb = _kahan(tb, cb, v)
            va += 1
            vb += 1
        if i >= first:
            old = values[i - first]
            if not np.isnan(old):
                ta, ca = _kahan(ta, ca, -old)
                va -= 1
        if i >= second:
            old = values[i - second]
            if not np.isnan(old):
                tb, cb = _kahan(tb, cb, -old)
                vb -= 1
        if va == first:
            out_a[i] = ta / first
        elif va == 0:
            ta = ca = 0.0
        if vb == second:
            out_b[i] = tb / second
        elif vb == 0:
            tb = cb = 0.0
    return out_a, out_b


# Written out lane by lane: the same steps through inlined helpers compiled 2-3x slower.
@njit(cache=True, nogil=True)
def rolling_mean_quad(  # noqa: C901
    values: npt.NDArray[np.float64], p0: int, p1: int, p2: int, p3: int,
    o0: npt.NDArray[np.float64], o1: npt.NDArray[np.float64],
    o2: npt.NDArray[np.float64], o3: npt.NDArray[np.float64],
) -> None:  # fmt: skip
    """``rolling_mean`` of four periods in one pass, lane by lane the same steps (so the
    same values). Four independent compensated sums fill the CPU's pipeline: measured at a
    million bars, four averages in about the time of one or two (a sweep's many distinct
    periods over one price column). State in scalars, not arrays: lanes kept in an array
    went through memory and were slower than one by one. Writes every bar of ``o0``..``o3``
    (the mean, NaN where the window is not full), so the caller's arrays need no filling
    first (they are its memory: see ``rolling_means_into``); a lane given twice (same
    period, same output) writes the same values twice."""
    n = len(values)
    t0 = c0 = t1 = c1 = t2 = c2 = t3 = c3 = 0.0
    m0 = m1 = m2 = m3 = 0
    for i in range(n):
        v = values[i]
        if not np.isnan(v):
            t0, c0 = _kahan(t0, c0, v)
            t1, c1 = _kahan(t1, c1, v)
            t2, c2 = _kahan(t2, c2, v)
            t3, c3 = _kahan(t3, c3, v)
            m0 += 1
            m1 += 1
            m2 += 1
            m3 += 1
        if i >= p0:
            old = values[i - p0]
            if not np.isnan(old):
                t0, c0 = _kahan(t0, c0, -old)
                m0 -= 1
        if i >= p1:
            old = values[i - p1]
            if not np.isnan(old):
                t1, c1 = _kahan(t1, c1, -old)
                m1 -= 1
        if i >= p2:
            old = values[i - p2]
            if not np.isnan(old):
                t2, c2 = _kahan(t2, c2, -old)
                m2 -= 1
        if i >= p3:
            old = values[i - p3]
            if not np.isnan(old):
                t3, c3 = _kahan(t3, c3, -old)
                m3 -= 1
        if m0 == p0:
            o0[i] = t0 / p0
        else:
            o0[i] = np.nan
            if m0 == 0:
                t0 = c0 = 0.0
        if m1 == p1:
            o1[i] = t1 / p1
        else:
            o1[i] = np.nan
            if m1 == 0:
                t1 = c1 = 0.0
        if m2 == p2:
            o2[i] = t2 / p2
        else:
            o2[i] = np.nan
            if m2 == 0:
                t2 = c2 = 0.0
        if m3 == p3:
            o3[i] = t3 / p3
        else:
            o3[i] = np.nan
            if m3 == 0:
                t3 = c3 = 0.0


def rolling_means(
    values: npt.NDArray[np.float64], periods: list[int]
) -> list[npt.NDArray[np.float64]]:
    """``rolling_mean`` of each of ``periods`` (in that order), four lanes per pass."""
    outputs = [np.empty(len(values)) for _ in periods]
    rolling_means_into(values, periods, outputs)
    return outputs


def rolling_means_into(
    values: npt.NDArray[np.float64],
    periods: list[int],
    outputs: list[npt.NDArray[np.float64]],
) -> None:
    """``rolling_means`` into ``outputs`` the caller allocated (every bar written): a thread
    pool computing them then only writes (arrays a pool thread allocates come from its own
    malloc arena, and kept past the task they grew a sweep worker's memory by ~100 MB)."""
    for at in range(0, len(periods), 4):
        # A last group of fewer than four repeats its lanes (one kernel, one compilation;
        # a pass of one lane would take about half as long).
        p, o = (periods[at : at + 4] * 4)[:4], (outputs[at : at + 4] * 4)[:4]
        rolling_mean_quad(values, p[0], p[1], p[2], p[3], o[0], o[1], o[2], o[3])
