"""A window of bars to trade, with the history before it kept for indicator warm-up.

Backtests and training both start here, so the window rule (inclusive dates, UTC index,
warm-up bars never traded) has one copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.data.store import to_utc
from ktrdr.engine.data.validation import OHLCV_COLUMNS
from ktrdr.engine.errors import DataNotFoundError, DataValidationError


@dataclass(frozen=True)
class PreparedData:
    """All bars (warm-up history + window) and where the window starts and ends."""

    bars: pd.DataFrame
    window_start: int  # position of the first window bar in ``bars``
    window_end: int  # one past the last window bar

    # Cached: a backtest reads the window and its columns in every phase, and each
    # pandas slice or column lookup is a fixed cost that a 100,000-bar run notices.
    @cached_property
    def window(self) -> pd.DataFrame:
        return self.bars.iloc[self.window_start : self.window_end]

    @cached_property
    def window_index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.window.index)

    @cached_property
    def _columns(self) -> dict[str, npt.NDArray[np.float64]]:
        return {}

    def column(self, name: str) -> npt.NDArray[np.float64]:
        """All bars' ``name`` column as float64 (read-only use: shared by the phases)."""
        found = self._columns.get(name)
        if found is None:
            found = self._columns[name] = self.bars[name].to_numpy(dtype=np.float64)
        return found

    def window_column(self, name: str) -> npt.NDArray[np.float64]:
        """The window's ``name`` column as float64 (a view of ``column``)."""
        return self.column(name)[self.window_start : self.window_end]


def prepare_data(
    bars: pd.DataFrame,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> PreparedData:
    """Check ``bars`` and locate the window [start, end] (inclusive); earlier bars are
    used only to warm indicators up, never traded."""
    missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
    if missing:
        raise DataValidationError(
            [
                f"bars lack column(s) {', '.join(missing)}; load them "
                "from the DataStore or provide open,high,low,close,volume"
            ]
        )
    if not isinstance(bars.index, pd.DatetimeIndex) or not bars.index.is_monotonic_increasing:
        raise DataValidationError(["bars need a sorted DatetimeIndex; sort by timestamp"])
    start_ts = to_utc(start) if start is not None else None
    end_ts = to_utc(end) if end is not None else None
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise ValueError(f"start {start_ts.isoformat()} is after end {end_ts.isoformat()}")
    index = bars.index if bars.index.tz is not None else bars.index.tz_localize("UTC")
    lo = 0 if start_ts is None else int(index.searchsorted(start_ts, side="left"))
    hi = len(bars) if end_ts is None else int(index.searchsorted(end_ts, side="right"))
    if hi - lo < 1:
        raise DataNotFoundError(
            f"no bars between {start_ts} and {end_ts}"
            + (f"; the bars cover {index[0]} to {index[-1]}" if len(index) else "")
            + " — choose dates inside the data"
        )
    return PreparedData(bars=bars.set_axis(index), window_start=lo, window_end=hi)
