"""Per-backtest statistic aggregates in one compiled pass (numba): returns, drawdown,
exposure and the trade figures that ``statistics.summarise`` / ``trade_summary`` turn into
statistics. Single backtests (``statistics.compute_statistics``) and campaign batches
(``ktrdr.engine.campaigns.kernels``) both reduce through here: one copy of the rules.

Sums use ``pairwise_sum``, a copy of numpy's pairwise summation (blocks of 8 accumulators
below 128 values, halves above), so every aggregate equals what numpy computes on the
same arrays bit for bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]

# Columns of the aggregate table, one row per combination.
FINAL_EQUITY = 0
MEAN = 1
STD = 2
DOWNSIDE = 3
MAX_DD = 4
DD_BARS = 5
DD_END = 6
EXPOSURE = 7
NUM_TRADES = 8
WIN_FRACTION = 9
BEST_PCT = 10
WORST_PCT = 11
MEAN_PCT = 12
GROSS_WINS = 13
GROSS_LOSSES = 14
COMMISSION = 15
# Sums of the returns' squared, cubed and fourth-power deviations from their mean: the
# higher moments a campaign's overfitting diagnostics need, from the same pass as STD.
SQUARES = 16
CUBES = 17
FOURTHS = 18
N_AGGREGATES = 19

# Fields of fill_pass's trade table (see backtest.simulate).
_ENTRY_I, _EXIT_I, _SIDE, _SIZE, _ENTRY_FILL, _EXIT_FILL, _ENTRY_COMM, _EXIT_COMM = range(8)
_AT_END = 8


@njit(cache=True)
def _block_sum(a: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's pairwise leaf: <8 values in order, else 8 interleaved accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - (n % 8)
    while i < stop:
        b = lo + i
        r0 += a[b]
        r1 += a[b + 1]
        r2 += a[b + 2]
        r3 += a[b + 3]
        r4 += a[b + 4]
        r5 += a[b + 5]
        r6 += a[b + 6]
        r7 += a[b + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _powers(x: float, m: float) -> tuple[float, float, float, float]:  # pragma: no cover
    """(x - m)^2, min(x, 0)^2, (x - m)^3, (x - m)^4, as d2, z * z, d2 * d, d2 * d2."""
    d = x - m
    d2 = d * d
    z = min(x, 0.0)
    return d2, z * z, d2 * d, d2 * d2


@njit(cache=True)
def _moment_leaf(
    a: FloatArray, lo: int, n: int, m: float, cubes: float, fourths: float
) -> tuple[float, float, float, float]:  # pragma: no cover - compiled
    """One leaf of ``pairwise_moments``: ``_block_sum``'s shape for (x - m)^2 and
    min(x, 0)^2 side by side (8 accumulators each), the cubes and fourth powers added on
    in element order."""
    if n < 8:
        sq = down = 0.0
        for i in range(lo, lo + n):
            p2, z2, p3, p4 = _powers(a[i], m)
            sq += p2
            down += z2
            cubes += p3
            fourths += p4
        return sq, down, cubes, fourths
    s0, q0, p3, p4 = _powers(a[lo], m)
    cubes += p3
    fourths += p4
    s1, q1, p3, p4 = _powers(a[lo + 1], m)
    cubes += p3
    fourths += p4
    s2, q2, p3, p4 = _powers(a[lo + 2], m)
    cubes += p3
    fourths += p4
    s3, q3, p3, p4 = _powers(a[lo + 3], m)
    cubes += p3
    fourths += p4
    s4, q4, p3, p4 = _powers(a[lo + 4], m)
    cubes += p3
    fourths += p4
    s5, q5, p3, p4 = _powers(a[lo + 5], m)
    cubes += p3
    fourths += p4
    s6, q6, p3, p4 = _powers(a[lo + 6], m)
    cubes += p3
    fourths += p4
    s7, q7, p3, p4 = _powers(a[lo + 7], m)
    cubes += p3
    fourths += p4
    i = 8
    stop = n - (n % 8)
    while i < stop:
        b = lo + i
        p2, z2, p3, p4 = _powers(a[b], m)
        s0 += p2
        q0 += z2
        cubes += p3
        fourths += p4
        p2, z2, p3, p4 = _powers(a[b + 1], m)
        s1 += p2
        q1 += z2
        cubes += p3
        fourths += p4
        p2, z2, p3, p4 = _powers(a[b + 2], m)
        s2 += p2
        q2 += z2
        cubes += p3
        fourths += p4
        p2, z2, p3, p4 = _powers(a[b + 3], m)
        s3 += p2
        q3 += z2
        cubes += p3
        fourths += p4
        p2, z2, p3, p4 = _powers(a[b + 4], m)
        s4 += p2
        q4 += z2
        cubes += p3
        fourths += p4
        p2, z2, p3, p4 = _powers(a[b + 5], m)
        s5 += p2
        q5 += z2
        cubes += p3
        fourths += p4
        p2, z2, p3, p4 = _powers(a[b + 6], m)
        s6 += p2
        q6 += z2
        cubes += p3
        fourths += p4
        p2, z2, p3, p4 = _powers(a[b + 7], m)
        s7 += p2
        q7 += z2
        cubes += p3
        fourths += p4
        i += 8
    sq = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    down = ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))
    while i < n:
        p2, z2, p3, p4 = _powers(a[lo + i], m)
        sq += p2
        down += z2
        cubes += p3
        fourths += p4
        i += 1
    return sq, down, cubes, fourths


@njit(cache=True)
def _pairwise(
    a: FloatArray, lo: int, n: int, m: float, moments: bool
) -> tuple[float, float, float, float]:  # pragma: no cover - compiled
    """numpy's ``add.reduce`` tree over a[lo:lo+n]: blocks of at most 128 values, larger
    runs split in two halves (the first a multiple of 8) and added. Iterative with an
    explicit stack (numba cannot cache recursive functions). Leaves are visited left to
    right, so sums carried from leaf to leaf (``moments``' cubes and fourth powers) add in
    element order. Returns (sum, 0, 0, 0) of the values, or with ``moments``
    ``_moment_leaf``'s four sums."""
    cubes = fourths = 0.0
    if n <= 128:
        if moments:
            return _moment_leaf(a, lo, n, m, cubes, fourths)
        return _block_sum(a, lo, n), 0.0, 0.0, 0.0
    task_lo = np.empty(256, np.int64)
    task_n = np.empty(256, np.int64)
    task_join = np.empty(256, np.bool_)
    values = np.empty((256, 2))
    sp, vp = 1, 0
    task_lo[0], task_n[0], task_join[0] = lo, n, False
    while sp > 0:
        sp -= 1
        start, count, join = task_lo[sp], task_n[sp], task_join[sp]
        if join:
            values[vp - 2, 0] = values[vp - 2, 0] + values[vp - 1, 0]
            values[vp - 2, 1] = values[vp - 2, 1] + values[vp - 1, 1]
            vp -= 1
        elif count <= 128:
            if moments:
                sq, down, cubes, fourths = _moment_leaf(a, start, count, m, cubes, fourths)
                values[vp, 0], values[vp, 1] = sq, down
            else:
                values[vp, 0] = _block_sum(a, start, count)
            vp += 1
        else:
            half = count // 2
            half -= half % 8
            task_lo[sp], task_n[sp], task_join[sp] = start, count, True
            task_lo[sp + 1], task_n[sp + 1], task_join[sp + 1] = start + half, count - half, False
            task_lo[sp + 2], task_n[sp + 2], task_join[sp + 2] = start, half, False
            sp += 3
    return values[0, 0], values[0, 1], cubes, fourths


@njit(cache=True)
def pairwise_sum(a: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """Sum of a[lo:lo+n] exactly as numpy's ``add.reduce`` computes it."""
    return _pairwise(a, lo, n, 0.0, False)[0]


@njit(cache=True)
def pairwise_moments(a: FloatArray, m: float) -> tuple[float, float, float, float]:
    """In one pass over ``a``: the sums of (x - m)^2 and of min(x, 0)^2, each exactly as
    numpy sums the array of them (pairwise), and of (x - m)^3 and (x - m)^4 in element
    order (d2 * d and d2 * d2 of d = x - m)."""  # pragma: no cover - compiled
    return _pairwise(a, 0, len(a), m, True)


@njit(cache=True, error_model="numpy")
def _returns(equity: FloatArray, capital: float, returns: FloatArray) -> None:  # pragma: no cover
    """Per-bar returns, the first against the initial capital. A loop of its own, so the
    divisions run in vector lanes (numpy's error model: no per-division zero check; an
    equity of exactly 0 gives inf/NaN as numpy's ``diff / prev`` would)."""
    if len(equity) == 0:
        return
    returns[0] = (equity[0] - capital) / capital
    for t in range(1, len(equity)):
        returns[t] = (equity[t] - equity[t - 1]) / equity[t - 1]


@njit(cache=True)
def _drawdown(
    equity: FloatArray, held: FloatArray, capital: float
) -> tuple[float, int, int, int]:  # pragma: no cover - compiled
    """(max drawdown, longest underwater run, the bar it ends at, bars holding a position),
    one pass over the equity and the units held.

    Max drawdown (fraction <= 0) against the running peak (the initial capital counts as
    the first peak), the longest underwater run and the bar it ends at.

    The drawdown of bar t is equity[t] / peak - 1. Under one peak that is monotone in the
    equity (correctly rounded division and subtraction are monotone), so the deepest one
    is the lowest equity's: one division per peak, not one per bar. A bar is underwater
    when its equity is below the peak, which is exactly when ``equity / peak - 1 < 0``
    (peak > 0; NaN equity is neither, as NaN compares false either way)."""
    peak = low = capital
    max_dd = 0.0
    last_peak, longest, end_at = -1, 0, -1
    in_pos = 0
    count = len(held) > 0
    for t in range(len(equity)):
        if count:
            in_pos += held[t] != 0
        e = equity[t]
        if e > peak:
            max_dd = min(max_dd, low / peak - 1.0)
            peak = low = e
        elif e < low:
            low = e
        if e < peak:
            if t - last_peak > longest:
                longest, end_at = t - last_peak, t
        else:
            last_peak = t
    return min(max_dd, low / peak - 1.0), longest, end_at, in_pos


@njit(cache=True)
def equity_aggregates(
    equity: FloatArray, held: FloatArray, capital: float, returns: FloatArray, agg: FloatArray
) -> None:
    n = len(equity)
    _returns(equity, capital, returns)
    max_dd, longest, end_at, in_pos = _drawdown(equity, held, capital)
    mean = pairwise_sum(returns, 0, n) / n
    spread, downside, cubes, fourths = pairwise_moments(returns, mean)
    agg[STD] = np.sqrt(spread / (n - 1)) if n > 1 else np.nan
    agg[DOWNSIDE] = np.sqrt(downside / n)
    agg[SQUARES] = spread
    agg[CUBES] = cubes
    agg[FOURTHS] = fourths
    agg[MEAN] = mean
    agg[MAX_DD] = max_dd
    agg[DD_BARS] = longest
    agg[DD_END] = end_at
    if len(held) > 0:  # else the caller knows the exposure (``bars_held``)
        agg[EXPOSURE] = in_pos / n
    agg[FINAL_EQUITY] = equity[n - 1]


@njit(cache=True)
def bars_held(trades: FloatArray, k: int) -> int:  # pragma: no cover - compiled
    """Bars that end with a position open, from the fill pass's trade table: a trade
    holds from its entry bar up to (not including) its exit bar, where it is flat again
    unless the next trade enters at that same open; a trade closed at the end of the
    data holds its last bar too. The count ``held != 0`` gives, without the units array."""
    total = 0
    for j in range(k):
        total += int(trades[_EXIT_I, j] - trades[_ENTRY_I, j] + trades[_AT_END, j])
    return total


@njit(cache=True)
def trade_aggregates(trades: FloatArray, k: int, agg: FloatArray) -> None:
    agg[NUM_TRADES] = k
    if k == 0:
        return
    pct = np.empty(k)
    wins = np.empty(k)
    losses = np.empty(k)
    comm = np.empty(k)
    n_win, n_loss = 0, 0
    for j in range(k):
        c = trades[_ENTRY_COMM, j] + trades[_EXIT_COMM, j]
        size, entry = trades[_SIZE, j], trades[_ENTRY_FILL, j]
        net = trades[_SIDE, j] * size * (trades[_EXIT_FILL, j] - entry) - c
        pct[j] = net / (size * entry) * 100.0
        comm[j] = c
        if net > 0:
            wins[n_win] = net
            n_win += 1
        elif net < 0:
            losses[n_loss] = net
            n_loss += 1
    agg[WIN_FRACTION] = n_win / k
    agg[BEST_PCT] = pct.max()
    agg[WORST_PCT] = pct.min()
    agg[MEAN_PCT] = pairwise_sum(pct, 0, k) / k
    agg[GROSS_WINS] = pairwise_sum(wins, 0, n_win)
    agg[GROSS_LOSSES] = -pairwise_sum(losses, 0, n_loss)
    agg[COMMISSION] = pairwise_sum(comm, 0, k)
