"""The split loop of combinatorially symmetric cross-validation (``diagnostics.cscv_logits``
with the default metric), compiled with numba: per split, every trial's in- and
out-of-sample per-period Sharpe from block totals, the in-sample best's out-of-sample
rank and its logit, with no (splits x trials) arrays. It runs in the API at the end of
every sweep, while nothing else of the sweep can, so its time is the sweep's.

Kept apart from ``diagnostics`` so that importing it (the API does) never loads numba.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_BIG = float(np.finfo(np.float64).max)


@njit(cache=True, inline="always", error_model="numpy")
def _sharpe(total: float, squares: float, n: float, shift: float) -> float:
    """Per-period Sharpe of centred block totals (as numpy's ``nan_to_num`` of it with
    nan = -inf: NaN, a flat series, ranks worst). Without branches (selects) and with
    numpy's division rules, so a loop over trials runs in vector lanes."""
    mean = total / n
    var = squares / n - mean * mean
    var = max(var, 0.0) * (n / (n - 1.0))
    value = (mean + shift) / np.sqrt(var)
    value = value if var > 0.0 else -np.inf
    value = value if value == value else -np.inf
    return min(max(value, -_BIG), _BIG)


@njit(cache=True, nogil=True, error_model="numpy")
def split_logits(
    lo: IntArray,
    hi: IntArray,
    sums: tuple[FloatArray, FloatArray],
    squares: tuple[FloatArray, FloatArray],
    counts: tuple[FloatArray, FloatArray],
    shift: FloatArray,
    full: tuple[int, int],
) -> FloatArray:
    """λ of each split whose in-sample blocks are the bits of ``lo`` (first half of the
    blocks) and ``hi`` (second half); the tables hold the totals of every subset of a
    half (``diagnostics._subset_totals``), the complement is out of sample."""
    s_lo, s_hi = sums
    q_lo, q_hi = squares
    n_lo, n_hi = counts
    trials = len(shift)
    out = np.empty(len(lo))
    ins = np.empty(trials)
    oos = np.empty(trials)
    for c in range(len(lo)):
        a, b = lo[c], hi[c]
        ca, cb = a ^ full[0], b ^ full[1]
        n_in, n_out = n_lo[a] + n_hi[b], n_lo[ca] + n_hi[cb]
        # Every trial's in- and out-of-sample Sharpe first (vector lanes), then the first
        # best in sample and its rank out of sample.
        for j in range(trials):
            ins[j] = _sharpe(s_lo[a, j] + s_hi[b, j], q_lo[a, j] + q_hi[b, j], n_in, shift[j])
            oos[j] = _sharpe(s_lo[ca, j] + s_hi[cb, j], q_lo[ca, j] + q_hi[cb, j], n_out, shift[j])
        best, best_value = 0, ins[0]
        for j in range(1, trials):
            if ins[j] > best_value:
                best, best_value = j, ins[j]
        picked = oos[best]
        below = 0
        ties = -1  # the pick itself
        for j in range(trials):
            below += oos[j] < picked
            ties += oos[j] == picked
        omega = (below + 1.0 + ties / 2.0) / (trials + 1.0)
        out[c] = np.log(omega / (1.0 - omega))
    return out
