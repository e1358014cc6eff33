"""The compiled batch pass: fills and per-combination statistic aggregates, in parallel.

Each combination runs the backtest's own fill pass (``backtest.simulate.fill_pass``, one
copy of the fill rules) and then reduces its equity and trades with the single
backtest's own aggregates (``backtest.aggregates``), so a batch's statistics equal an
ordinary backtest's exactly.

Only the aggregates (and, on request, the per-bar returns) leave the kernel: memory per
combination is O(bars) while it runs and O(1) after. The kernel releases the GIL; the
caller runs combinations on a thread pool (a ``parallel=True`` kernel compiled several
times slower, for no gain over threads on the same cores).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from ktrdr.engine.backtest.aggregates import (
    SQUARED_DEVIATION,
    equity_aggregates,
    pairwise_sum,
    trade_aggregates,
)
from ktrdr.engine.backtest.simulate import fill_pass
from ktrdr.engine.signal_kernels import hold_targets

FloatArray = npt.NDArray[np.float64]


@njit(cache=True, nogil=True)
def combination_pass(
    bars: FloatArray,
    actions: npt.NDArray[np.int8],
    sell_to: int,
    size_fractions: FloatArray,
    fixed_units: float,
    exit_fractions: FloatArray,
    exit_distances: FloatArray,
    time_bars: int,
    commission: float,
    slippage: float,
    capital: float,
    returns: FloatArray,
    agg: FloatArray,
    equity: FloatArray,
    held: FloatArray,
    trades: FloatArray,
) -> None:  # pragma: no cover - compiled
    """One combination: targets from ``actions`` (action codes of ``signals``), the fill
    pass (arguments as ``fill_pass`` takes them; ``bars`` is open/high/low/close x bars),
    then its aggregates into ``agg`` (N_AGGREGATES) and per-bar returns into ``returns``.
    ``equity``/``held`` (bars) and ``trades`` (10 x bars + 1) are scratch the caller
    reuses between combinations: fresh million-element arrays per combination cost more
    in page faults than the fills themselves. Releases the GIL, so a thread pool runs
    combinations in parallel."""
    target = hold_targets(actions, 1, 2, 3, sell_to)
    k = fill_pass(
        bars, target, size_fractions, fixed_units, exit_fractions, exit_distances, time_bars,
        commission, slippage, capital, equity, held, trades,
    )  # fmt: skip
    agg[:] = np.nan
    equity_aggregates(equity, held, capital, returns, agg)
    trade_aggregates(trades, k, agg)


@njit(cache=True, nogil=True)
def moment_sums(returns: FloatArray) -> tuple[float, float, float, float]:
    """(mean, sum of squared, cubed and fourth-power deviations from it) of ``returns``
    without a temporary array: the mean and the squares as numpy sums them (pairwise, so
    ``mean`` and the standard deviations equal numpy's bit for bit), the two higher powers
    in one plain pass. A sweep chunk reduces every combination's returns on its pool
    threads; numpy's million-element temporaries on two threads fought over page faults."""
    n = len(returns)
    mean = pairwise_sum(returns, 0, n) / n
    squares = pairwise_sum(returns, 0, n, SQUARED_DEVIATION, mean)
    cubes = fourths = 0.0
    for t in range(n):
        d = returns[t] - mean
        d2 = d * d
        cubes += d2 * d
        fourths += d2 * d2
    return mean, squares, cubes, fourths
