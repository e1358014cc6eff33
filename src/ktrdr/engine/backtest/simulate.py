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
- Stops and targets (optional, see ``Exits``) are levels set at entry from the entry
  bar's raw open. Inside a bar they are checked against its low/high; a bar that touches
  both the stop and the target exits at the stop (the path between them is unknown, so
  the worse is assumed); a bar that opens beyond a level exits at that open (a gap fills
  at the first price, not at the level). A trailing stop follows the best price up to
  the current bar's open: as a fraction of that best price, or at the ATR distance known
  at entry. After a stop, target or time exit the strategy stays flat until
  its target position changes; a time stop exits at the open ``time_stop_bars`` bars after
  the entry. Shorts mirror every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit

from ktrdr.engine.backtest.exit_rules import (
    Exits,
    any_exit_set,
    effective_stop,
    exit_at_open,
    exit_distance,
    exit_inside,
)
from ktrdr.engine.backtest.result import EXIT_END_OF_DATA, EXIT_SIGNAL

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
    exit_reason: npt.NDArray[np.int8]  # codes into EXIT_REASONS
    # The kernel's trade table (one row per field, one column per trade) that the columns
    # above are rows of: what the compiled trade statistics read.
    table: FloatArray = field(repr=False)


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
_REASON = 9
_TRADE_FIELDS = 10


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
def _entry_size(
    cash: float, fill: float, fraction: float, fixed_units: float, commission: float
) -> tuple[float, float]:
    """(units, notional) of a new position; cash never goes negative."""
    if np.isnan(fixed_units):
        if np.isnan(fraction) or fraction <= 0.0:
            return 0.0, 0.0  # e.g. volatility sizing before its window is full
        notional = fraction * cash / (1.0 + commission)
        return notional / fill, notional
    # Fixed units, capped at what the cash pays for (no leverage).
    size = min(fixed_units, cash / (fill * (1.0 + commission)))
    return size, size * fill


@njit(cache=True, nogil=True)
def _kernel(
    bars: FloatArray,
    target: npt.NDArray[np.int8],
    size_frac: FloatArray,
    fixed_units: float,
    exit_frac: FloatArray,
    exit_dist: FloatArray,
    time_bars: int,
    commission: float,
    slippage: float,
    capital: float,
    equity: FloatArray,
    held: FloatArray,
    trades: FloatArray,
) -> int:
    """The fill pass over ``bars`` (open/high/low/close × bars) into the caller's buffers
    (see ``_fills_into``); returns the trade count."""
    return _fills_into(
        bars[0], bars[1], bars[2], bars[3], target, size_frac, fixed_units, exit_frac,
        exit_dist[0], exit_dist[1], exit_dist[2], time_bars, commission, slippage, capital,
        any_exit_set(exit_frac, exit_dist, time_bars), equity, held, trades,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _fills(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    target: npt.NDArray[np.int8],
    size_frac: FloatArray,
    fixed_units: float,
    exit_frac: FloatArray,
    stop_dist: FloatArray,
    tp_dist: FloatArray,
    trail_dist: FloatArray,
    time_bars: int,
    commission: float,
    slippage: float,
    capital: float,
    exits_used: bool,
) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    """``exits_used`` false (no stop, target or time exit set; see ``any_exit_set``) skips
    their per-bar checks, which then could only answer "no exit": the same fills."""
    n = len(close)
    equity = np.empty(n)
    held = np.empty(n)
    trades = np.empty((_TRADE_FIELDS, n + 1))
    k = _fills_into(
        open_, high, low, close, target, size_frac, fixed_units, exit_frac, stop_dist,
        tp_dist, trail_dist, time_bars, commission, slippage, capital, exits_used, equity,
        held, trades,
    )  # fmt: skip
    return equity, held, trades, k


@njit(cache=True, nogil=True)
def _fills_into(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    target: npt.NDArray[np.int8],
    size_frac: FloatArray,
    fixed_units: float,
    exit_frac: FloatArray,
    stop_dist: FloatArray,
    tp_dist: FloatArray,
    trail_dist: FloatArray,
    time_bars: int,
    commission: float,
    slippage: float,
    capital: float,
    exits_used: bool,
    equity: FloatArray,
    held: FloatArray,
    trades: FloatArray,
) -> int:
    """The fill rules into ``equity``/``held`` (bars) and ``trades`` (_TRADE_FIELDS x
    bars + 1); returns the trade count. Every written cell is set before it is read, so a
    campaign batch reuses one set of buffers per thread across combinations instead of
    faulting in fresh million-element arrays for each."""
    n = len(close)
    k = 0
    cash = capital
    units = 0.0
    side = 0
    blocked = 0  # side left by a stop: not re-entered until the target changes
    entry_i = 0
    entry_fill = 0.0
    entry_comm = 0.0
    stop = tp = trail = peak = eff = np.nan
    for t in range(n):
        reason = -1
        price = 0.0
        if side != 0 and t > 0:
            # The open is the first price of the bar: the best price so far includes it.
            peak = max(peak, open_[t]) if side > 0 else min(peak, open_[t])
            eff = effective_stop(side, stop, peak, trail)  # NaN without exits
            reason = exit_at_open(
                side, int(target[t - 1]), t - entry_i, time_bars, open_[t], eff, stop, tp,
                peak, trail, exits_used,
            )  # fmt: skip
            price = open_[t]
        if reason >= 0:
            cash += _close_position(
                trades, k, t, price, False, side, units, entry_i, entry_fill,
                entry_comm, commission, slippage,
            )  # fmt: skip
            trades[_REASON, k] = reason
            k += 1
            blocked = side if reason != EXIT_SIGNAL else 0
            units = 0.0
            side = 0
        if t > 0 and blocked != 0 and target[t - 1] != blocked:
            blocked = 0
        want = target[t - 1] if t > 0 else 0
        if side == 0 and want != 0 and want != blocked and cash > 0.0:
            fill = open_[t] * (1.0 + slippage * want)
            size, notional = _entry_size(cash, fill, size_frac[t - 1], fixed_units, commission)
            if size > 0.0:
                comm = commission * notional
                cash -= want * size * fill + comm
                units = want * size
                side = want
                entry_i = t
                entry_fill = fill
                entry_comm = comm
                ref = open_[t]
                stop = ref - side * exit_distance(exit_frac[0], stop_dist, t, ref)
                tp = ref + side * exit_distance(exit_frac[1], tp_dist, t, ref)
                # A fractional trail follows the best price; an ATR trail keeps the
                # distance known at entry.
                trail = -exit_frac[2] if not np.isnan(exit_frac[2]) else trail_dist[t - 1]
                peak = ref
                eff = effective_stop(side, stop, peak, trail)
        if side != 0 and exits_used:
            # Inside the bar: the stop first when the bar touches both (the path between
            # high and low is unknown, so assume the worse); the trailing stop trails the
            # best price up to this bar's open.
            reason, price = exit_inside(side, high[t], low[t], eff, stop, tp, peak, trail)
            if reason >= 0:
                cash += _close_position(
                    trades, k, t, price, False, side, units, entry_i, entry_fill,
                    entry_comm, commission, slippage,
                )  # fmt: skip
                trades[_REASON, k] = reason
                k += 1
                blocked = side
                units = 0.0
                side = 0
            elif side > 0:
                peak = max(peak, high[t])
            else:
                peak = min(peak, low[t])
        held[t] = units
        equity[t] = cash + units * close[t]
    if side != 0:
        last = n - 1
        cash += _close_position(
            trades, k, last, close[last], True, side, units, entry_i, entry_fill,
            entry_comm, commission, slippage,
        )  # fmt: skip
        trades[_REASON, k] = EXIT_END_OF_DATA
        k += 1
        equity[last] = cash
    return k


@njit(cache=True, nogil=True, error_model="numpy")
def capped_fractions(
    target: float, sigma: FloatArray, cap: float, scale: float = 1.0
) -> FloatArray:
    """Volatility-target sizing per bar: min(target / (σ·scale), cap), NaN (no entry) where
    the ratio is not a finite number (σ = 0 or not yet known) — one pass for five; ``scale``
    annualises σ here rather than in a pass of its own (σ·1.0 is σ, bit for bit)."""
    out = np.empty(len(sigma))
    for i in range(len(sigma)):
        wanted = target / (sigma[i] * scale)
        out[i] = min(wanted, cap) if np.isfinite(wanted) else np.nan
    return out


# The compiled pass itself, into caller-owned buffers, for other kernels to call per
# combination (campaign batches), so the fill rules above have one copy.
fill_pass = _kernel


def simulate_fills(
    open_: FloatArray,
    close: FloatArray,
    target: npt.NDArray[np.int8],
    *,
    capital: float,
    fraction: float | FloatArray,
    commission: float,
    slippage: float,
    high: FloatArray | None = None,
    low: FloatArray | None = None,
    exits: Exits | None = None,
    fixed_units: float | None = None,
) -> SimulationOutput:
    """Run the fill rules above over one window; ``target`` is the desired side per bar.

    ``fraction`` is the share of equity a new position commits — one number, or one per
    bar (decided at that bar's close, used by an entry at the next open); ``fixed_units``
    trades that many units instead. Stops need ``high`` and ``low``.
    """
    n = len(close)
    if not (len(open_) == n == len(target)):
        raise ValueError("open, close and target must have the same length")
    if n == 0:
        raise ValueError("cannot simulate an empty window")
    exits = exits or Exits()
    if exits.active and (high is None or low is None):
        raise ValueError("stops and targets need the bars' high and low")
    # No copies of the bars: the kernel reads the caller's arrays (a missing high/low is
    # never read without exits); unused exits and a fixed fraction are broadcast views.
    opens = np.ascontiguousarray(open_, dtype=np.float64)
    size_frac = np.broadcast_to(np.asarray(fraction, dtype=np.float64), (n,))
    off = np.broadcast_to(np.float64(np.nan), (n,))

    def distance(d: FloatArray | None) -> FloatArray:
        """An exit's distances, read where they are (no stacked copy), or NaN: unused."""
        if d is None:
            return off
        if len(d) != n:
            raise ValueError(f"an exit distance has {len(d)} values for {n} bars")
        return np.ascontiguousarray(d, dtype=np.float64)

    out = _fills(
        opens,
        opens if high is None else np.ascontiguousarray(high, dtype=np.float64),
        opens if low is None else np.ascontiguousarray(low, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        np.ascontiguousarray(target, dtype=np.int8),
        size_frac,
        np.nan if fixed_units is None else float(fixed_units),
        np.array([exits.stop_fraction, exits.take_profit_fraction, exits.trailing_fraction]),
        distance(exits.stop_distance),
        distance(exits.take_profit_distance),
        distance(exits.trailing_distance),
        int(exits.time_stop_bars),
        float(commission),
        float(slippage),
        float(capital),
        exits.active,
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
        exit_reason=trades[_REASON].astype(np.int8),
        table=trades,
    )
