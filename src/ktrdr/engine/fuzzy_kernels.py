"""Compiled passes behind the fuzzy memberships and rule strengths (numba), kept apart so
that importing ``fuzzy`` or ``signals`` (strategy validation on the backend) never loads
numba.

Each is the elementwise rule of the NumPy formulation it replaced, operation for
operation: ``np.clip``'s ``x < lo ? lo : x`` then ``x > hi ? hi : x`` (NaN kept),
``np.minimum``/``np.maximum`` propagating NaN, ``np.fmax`` ignoring it. A fuzzy backtest
spent a third of its time in the temporaries of those ufunc chains.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]


@njit(cache=True, nogil=True, inline="always")
def _clip01(r: float) -> float:
    # NaN compares False and stays; an edge itself is kept (-0.0 stays -0.0, as np.clip).
    r = 0.0 if r < 0.0 else r
    return 1.0 if r > 1.0 else r


@njit(cache=True, nogil=True, inline="always")
def _ramp(v: float, lo: float, hi: float, rising: bool) -> float:
    # A step where the points coincide (NaN kept explicitly: a comparison is just False);
    # else linear, where NaN stays NaN through the arithmetic.
    if hi == lo:
        step = (1.0 if v >= lo else 0.0) if rising else (1.0 if v <= lo else 0.0)
        return v if np.isnan(v) else step
    return _clip01((v - lo) / (hi - lo)) if rising else _clip01((hi - v) / (hi - lo))


@njit(cache=True, nogil=True)
def ramps(
    x: FloatArray, a: float, b: float, c: float, d: float, rises: bool, falls: bool
) -> FloatArray:
    """Per value: the rising ramp over [a, b] (0 below, 1 above; a step at a when a == b)
    if ``rises``, the falling one over [c, d] if ``falls``, the smaller of the two if
    both; NaN where x is. One loop per case, free of branches, so it runs in vector lanes
    (a branch per value on noisy inputs cost several times NumPy's passes)."""
    out = np.empty(len(x))
    if rises and falls:
        for i in range(len(x)):
            up = _ramp(x[i], a, b, True)
            down = _ramp(x[i], c, d, False)
            out[i] = up if (up <= down or np.isnan(up)) else down  # np.minimum
    elif rises:
        for i in range(len(x)):
            out[i] = _ramp(x[i], a, b, True)
    else:
        for i in range(len(x)):
            out[i] = _ramp(x[i], c, d, False)
    return out


@njit(cache=True, nogil=True, inline="always")
def _fold(s: float, e: float, conjunctive: bool) -> float:
    if conjunctive:
        return s if (s <= e or np.isnan(s)) else e  # np.minimum
    return s if (s >= e or np.isnan(s)) else e  # np.maximum


# The loops over one block are functions of their own on that block's slices, indexed
# from 0 by their own range: an index like ``t - b0`` (which could be negative, so numba
# wraps it) kept the loops one value at a time, several times slower.


@njit(cache=True, nogil=True)
def _start(tmp: FloatArray, m: FloatArray, negated: bool) -> None:
    if negated:
        for i in range(len(m)):
            tmp[i] = 1.0 - m[i]
    else:
        for i in range(len(m)):
            tmp[i] = m[i]


@njit(cache=True, nogil=True)
def _fold_in(tmp: FloatArray, m: FloatArray, negated: bool, conjunctive: bool) -> None:
    if negated:
        for i in range(len(m)):
            tmp[i] = _fold(tmp[i], 1.0 - m[i], conjunctive)
    else:
        for i in range(len(m)):
            tmp[i] = _fold(tmp[i], m[i], conjunctive)


@njit(cache=True, nogil=True)
def _combine(row: FloatArray, tmp: FloatArray, weight: float) -> None:
    for i in range(len(row)):
        v = tmp[i]
        v = 0.0 if np.isnan(v) else v
        if weight != 1.0:
            v = v * weight
        cur = row[i]
        row[i] = cur if (cur >= v or np.isnan(v)) else v  # np.fmax


@njit(cache=True, nogil=True)
def rule_strengths(
    memberships: tuple[FloatArray, ...],
    condition_rows: npt.NDArray[np.int64],
    negated: npt.NDArray[np.bool_],
    bounds: npt.NDArray[np.int64],
    conjunctive: npt.NDArray[np.bool_],
    weights: FloatArray,
    actions: npt.NDArray[np.int64],
    n_actions: int,
) -> FloatArray:
    """(n_actions, n) firing strengths. Rule r's conditions are
    ``condition_rows[bounds[r]:bounds[r + 1]]`` (membership rows, ``negated`` as 1 - m),
    folded left to right by min (``conjunctive``) or max with NaN propagating; NaN then
    counts 0, times the weight unless it is 1; rules of one action combine by fmax.
    Block by block (a block stays in L1), one branch-free loop per condition."""
    n = len(memberships[0])
    out = np.zeros((n_actions, n))
    block = 4096
    tmp = np.empty(block)
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        for r in range(len(weights)):
            lo, hi = bounds[r], bounds[r + 1]
            part = tmp[: b1 - b0]
            _start(part, memberships[condition_rows[lo]][b0:b1], negated[lo])
            for j in range(lo + 1, hi):
                m = memberships[condition_rows[j]][b0:b1]
                _fold_in(part, m, negated[j], conjunctive[r])
            _combine(out[actions[r], b0:b1], part, weights[r])
    return out
