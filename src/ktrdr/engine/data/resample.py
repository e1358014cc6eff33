"""Higher timeframes from base bars, and their values joined back without look-ahead.

A higher-timeframe bar is labelled by its start and closes ``length`` later. Its values
(computed from its close) are joined onto the base bars only from the first base bar
that *opens* at or after that close: a daily value from today's close is seen from
tomorrow's first hourly bar, never earlier, whatever the gaps or sessions in between.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdr.engine.timeframes import check_timeframe

_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def _rule(timeframe: str) -> str:
    # Weeks start on Monday (pandas' plain "W" ends them on Sunday); the rest by length.
    if timeframe == "1w":
        return "W-MON"
    return f"{int(check_timeframe(timeframe).total_seconds())}s"


def resample_bars(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """OHLCV bars of ``timeframe`` from finer ``bars``; periods without bars are dropped."""
    fast = _resample_runs(bars, timeframe)
    if fast is not None:
        return fast
    resampled = bars.resample(_rule(timeframe), label="left", closed="left").agg(_AGG)
    return resampled.dropna(subset=["close"])


def _resample_runs(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame | None:
    """``resample_bars``' result without pandas' groupby, for what it covers: sorted,
    complete OHLCV bars and a period that divides a day (pandas' bins then start at UTC
    midnights, which is where flooring puts them). First, max, min and last are picked,
    the volume summed as pandas sums; None: let pandas do it."""
    length = check_timeframe(timeframe)
    index = bars.index
    columns = list(_AGG)
    if (
        not isinstance(index, pd.DatetimeIndex)
        or pd.Timedelta(days=1) % length != pd.Timedelta(0)
        or list(bars.columns) != columns
        or len(bars) == 0
        or not index.is_monotonic_increasing
    ):
        return None
    values = {c: bars[c].to_numpy(dtype=np.float64) for c in columns}
    if any(np.isnan(v).any() for v in values.values()):
        return None
    from ktrdr.engine.data.resample_kernels import group_sums

    labels = index.floor(_rule(timeframe))
    starts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
    ends = np.append(starts[1:], len(index)) - 1
    out = pd.DataFrame(
        {
            "open": values["open"][starts],
            "high": np.maximum.reduceat(values["high"], starts),
            "low": np.minimum.reduceat(values["low"], starts),
            "close": values["close"][ends],
            "volume": group_sums(values["volume"], starts.astype(np.int64)),
        },
        index=labels[starts],
    )
    return out


def join_closed(values: pd.DataFrame, timeframe: str, base_index: pd.DatetimeIndex) -> pd.DataFrame:
    """Each base bar gets the values of the newest higher-timeframe bar that had closed
    when the base bar opened (NaN before the first one closed): a backward as-of join,
    done as a binary search (higher bars are sorted by when they become available)."""
    available_at = values.index + check_timeframe(timeframe)
    order = np.argsort(available_at.asi8, kind="stable")
    available = available_at[order]
    if base_index.is_monotonic_increasing:
        # Few higher bars, many base bars: where each higher bar becomes visible, then a
        # running count (the same picks as searching every base bar, in a fraction).
        visible_from = base_index.searchsorted(available, side="left")
        counts = np.bincount(visible_from, minlength=len(base_index) + 1)[: len(base_index)]
        picks = np.cumsum(counts) - 1
    else:
        picks = available.searchsorted(base_index, side="right") - 1
    seen = picks >= 0
    columns = {}
    for name in values.columns:
        column = values[name].to_numpy(dtype=np.float64)[order]
        joined = np.full(len(base_index), np.nan)
        joined[seen] = column[picks[seen]]
        columns[name] = joined
    return pd.DataFrame(columns, index=base_index)
