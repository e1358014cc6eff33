"""The portfolio's fill pass: several symbols, one cash account (numba, no GIL).

At a bar's open the book is rebalanced when any symbol's target side changed at the last
close, every ``rebalance_every`` bars, or where ``calendar_due`` says so (see
``ktrdr.engine.rebalance``): each symbol is brought to ``weight × side`` of
the equity at that open. Sells (and short covers) go first; buys are then scaled down, if
needed, to the cash the sells left — so cash never goes negative and nothing is levered.
Fills carry slippage against the trader and commission on their notional, as in single
backtests. Equity at every bar's close is cash plus every position at its close.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]


@njit(cache=True, nogil=True)
def _wanted_units(
    weights: FloatArray, sides: npt.NDArray[np.int8], equity: float, open_: FloatArray,
    commission: float, slippage: float,
) -> FloatArray:  # fmt: skip
    """Units that make each symbol weight × side of ``equity`` after its costs."""
    m = len(weights)
    out = np.zeros(m)
    per_unit_cost = (1.0 + commission) * (1.0 + slippage)
    for j in range(m):
        if sides[j] != 0 and open_[j] > 0.0:
            out[j] = sides[j] * weights[j] * equity / (open_[j] * per_unit_cost)
    return out


@njit(cache=True, nogil=True)
def _rebalance(
    open_: FloatArray, units: FloatArray, sides: npt.NDArray[np.int8], weights: FloatArray,
    cash: float, commission: float, slippage: float,
) -> tuple[float, float]:  # fmt: skip
    """Bring ``units`` (in place) to weight × side of the equity at this open; returns
    (cash after, commission paid)."""
    m = len(units)
    value = cash
    for j in range(m):
        value += units[j] * open_[j]
    wanted = _wanted_units(weights, sides, value, open_, commission, slippage)
    fees = 0.0
    # Sells and short sales first: they raise the cash the buys spend.
    for j in range(m):
        delta = wanted[j] - units[j]
        if delta < 0.0:
            fill = open_[j] * (1.0 - slippage)
            comm = commission * -delta * fill
            cash += -delta * fill - comm
            fees += comm
            units[j] = wanted[j]
    cost = 0.0
    for j in range(m):
        delta = wanted[j] - units[j]
        if delta > 0.0:
            cost += delta * open_[j] * (1.0 + slippage) * (1.0 + commission)
    scale = min(1.0, cash / cost) if cost > 0.0 else 1.0
    for j in range(m):
        delta = (wanted[j] - units[j]) * scale
        if delta > 0.0:
            fill = open_[j] * (1.0 + slippage)
            comm = commission * delta * fill
            cash -= delta * fill + comm
            fees += comm
            units[j] += delta
    if -1e-9 * value < cash < 0.0:
        # Buys scaled to the cash spend all of it; what is left is the rounding of the
        # sum's last bits. A real shortfall (a bug) would be far larger and stays visible.
        cash = 0.0
    return cash, fees


@njit(cache=True, nogil=True)
def portfolio_kernel(
    open_: FloatArray,
    close: FloatArray,
    target: npt.NDArray[np.int8],
    weights: FloatArray,
    rebalance_every: int,
    calendar_due: npt.NDArray[np.bool_],
    commission: float,
    slippage: float,
    capital: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, int]:
    """(equity per bar, cash per bar, units per bar and symbol, commission per bar,
    number of rebalances). ``open_``, ``close`` and ``target`` are (bars × symbols)."""
    n, m = close.shape
    equity = np.empty(n)
    cash_path = np.empty(n)
    held_path = np.empty((n, m))
    commission_path = np.zeros(n)
    units = np.zeros(m)
    sides = np.zeros(m, dtype=np.int8)
    cash = capital
    rebalances = 0
    last = -1
    for t in range(1, n):
        changed = np.any(target[t - 1] != sides)
        due = (rebalance_every > 0 and last >= 0 and t - last >= rebalance_every) or bool(
            calendar_due[t]
        )
        if changed or (due and np.any(sides != 0)):
            sides[:] = target[t - 1]
            cash, commission_path[t] = _rebalance(
                open_[t], units, sides, weights, cash, commission, slippage
            )
            rebalances += 1
            last = t
        held_path[t] = units
        equity[t] = cash + np.sum(units * close[t])
        cash_path[t] = cash
    held_path[0] = 0.0
    equity[0] = capital
    cash_path[0] = capital
    return equity, cash_path, held_path, commission_path, rebalances
