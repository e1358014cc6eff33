"""Download provider for real market data through Yahoo Finance (optional ``yfinance``).

The HTTP part is one injectable function (:data:`Fetcher`), so tests feed a recorded
response and never touch the network; ``yfinance`` is imported only when the default
fetcher actually runs (install it with ``pip install 'ktrdr[download]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ktrdr.engine.data.store import DataStore, to_utc
from ktrdr.engine.errors import DataNotFoundError, EngineError
from ktrdr.engine.timeframes import check_timeframe

YAHOO_SOURCE = "yahoo"

#: fetch(symbol, yahoo_interval, start, end) -> frame shaped like ``yfinance.Ticker.history``
#: (columns Open, High, Low, Close, Volume; DatetimeIndex).
Fetcher = Callable[[str, str, pd.Timestamp, pd.Timestamp], pd.DataFrame]
#: progress(fraction 0..1, phase, message)
ProgressCallback = Callable[[float, str, str], None]

# Our timeframe -> (Yahoo interval, longest span Yahoo serves per request).
# 4h is not a Yahoo interval: fetch 1h and resample.
_INTERVALS: dict[str, tuple[str, pd.Timedelta | None]] = {
    "1m": ("1m", pd.Timedelta(days=7)),
    "5m": ("5m", pd.Timedelta(days=59)),
    "15m": ("15m", pd.Timedelta(days=59)),
    "30m": ("30m", pd.Timedelta(days=59)),
    "1h": ("1h", pd.Timedelta(days=729)),
    "4h": ("1h", pd.Timedelta(days=729)),
    "1d": ("1d", None),
    "1w": ("1wk", None),
}


def yfinance_fetch(
    symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The default fetcher: one ``yfinance`` request (needs network access)."""
    try:
        import yfinance  # optional dependency: imported only when downloading
    except ImportError as exc:
        raise EngineError(
            "downloading needs the optional package yfinance: pip install 'ktrdr[download]'"
        ) from exc
    ticker = yfinance.Ticker(symbol)
    frame: pd.DataFrame = ticker.history(
        interval=interval,
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
        auto_adjust=False,
        actions=False,
    )
    return frame


class YahooProvider:
    """Download OHLCV bars for a symbol, in chunks Yahoo accepts, reporting progress."""

    def __init__(self, fetch: Fetcher | None = None) -> None:
        self._fetch = fetch or yfinance_fetch

    def download(
        self,
        symbol: str,
        timeframe: str,
        start: str | pd.Timestamp,
        end: str | pd.Timestamp,
        *,
        progress: ProgressCallback | None = None,
    ) -> pd.DataFrame:
        """Bars from ``start`` (inclusive) to ``end`` (exclusive), UTC, lower-case columns."""
        check_timeframe(timeframe)
        start_ts, end_ts = to_utc(start), to_utc(end)
        if start_ts >= end_ts:
            raise ValueError(
                f"start {start_ts.isoformat()} must be before end {end_ts.isoformat()}"
            )
        interval, span = _INTERVALS[timeframe]
        chunks = _chunks(start_ts, end_ts, span)
        frames = []
        for i, (lo, hi) in enumerate(chunks):
            frames.append(_normalize(self._fetch(symbol, interval, lo, hi)))
            if progress is not None:
                progress(
                    (i + 1) / len(chunks),
                    "data_download",
                    f"{symbol} {timeframe}: chunk {i + 1}/{len(chunks)} up to {hi.date()}",
                )
        bars = pd.concat(frames).sort_index() if frames else pd.DataFrame()
        bars = bars[~bars.index.duplicated(keep="last")]
        if timeframe == "4h":
            bars = _resample(bars, "4h")
        if bars.empty:
            raise DataNotFoundError(
                f"Yahoo returned no {timeframe} bars for {symbol} between "
                f"{start_ts.date()} and {end_ts.date()}; check the ticker (e.g. EURUSD=X, BTC-USD) "
                "and that Yahoo keeps this interval that far back"
            )
        return bars

    def download_to_store(
        self,
        store: DataStore,
        symbol: str,
        timeframe: str,
        start: str | pd.Timestamp,
        end: str | pd.Timestamp,
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Download and merge into the store with source "yahoo"."""
        bars = self.download(symbol, timeframe, start, end, progress=progress)
        return store.save(symbol, timeframe, bars, source=YAHOO_SOURCE, merge=True)


def _chunks(
    start: pd.Timestamp, end: pd.Timestamp, span: pd.Timedelta | None
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if span is None:
        return [(start, end)]
    out = []
    lo = start
    while lo < end:
        hi = min(lo + span, end)
        out.append((lo, hi))
        lo = hi
    return out


def _normalize(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(
            columns=["open", "high", "low", "close", "volume"],
            index=pd.DatetimeIndex([], tz="UTC", name="timestamp"),
        )
    out = frame.rename(columns={c: str(c).lower() for c in frame.columns})
    out = out[["open", "high", "low", "close", "volume"]].astype("float64")
    index = pd.DatetimeIndex(out.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    out.index = pd.DatetimeIndex(index, name="timestamp")
    return out.dropna(subset=["open", "high", "low", "close"])


def _resample(bars: pd.DataFrame, rule: str) -> pd.DataFrame:
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    return bars.resample(rule).agg(agg).dropna(subset=["open"])
