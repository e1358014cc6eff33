"""Checks that OHLCV bars are usable; each problem names the row and how to fix it."""

from __future__ import annotations

import numpy as np
import pandas as pd

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
_MAX_PER_KIND = 20  # enough to see the pattern without flooding the message


def _rows(mask: np.ndarray, row_numbers: np.ndarray) -> list[int]:
    return [int(r) for r in row_numbers[mask][:_MAX_PER_KIND]]


def _report(problems: list[str], mask: np.ndarray, rows: np.ndarray, what: str, fix: str) -> None:
    count = int(mask.sum())
    for r in _rows(mask, rows):
        problems.append(f"row {r}: {what}; {fix}")
    if count > _MAX_PER_KIND:
        problems.append(f"... {count - _MAX_PER_KIND} more rows with: {what}")


def validate_ohlcv(bars: pd.DataFrame, *, row_numbers: np.ndarray | None = None) -> list[str]:
    """Return every problem in ``bars`` (empty list when valid).

    ``row_numbers`` maps positions to the numbers a person sees (e.g. CSV line numbers);
    by default rows are numbered from 1.
    """
    missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
    if missing:
        return [
            f"missing column(s) {', '.join(missing)}; "
            "provide columns date,open,high,low,close,volume"
        ]
    rows = np.arange(1, len(bars) + 1) if row_numbers is None else np.asarray(row_numbers)
    problems: list[str] = []
    if not isinstance(bars.index, pd.DatetimeIndex):
        return ["index is not a DatetimeIndex; parse the date column as timestamps"]
    if bars.index.hasnans:
        _report(
            problems,
            np.asarray(bars.index.isna()),
            rows,
            "missing or unparseable date",
            "fix the date or delete the row",
        )
    ts = bars.index.asi8
    unsorted = np.zeros(len(bars), dtype=bool)
    unsorted[1:] = ts[1:] < ts[:-1]
    _report(
        problems,
        unsorted,
        rows,
        "timestamp earlier than the row before",
        "sort the file by date (oldest first)",
    )
    dup = np.asarray(bars.index.duplicated(keep="first"))
    _report(problems, dup, rows, "duplicate timestamp", "keep one row per timestamp")
    prices = bars[list(PRICE_COLUMNS)].to_numpy(dtype=float)
    nan = np.isnan(prices).any(axis=1)
    _report(
        problems, nan, rows, "missing (NaN) price", "fill in open/high/low/close or delete the row"
    )
    o, h, low, c = prices.T
    with np.errstate(invalid="ignore"):
        nonpos = ~nan & (prices <= 0).any(axis=1)
        high_bad = ~nan & (h < np.maximum(o, c))
        low_bad = ~nan & (low > np.minimum(o, c))
        inverted = ~nan & (h < low)
    _report(problems, inverted, rows, "high is below low", "swap or correct high and low")
    _report(
        problems,
        high_bad & ~inverted,
        rows,
        "high is below open or close",
        "set high to at least max(open, close)",
    )
    _report(
        problems,
        low_bad & ~inverted,
        rows,
        "low is above open or close",
        "set low to at most min(open, close)",
    )
    _report(problems, nonpos, rows, "price is zero or negative", "correct the price")
    vol = bars["volume"].to_numpy(dtype=float)
    _report(problems, vol < 0, rows, "negative volume", "set volume to 0 or more")
    return problems
