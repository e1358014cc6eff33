"""The sequential position/fill pass, compiled with numba.

Rules (see ``simulate_fills``):
- ``target[t]`` is decided at bar t's close and filled at bar t+1's OPEN, never at t.
- Fill prices carry slippage against the trader: buys at open*(1+slippage), sells at
  open*(1-slippage).
- Commission is ``commission * |units| * fill_price`` on every fill, entry and exit.
- A new position commits ``fraction`` of current equity including its entry commission:
  notional = fraction * equity / (1 + commission), so cash never goes negative.
- Reversals close the old position and open the new one at the same open.
- A position still open after the last bar is closed at the last bar's CLOSE (with
  slippage and commission), so the final equity and every trade are realised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SimulationOutput:
    """Per-bar equity and units held, plus raw trade columns (indices into the window)."""

    equity: FloatArray
    units: FloatArray
    entry_index: IntArray
    exit_index: IntArray
    side: IntArray
    size: FloatArray
    entry_fill: FloatArray
    exit_fill: FloatArray
    entry_commission: FloatArray
    exit_commission: FloatArray
    closed_at_end: npt.NDArray[np.bool_]


@njit(cache=True)
def _kernel(
    open_: FloatArray,
    close: FloatArray,
    target: npt.NDArray[np.int8],
    fraction: float,
    commission: float,
    slippage: float,
    capital: float,
) -> tuple[
    FloatArray,
    FloatArray,
    IntArray,
    IntArray,
    IntArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    npt.NDArray[np.bool_],
    int,
]:
    n = len(close)
    equity = np.empty(n)
    held = np.empty(n)
    t_entry = np.empty(n + 1, np.int64)
    t_exit = np.empty(n + 1, np.int64)
    t_side = np.empty(n + 1, np.int64)
    t_size = np.empty(n + 1)
    t_efill = np.empty(n + 1)
    t_xfill = np.empty(n + 1)
    t_ecomm = np.empty(n + 1)
    t_xcomm = np.empty(n + 1)
    t_end = np.zeros(n + 1, np.bool_)
    k = 0
    cash = capital
    units = 0.0
    side = 0
    entry_i = 0
    entry_fill = 0.0
    entry_comm = 0.0
    for t in range(n):
        if t > 0 and target[t - 1] != side:
            want = target[t - 1]
            if side != 0:
                fill = open_[t] * (1.0 - slippage * side)
                comm = commission * abs(units) * fill
                cash += units * fill - comm
                t_entry[k] = entry_i
                t_exit[k] = t
                t_side[k] = side
                t_size[k] = abs(units)
                t_efill[k] = entry_fill
                t_xfill[k] = fill
                t_ecomm[k] = entry_comm
                t_xcomm[k] = comm
                k += 1
                units = 0.0
                side = 0
            if want != 0 and cash > 0.0:
                fill = open_[t] * (1.0 + slippage * want)
                notional = fraction * cash / (1.0 + commission)
                size = notional / fill
                comm = commission * notional
                cash -= want * size * fill + comm
                units = want * size
                side = want
                entry_i = t
                entry_fill = fill
                entry_comm = comm
        held[t] = units
        equity[t] = cash + units * close[t]
    if side != 0:
        last = n - 1
        fill = close[last] * (1.0 - slippage * side)
        comm = commission * abs(units) * fill
        cash += units * fill - comm
        t_entry[k] = entry_i
        t_exit[k] = last
        t_side[k] = side
        t_size[k] = abs(units)
        t_efill[k] = entry_fill
        t_xfill[k] = fill
        t_ecomm[k] = entry_comm
        t_xcomm[k] = comm
        t_end[k] = True
        k += 1
        equity[last] = cash
    return (
        equity,
        held,
        t_entry,
        t_exit,
        t_side,
        t_size,
        t_efill,
        t_xfill,
        t_ecomm,
        t_xcomm,
        t_end,
        k,
    )


def simulate_fills(
    open_: FloatArray,
    close: FloatArray,
    target: npt.NDArray[np.int8],
    *,
    capital: float,
    fraction: float,
    commission: float,
    slippage: float,
) -> SimulationOutput:
    """Run the fill rules above over one window; ``target`` is the desired side per bar."""
    if not (len(open_) == len(close) == len(target)):
        raise ValueError("open, close and target must have the same length")
    if len(close) == 0:
        raise ValueError("cannot simulate an empty window")
    out = _kernel(
        np.ascontiguousarray(open_, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        np.ascontiguousarray(target, dtype=np.int8),
        float(fraction),
        float(commission),
        float(slippage),
        float(capital),
    )
    k = out[-1]
    return SimulationOutput(
        equity=out[0],
        units=out[1],
        entry_index=out[2][:k],
        exit_index=out[3][:k],
        side=out[4][:k],
        size=out[5][:k],
        entry_fill=out[6][:k],
        exit_fill=out[7][:k],
        entry_commission=out[8][:k],
        exit_commission=out[9][:k],
        closed_at_end=out[10][:k],
    )
