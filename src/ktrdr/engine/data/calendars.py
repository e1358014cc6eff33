"""When a market trades, so that missing bars are counted against its calendar: weekends
and holidays are not gaps in daily stock data, crypto trades 24/7, FX closes from Friday
22:00 to Sunday 22:00 UTC. Stock sessions come from exchange_calendars (NYSE)."""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

Market = Literal["crypto", "fx", "stock"]
# ISO codes of the currencies FX pairs are quoted in (a 6-letter pair of two of these).
_CURRENCIES = {
    "AUD", "CAD", "CHF", "CNH", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "JPY", "MXN",
    "NOK", "NZD", "PLN", "SEK", "SGD", "TRY", "USD", "ZAR", "XAU", "XAG",
}  # fmt: skip
_CRYPTO = re.compile(r"^(BTC|ETH|SOL|XRP|ADA|DOGE|LTC|BNB|DOT|AVAX)|-(USD|USDT|EUR|BTC)$")
# FX: the week runs from Sunday 22:00 to Friday 22:00 UTC (Sydney open to New York close).
_FX_CLOSE_HOUR = 22


def market_of(symbol: str) -> Market:
    """The market a symbol trades on, from its name: ``BTC-USD`` crypto, ``EURUSD`` (or
    ``EURUSD=X``) FX, anything else stock (NYSE calendar)."""
    core = symbol.upper().removesuffix("=X")
    if _CRYPTO.search(core):
        return "crypto"
    if len(core) == 6 and core[:3] in _CURRENCIES and core[3:] in _CURRENCIES:
        return "fx"
    return "stock"


def fx_open(index: pd.DatetimeIndex) -> npt.NDArray[np.bool_]:
    """True for bar times inside the FX week (not Friday 22:00 – Sunday 22:00 UTC)."""
    day, hour = index.day_of_week, index.hour
    closed = ((day == 4) & (hour >= _FX_CLOSE_HOUR)) | (day == 5)
    closed |= (day == 6) & (hour < _FX_CLOSE_HOUR)
    return np.asarray(~closed)


@lru_cache(maxsize=4)
def _nyse(first_year: int, last_year: int) -> Any:
    import exchange_calendars as xc

    # exchange_calendars still calls pandas APIs that pandas 3 deprecates: not ours to fix,
    # and tests run with warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", getattr(pd.errors, "Pandas4Warning", FutureWarning))
        warnings.simplefilter("ignore", FutureWarning)
        cal = xc.get_calendar("XNYS", start=f"{first_year}-01-01", end=f"{last_year}-12-31")
        return cal.schedule.copy()


def market_open(
    market: Market, index: pd.DatetimeIndex, bar: pd.Timedelta
) -> npt.NDArray[np.bool_]:
    """True for each bar time (UTC) at which ``market`` has a bar of length ``bar``."""
    if market == "crypto" or len(index) == 0 or bar > pd.Timedelta(days=1):
        return np.ones(len(index), dtype=bool)  # weekly bars: every week has one
    if market == "fx":
        if bar >= pd.Timedelta(days=1):
            return np.asarray(index.day_of_week < 5)  # daily FX bars: Monday to Friday
        return fx_open(index)
    schedule = _nyse(int(index.year.min()), int(index.year.max()))
    if bar >= pd.Timedelta(days=1):
        sessions = pd.DatetimeIndex(schedule.index).tz_localize(None).normalize()
        return np.asarray(index.tz_convert("UTC").tz_localize(None).normalize().isin(sessions))
    opens = pd.DatetimeIndex(schedule["open"]).tz_convert("UTC")
    closes = pd.DatetimeIndex(schedule["close"]).tz_convert("UTC")
    # The session whose open is the last one at or before each bar; open if before its close.
    pos = opens.searchsorted(index, side="right") - 1
    valid = pos >= 0
    inside = np.zeros(len(index), dtype=bool)
    inside[valid] = np.asarray(index[valid] < closes[pos[valid]])
    return inside


def expected_bars(
    market: Market, first: pd.Timestamp, last: pd.Timestamp, bar: pd.Timedelta
) -> pd.DatetimeIndex:
    """The bar times between ``first`` and ``last`` at which the market trades."""
    grid = pd.date_range(first, last, freq=bar)
    return grid[market_open(market, grid, bar)]
