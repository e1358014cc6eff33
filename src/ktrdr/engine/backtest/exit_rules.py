"""The exit rules of the fill pass (``simulate``): stop-loss, take-profit, trailing and
time stops, evaluated at a bar's open and inside it (see ``simulate``'s rules), compiled
with numba. Apart from the fill pass so that each module stays readable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from ktrdr.engine.backtest.result import (
    EXIT_SIGNAL,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    EXIT_TIME_STOP,
    EXIT_TRAILING_STOP,
)

FloatArray = npt.NDArray[np.float64]


@njit(cache=True)
def exit_distance(frac: float, dist: FloatArray, t: int, ref: float) -> float:
    """An exit's distance from the entry price: a fraction of it, or the ATR-based
    distance decided at the previous bar's close; NaN when the exit is not used."""
    if not np.isnan(frac):
        return frac * ref
    return dist[t - 1] if t > 0 else np.nan


@njit(cache=True)
def exit_at_open(
    side: int, want: int, held_bars: int, time_bars: int, open_: float,
    eff: float, stop: float, tp: float, peak: float, trail: float, exits_used: bool,
) -> int:  # fmt: skip
    """Exit reason at a bar's open (-1: none): the last close's decision, a time stop, or
    a gap through the stop or the target (filled at the open, the first price there).
    ``eff`` is ``effective_stop`` of the other levels (computed once per bar by the caller,
    which checks the same level inside the bar)."""
    if want != side:
        return EXIT_SIGNAL
    if not exits_used:
        return -1
    if time_bars > 0 and held_bars >= time_bars:
        return EXIT_TIME_STOP
    if not np.isnan(eff) and side * (open_ - eff) <= 0:
        return _stop_kind(side, stop, peak, trail)
    if not np.isnan(tp) and side * (open_ - tp) >= 0:
        return EXIT_TAKE_PROFIT
    return -1


@njit(cache=True)
def exit_inside(
    side: int,
    high: float,
    low: float,
    eff: float,
    stop: float,
    tp: float,
    peak: float,
    trail: float,
) -> tuple[int, float]:
    """Exit reason and level inside a bar (-1: none). The stop first when the bar touches
    both (the path between high and low is unknown, so the worse is assumed); the trailing
    stop trails the best price up to this bar's open (``eff``, as at the open)."""
    against, favour = (low, high) if side > 0 else (high, low)
    if not np.isnan(eff) and side * (against - eff) <= 0:
        return _stop_kind(side, stop, peak, trail), eff
    if not np.isnan(tp) and side * (favour - tp) >= 0:
        return EXIT_TAKE_PROFIT, tp
    return -1, 0.0


@njit(cache=True)
def any_exit_set(exit_frac: FloatArray, exit_dist: FloatArray, time_bars: int) -> bool:
    """Whether any stop, target or time exit is set: a fraction, a distance that is a
    number at some bar, or a time stop. An unused distance row is usually a broadcast NaN
    (stride 0): one element tells, no scan of n."""
    if time_bars > 0:
        return True
    for j in range(len(exit_frac)):
        if not np.isnan(exit_frac[j]):
            return True
    for j in range(exit_dist.shape[0]):
        row = exit_dist[j]
        for t in range(1 if exit_dist.strides[1] == 0 else len(row)):
            if not np.isnan(row[t]):
                return True
    return False


@njit(cache=True)
def _trailing(side: int, peak: float, trail: float) -> float:
    """The trailing stop's level: ``trail`` > 0 is a distance in price, < 0 a fraction of
    the best price (stored negated), NaN none."""
    if trail < 0:
        return peak * (1.0 + side * trail)
    return peak - side * trail


@njit(cache=True)
def effective_stop(side: int, stop: float, peak: float, trail: float) -> float:
    """The tighter of the fixed stop and the trailing stop (NaN when neither is set)."""
    trailing = _trailing(side, peak, trail)
    if np.isnan(stop):
        return trailing
    if np.isnan(trailing):
        return stop
    return max(stop, trailing) if side > 0 else min(stop, trailing)


@njit(cache=True)
def _stop_kind(side: int, stop: float, peak: float, trail: float) -> int:
    trailing = _trailing(side, peak, trail)
    if np.isnan(trailing) or (not np.isnan(stop) and side * (stop - trailing) >= 0):
        return EXIT_STOP_LOSS
    return EXIT_TRAILING_STOP


@dataclass(frozen=True)
class Exits:
    """Stop-loss, take-profit and trailing-stop distances, and a time stop.

    Each distance is either a fraction of the entry price (``*_fraction``) or an absolute
    price distance per bar (``*_distance``, e.g. 2 × ATR), the value of the bar before the
    entry being used; NaN/None switches the exit off.
    """

    stop_fraction: float = np.nan
    take_profit_fraction: float = np.nan
    trailing_fraction: float = np.nan
    stop_distance: FloatArray | None = None
    take_profit_distance: FloatArray | None = None
    trailing_distance: FloatArray | None = None
    time_stop_bars: int = 0

    @property
    def active(self) -> bool:
        fractions = (self.stop_fraction, self.take_profit_fraction, self.trailing_fraction)
        distances = (self.stop_distance, self.take_profit_distance, self.trailing_distance)
        return (
            not all(np.isnan(f) for f in fractions)
            or any(d is not None for d in distances)
            or self.time_stop_bars > 0
        )
