"""Volume indicators: on-balance volume, the accumulation/distribution line, VWAP."""

from __future__ import annotations

import numpy as np
import pandas as pd


def obv(close: pd.Series, volume: pd.Series) -> pd.Series:
    """On-balance volume, starting at the first bar's volume (TA-Lib's convention);
    unchanged closes add nothing."""
    direction = np.sign(close.diff()).fillna(1.0)
    return (direction * volume).cumsum()


def ad(high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series) -> pd.Series:
    """Chaikin's accumulation/distribution line: running sum of the close location value
    ((close − low) − (high − close)) / (high − low) times volume; a bar without range adds 0."""
    rng = high - low
    clv = ((close - low) - (high - close)) / rng.where(rng != 0)
    return (clv.fillna(0.0) * volume).cumsum()


def vwap(
    high: pd.Series,
    low: pd.Series,
    close: pd.Series,
    volume: pd.Series,
    period: int,
    anchor: str = "rolling",
) -> pd.Series:
    """VWAP of the typical price: over the last ``period`` bars (``anchor="rolling"``), or
    from the first bar of each UTC day / ISO week (``"day"`` / ``"week"``: session VWAP)."""
    tp = (high + low + close) / 3.0
    pv = tp * volume
    if anchor == "rolling":
        num = pv.rolling(period, min_periods=period).sum()
        den = volume.rolling(period, min_periods=period).sum()
    else:
        index = pd.DatetimeIndex(close.index)
        day = index.floor("D")
        key = day if anchor == "day" else day - pd.to_timedelta(index.dayofweek, unit="D")
        num = pv.groupby(np.asarray(key)).cumsum()
        den = volume.groupby(np.asarray(key)).cumsum()
    return num / den.where(den != 0)
