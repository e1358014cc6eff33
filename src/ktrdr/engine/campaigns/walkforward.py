"""Walk-forward windows, the stitched out-of-sample equity curve, walk-forward efficiency.

Window rule: window k trains on [train_start, train_end) and tests on [test_start,
test_end) with ``train_end == test_start`` (positions into the bars, end exclusive), so a
window's test bars always come after all of its training bars. Rolling windows move the
training start by ``step``; anchored windows keep it at the first bar and grow. ``step``
defaults to the test length, so test windows tile the data without overlapping. Only
complete windows are returned (a test period cut off by the end of the data is dropped).

Lengths are bar counts (int) or durations ("180D", pd.Timedelta); with durations a window
covers the bars whose timestamps fall in [from, from + length).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd

# A length: a bar count, or a duration ("180D", pd.Timedelta).
Length: TypeAlias = int | str | pd.Timedelta


@dataclass(frozen=True)
class Window:
    """One walk-forward window: positions (half-open) and first/last bar timestamps."""

    train_start: int
    train_end: int
    test_start: int
    test_end: int
    train_first: pd.Timestamp
    train_last: pd.Timestamp
    test_first: pd.Timestamp
    test_last: pd.Timestamp


def _as_length(value: Length, what: str) -> int | pd.Timedelta:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a bar count or a duration like '180D', got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{what} must be at least 1 bar, got {value}")
        return value
    try:
        delta = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"{what} must be a bar count or a duration like '180D' or '12h', got {value!r}"
        ) from None
    if delta <= pd.Timedelta(0):
        raise ValueError(f"{what} must be a positive duration, got {value!r}")
    return delta


def walkforward_windows(
    index: pd.DatetimeIndex,
    *,
    train: Length,
    test: Length,
    step: Length | None = None,
    anchored: bool = False,
) -> list[Window]:
    """The walk-forward windows over ``index`` (sorted bar timestamps); see the module doc.
    ValueError with the fix when the lengths are mixed, not positive, or leave no window."""
    if not isinstance(index, pd.DatetimeIndex) or not index.is_monotonic_increasing:
        raise ValueError("index must be a sorted DatetimeIndex")
    tr, te = _as_length(train, "train"), _as_length(test, "test")
    st = _as_length(step, "step") if step is not None else te
    kinds = {isinstance(x, int) for x in (tr, te, st)}
    if len(kinds) > 1:
        raise ValueError("give train, test and step all as bar counts or all as durations")
    if isinstance(tr, int) and isinstance(te, int) and isinstance(st, int):
        spans = _bar_spans(len(index), tr, te, st, anchored)
    else:
        spans = _time_spans(index, pd.Timedelta(tr), pd.Timedelta(te), pd.Timedelta(st), anchored)
    windows = [
        Window(a, b, b, c, index[a], index[b - 1], index[b], index[c - 1])
        for a, b, c in spans
        if a < b < c
    ]
    if not windows:
        raise ValueError(
            f"{len(index)} bars leave no complete window of train {train!r} + test {test!r}; "
            "shorten the lengths or load more bars"
        )
    return windows


def _bar_spans(
    n: int, train: int, test: int, step: int, anchored: bool
) -> list[tuple[int, int, int]]:
    spans: list[tuple[int, int, int]] = []
    k = 0
    while True:
        start = 0 if anchored else k * step
        split = train + k * step
        if split + test > n:
            return spans
        spans.append((start, split, split + test))
        k += 1


def _time_spans(
    index: pd.DatetimeIndex,
    train: pd.Timedelta,
    test: pd.Timedelta,
    step: pd.Timedelta,
    anchored: bool,
) -> list[tuple[int, int, int]]:
    first = index[0]
    # The data ends one bar after the last timestamp (bars are [t, t + bar)).
    bar = index[-1] - index[-2] if len(index) > 1 else pd.Timedelta(0)
    data_end = index[-1] + bar
    spans: list[tuple[int, int, int]] = []
    k = 0
    while True:
        split_time = first + train + k * step
        test_end_time = split_time + test
        if test_end_time > data_end:
            return spans
        start_time = first if anchored else first + k * step
        a, b, c = (
            int(index.searchsorted(t, side="left")) for t in (start_time, split_time, test_end_time)
        )
        # A step that lands in a gap in the bars maps to the same bars as the last window:
        # the windows must move forward, so that one adds nothing.
        if not spans or b > spans[-1][1]:
            spans.append((a, b, c))
        k += 1


def stitch_equity(segments: Sequence[pd.Series], capital: float | Sequence[float]) -> pd.Series:
    """Join out-of-sample equity curves into one. Segment k is a window's equity curve from
    a run started with ``capital`` (or ``capital[k]`` when a sequence is given); it is
    rescaled to start from segment k-1's final equity E_{k-1} (E_0 = the first capital):
    stitched_k = segment_k * E_{k-1} / capital_k. Running each window with the previous
    final equity as its capital therefore stitches by plain concatenation (factor 1).
    Segments must be in time order and must not overlap."""
    capitals = (
        [float(capital)] * len(segments)
        if isinstance(capital, int | float)
        else [float(c) for c in capital]
    )
    if len(capitals) != len(segments):
        raise ValueError(f"{len(segments)} segments but {len(capitals)} capitals; give one each")
    if any(c <= 0 for c in capitals):
        raise ValueError(f"capital must be positive, got {capital}")
    parts = []
    equity = capitals[0] if capitals else 1.0
    last: pd.Timestamp | None = None
    for i, (seg, start_capital) in enumerate(zip(segments, capitals, strict=True)):
        if len(seg) == 0:
            continue
        if last is not None and seg.index[0] <= last:
            raise ValueError(
                f"segment {i} starts at {seg.index[0]}, not after the previous one's end "
                f"{last}; pass the windows' test segments in time order"
            )
        factor = equity / start_capital
        scaled = seg.astype(float) * factor if factor != 1.0 else seg.astype(float)
        parts.append(scaled)
        equity = float(scaled.iloc[-1])
        last = seg.index[-1]
    if not parts:
        return pd.Series([], dtype=float, name="equity")
    return pd.concat(parts).rename("equity")


def walkforward_efficiency(
    is_objective: float | Sequence[float], oos_objective: float | Sequence[float]
) -> float:
    """Out-of-sample objective / in-sample objective (Pardo's walk-forward efficiency); for
    per-window sequences, mean(OOS) / mean(IS). Compare like with like (both annualised,
    e.g. Sharpe or annualised return).

    NaN when the in-sample objective is not positive or anything is undefined: the ratio
    reads as "how much of the in-sample edge survived", and against a loss it says the
    opposite of the truth (a smaller loss out of sample scores below 1, a larger one above
    1, two losses a positive efficiency)."""
    is_a = np.atleast_1d(np.asarray(is_objective, dtype=float))
    oos_a = np.atleast_1d(np.asarray(oos_objective, dtype=float))
    if is_a.size == 0 or oos_a.size == 0:
        return math.nan
    is_v, oos_v = float(is_a.mean()), float(oos_a.mean())
    if not (math.isfinite(is_v) and math.isfinite(oos_v)) or is_v <= 0:
        return math.nan
    return oos_v / is_v
