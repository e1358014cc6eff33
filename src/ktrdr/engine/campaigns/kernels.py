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
    EXPOSURE,
    bars_held,
    equity_aggregates,
    pairwise_moments,
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
    edges: npt.NDArray[np.int64],
    blocks: FloatArray,
) -> None:  # pragma: no cover - compiled
    """One combination: targets from ``actions`` (action codes of ``signals``), the fill
    pass (arguments as ``fill_pass`` takes them; ``bars`` is open/high/low/close x bars),
    then its aggregates into ``agg`` (N_AGGREGATES) and per-bar returns into ``returns``.
    ``equity``/``held`` (bars) and ``trades`` (10 x bars + 1) are scratch the caller
    reuses between combinations: fresh million-element arrays per combination cost more
    in page faults than the fills themselves. Releases the GIL, so a thread pool runs
    combinations in parallel. With ``edges`` (bar offsets, first 0, last the bar count)
    ``blocks`` gets the compounded return of each run of bars between two edges."""
    target = hold_targets(actions, 1, 2, 3, sell_to)
    k = fill_pass(
        bars, target, size_fractions, fixed_units, exit_fractions, exit_distances, time_bars,
        commission, slippage, capital, equity, held, trades,
    )  # fmt: skip
    agg[:] = np.nan
    # The exposure from the trade table: ``held`` may be a sink (see ``unit_sink``).
    equity_aggregates(equity, np.empty(0), capital, returns, agg)
    agg[EXPOSURE] = bars_held(trades, k) / len(equity)
    trade_aggregates(trades, k, agg)
    block_returns(equity, capital, edges, blocks)


@njit(cache=True, nogil=True)
def block_returns(
    equity: FloatArray, capital: float, edges: npt.NDArray[np.int64], out: FloatArray
) -> None:  # pragma: no cover - compiled
    """Compounded return of each run of bars [edges[i], edges[i + 1]): the product of
    (1 + return) over the run, which telescopes to the run's last equity over the equity
    before it (the initial capital before bar 0): no pass over the bars."""
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        before = capital if lo == 0 else equity[lo - 1]
        out[i] = equity[hi - 1] / before - 1.0


@njit(cache=True, nogil=True)
def moment_sums(returns: FloatArray) -> tuple[float, float, float, float]:
    """(mean, sum of squared, cubed and fourth-power deviations from it) of ``returns``
    without a temporary array: the mean and the squares as numpy sums them (pairwise, so
    ``mean`` and the standard deviations equal numpy's bit for bit), the two higher powers
    in element order; the same sums a combination's aggregates carry (SQUARES, CUBES,
    FOURTHS)."""
    n = len(returns)
    mean = pairwise_sum(returns, 0, n) / n
    squares, _, cubes, fourths = pairwise_moments(returns, mean)
    return mean, squares, cubes, fourths


def unit_sink(n: int) -> FloatArray:
    """A writable array of ``n`` places that are all one (stride 0), for the fill pass's
    units held per bar: a batch needs only their count (``bars_held`` reads it off the
    trade table), so the pass's million writes land in one cached cell, not in 8 MB that
    the next pass would read back."""
    return np.lib.stride_tricks.as_strided(np.empty(1), shape=(n,), strides=(0,))
