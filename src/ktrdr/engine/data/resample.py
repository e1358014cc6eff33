"""Higher timeframes from base bars, and their values joined back without look-ahead.

A higher-timeframe bar is labelled by its start and closes ``length`` later. Its values
(computed from its close) are joined onto the base bars only from the first base bar
that *opens* at or after that close: a daily value from today's close is seen from
tomorrow's first hourly bar, never earlier, whatever the gaps or sessions in between.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
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
    complete OHLCV bars on a UTC (or naive) index and a period that divides a day
    (pandas' bins then start at UTC midnights, which is where flooring the stamps puts
    them). First, max, min and last are picked, the volume summed as pandas sums; None:
    let pandas do it."""
    length = check_timeframe(timeframe)
    index = bars.index
    columns = list(_AGG)
    if (
        not isinstance(index, pd.DatetimeIndex)
        or (index.tz is not None and str(index.tz) != "UTC")
        or pd.Timedelta(days=1) % length != pd.Timedelta(0)
        or list(bars.columns) != columns
        or len(bars) == 0
        or not index.is_monotonic_increasing
    ):
        return None
    values = {c: bars[c].to_numpy(dtype=np.float64) for c in columns}
    # A minimum is NaN exactly when a NaN is there, in a third of isnan().any()'s time.
    if any(np.isnan(v.min()) for v in values.values()):
        return None
    from ktrdr.engine.data.resample_kernels import group_sums, run_starts

    # Stamps in the index's own unit, so the period's multiples are UTC midnights.
    period = length // pd.Timedelta(1, unit=index.unit)
    starts = run_starts(index.asi8, int(period))
    ends = np.append(starts[1:], len(index)) - 1
    out = pd.DataFrame(
        {
            "open": values["open"][starts],
            "high": np.maximum.reduceat(values["high"], starts),
            "low": np.minimum.reduceat(values["low"], starts),
            "close": values["close"][ends],
            "volume": group_sums(values["volume"], starts),
        },
        index=index[starts].floor(_rule(timeframe)),
    )
    return out


def join_closed(values: pd.DataFrame, timeframe: str, base_index: pd.DatetimeIndex) -> pd.DataFrame:
    """Each base bar gets the values of the newest higher-timeframe bar that had closed
    when the base bar opened (NaN before the first one closed): a backward as-of join,
    done as a binary search (higher bars are sorted by when they become available)."""
    columns = {name: values[name].to_numpy(dtype=np.float64) for name in values.columns}
    joined = join_closed_arrays(columns, pd.DatetimeIndex(values.index), timeframe, base_index)
    return pd.DataFrame(joined, index=base_index)


def join_closed_arrays(
    columns: dict[str, npt.NDArray[np.float64]],
    index: pd.DatetimeIndex,
    timeframe: str,
    base_index: pd.DatetimeIndex,
) -> dict[str, npt.NDArray[np.float64]]:
    """``join_closed`` on the higher bars' columns (labelled by ``index``) as arrays, so a
    caller that wants arrays builds no frame on either side."""
    available_at = index + check_timeframe(timeframe)
    order = np.argsort(available_at.asi8, kind="stable")
    available = available_at[order]
    if base_index.is_monotonic_increasing:
        from ktrdr.engine.data.resample_kernels import fill_from

        # Few higher bars, many base bars: where each higher bar becomes visible, then
        # one pass holding the newest visible value (the same picks as searching every
        # base bar, in a fraction of the time).
        visible_from = base_index.searchsorted(available, side="left").astype(np.int64)
        n = len(base_index)
        return {
            name: fill_from(visible_from, np.ascontiguousarray(column[order]), n)
            for name, column in columns.items()
        }
    picks = available.searchsorted(base_index, side="right") - 1
    seen = picks >= 0
    out = {}
    for name, column in columns.items():
        joined = np.full(len(base_index), np.nan)
        joined[seen] = column[order][picks[seen]]
        out[name] = joined
    return out
