"""Higher timeframes from base bars, and their values joined back without look-ahead.

A higher-timeframe bar is labelled by its start and closes ``length`` later. Its values
(computed from its close) are joined onto the base bars only from the first base bar
that *opens* at or after that close: a daily value from today's close is seen from
tomorrow's first hourly bar, never earlier, whatever the gaps or sessions in between.
"""

from __future__ import annotations

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
    resampled = bars.resample(_rule(timeframe), label="left", closed="left").agg(_AGG)
    return resampled.dropna(subset=["close"])


def join_closed(values: pd.DataFrame, timeframe: str, base_index: pd.DatetimeIndex) -> pd.DataFrame:
    """Each base bar gets the values of the newest higher-timeframe bar that had closed
    when the base bar opened (NaN before the first one closed)."""
    available_at = values.index + check_timeframe(timeframe)
    right = values.set_axis(available_at).sort_index()
    left = pd.DataFrame(index=base_index)
    joined = pd.merge_asof(left, right, left_index=True, right_index=True, direction="backward")
    return joined.set_axis(base_index)
