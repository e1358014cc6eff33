"""Supported bar timeframes and their durations (one table, used everywhere)."""

from __future__ import annotations

import difflib

import pandas as pd

#: Bar length of each supported timeframe.
TIMEFRAMES: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
    "1w": pd.Timedelta(weeks=1),
}

SECONDS_PER_YEAR = 365.25 * 24 * 3600


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...], cutoff: float = 0.5) -> str:
    """Return ' (did you mean X?)' for the closest candidate, or '' when nothing is close
    (difflib's similarity below ``cutoff``)."""
    # A candidate that differs only in case is the likeliest meaning ('1D' → '1d'); difflib
    # ranks '1d' and '1w' alike for it, so look for that first.
    same_but_case = [c for c in candidates if c.lower() == word.lower()]
    close = same_but_case or difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_timeframe(timeframe: str) -> pd.Timedelta:
    """Return the bar length of ``timeframe`` or raise ValueError naming the valid ones."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        valid = ", ".join(TIMEFRAMES)
        raise ValueError(
            f"unknown timeframe {timeframe!r}{did_you_mean(timeframe, tuple(TIMEFRAMES))}; "
            f"use one of: {valid}"
        ) from None


def nominal_bars_per_year(timeframe: str) -> float:
    """Bars per year if the market traded around the clock (used when timestamps can't tell)."""
    return SECONDS_PER_YEAR / check_timeframe(timeframe).total_seconds()
