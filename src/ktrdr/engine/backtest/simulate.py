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


# Fields of the kernel's trade table, one float64 row per field and one column per trade
# (indices and sides are exact in float64 far beyond any bar count); one table keeps the
# kernel's signature short and each field contiguous for the caller.
_ENTRY_I = 0
_EXIT_I = 1
_SIDE = 2
_SIZE = 3
_ENTRY_FILL = 4
_EXIT_FILL = 5
_ENTRY_COMM = 6
_EXIT_COMM = 7
_AT_END = 8
_TRADE_FIELDS = 9


@njit(cache=True)
def _close_position(
    trades: FloatArray,
    k: int,
    exit_i: int,
    price: float,
    at_end: bool,
    side: int,
    units: float,
    entry_i: int,
    entry_fill: float,
    entry_comm: float,
    commission: float,
    slippage: float,
) -> float:
    """Record trade ``k`` closed at ``price`` (slippage against the trader); return cash freed."""
    fill = price * (1.0 - slippage * side)
    comm = commission * abs(units) * fill
    trades[_ENTRY_I, k] = entry_i
    trades[_EXIT_I, k] = exit_i
    trades[_SIDE, k] = side
    trades[_SIZE, k] = abs(units)
    trades[_ENTRY_FILL, k] = entry_fill
    trades[_EXIT_FILL, k] = fill
    trades[_ENTRY_COMM, k] = entry_comm
    trades[_EXIT_COMM, k] = comm
    trades[_AT_END, k] = 1.0 if at_end else 0.0
    return units * fill - comm


@njit(cache=True)
def _kernel(
    open_: FloatArray,
    close: FloatArray,
    target: npt.NDArray[np.int8],
    fraction: float,
    commission: float,
    slippage: float,
    capital: float,
) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    n = len(close)
    equity = np.empty(n)
    held = np.empty(n)
    trades = np.empty((_TRADE_FIELDS, n + 1))
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
                cash += _close_position(
                    trades, k, t, open_[t], False, side, units, entry_i, entry_fill,
                    entry_comm, commission, slippage,
                )  # fmt: skip
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
        cash += _close_position(
            trades, k, last, close[last], True, side, units, entry_i, entry_fill,
            entry_comm, commission, slippage,
        )  # fmt: skip
        k += 1
        equity[last] = cash
    return equity, held, trades, k


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
    equity, held, table, k = out
    trades = np.ascontiguousarray(table[:, :k])
    return SimulationOutput(
        equity=equity,
        units=held,
        entry_index=trades[_ENTRY_I].astype(np.int64),
        exit_index=trades[_EXIT_I].astype(np.int64),
        side=trades[_SIDE].astype(np.int64),
        size=trades[_SIZE],
        entry_fill=trades[_ENTRY_FILL],
        exit_fill=trades[_EXIT_FILL],
        entry_commission=trades[_ENTRY_COMM],
        exit_commission=trades[_EXIT_COMM],
        closed_at_end=trades[_AT_END] == 1.0,
    )
