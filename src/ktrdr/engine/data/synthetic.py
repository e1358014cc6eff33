"""Deterministic synthetic OHLCV bars for offline use and tests (never real market data).

The close follows a geometric random walk whose drift and volatility switch between
regimes (a Markov chain), so series contain trends, ranges, calm and turbulent spells.
Timestamps are on the timeframe grid, at the times the given market trades: every bar for
crypto (24/7, the default), no weekend bars for FX, NYSE sessions for stocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdr.engine.data.calendars import Market, market_open
from ktrdr.engine.timeframes import check_timeframe

SYNTHETIC_SOURCE = "synthetic"

# pandas' nanosecond timestamps end in April 2262: generated bars must end before then.
_LAST_TIME = pd.Timestamp("2262-01-01", tz="UTC")
# Grid points from the start on which the market's share of trading bars is measured.
_SAMPLE_BARS = 20_000

# (annualised drift, annualised volatility) per regime: calm up, calm down, range, turbulent.
_REGIMES = np.array([[0.30, 0.15], [-0.25, 0.18], [0.0, 0.10], [0.05, 0.45]])
_MEAN_REGIME_BARS = 500.0


def generate_synthetic_bars(
    timeframe: str,
    n_bars: int,
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2020-01-06",
    start_price: float = 100.0,
    market: Market = "crypto",
) -> pd.DataFrame:
    """Return ``n_bars`` synthetic OHLCV bars (UTC index on the ``timeframe`` grid).

    The same ``(timeframe, n_bars, seed, start, start_price)`` always gives the same bars.
    Guarantees: high >= max(open, close), low <= min(open, close), all prices > 0.
    """
    bar = check_timeframe(timeframe)
    if n_bars < 1:
        raise ValueError(f"n_bars must be at least 1, got {n_bars}")
    rng = np.random.default_rng(seed)
    dt_years = bar.total_seconds() / (365.25 * 24 * 3600)

    regime = _regime_path(rng, n_bars)
    drift, vol = _REGIMES[regime, 0], _REGIMES[regime, 1]
    # Fat tails: Student-t shocks scaled to unit variance.
    shocks = rng.standard_t(df=5, size=n_bars) / np.sqrt(5.0 / 3.0)
    log_ret = (drift - 0.5 * vol**2) * dt_years + vol * np.sqrt(dt_years) * shocks
    close = start_price * np.exp(np.cumsum(log_ret))

    bar_vol = vol * np.sqrt(dt_years)
    # Open is near the previous close (small gap), so bars chain like real ones.
    prev_close = np.concatenate(([start_price], close[:-1]))
    open_ = prev_close * np.exp(0.1 * bar_vol * rng.standard_normal(n_bars))
    upper = np.maximum(open_, close) * np.exp(np.abs(0.5 * bar_vol * rng.standard_normal(n_bars)))
    lower = np.minimum(open_, close) * np.exp(-np.abs(0.5 * bar_vol * rng.standard_normal(n_bars)))
    # Volume rises with the size of the move.
    volume = np.round(
        1000.0 * np.exp(0.3 * rng.standard_normal(n_bars)) * (1 + 20 * np.abs(log_ret))
    )

    first = _first_time(start, bar)
    share = _fitting_share(timeframe, n_bars, first, bar, market)
    index = _trading_times(first, n_bars, bar, market, share)
    return pd.DataFrame(
        {"open": open_, "high": upper, "low": lower, "close": close, "volume": volume},
        index=index,
    )


def _regime_path(rng: np.random.Generator, n_bars: int) -> np.ndarray:
    """Regime index per bar: geometric-length spells, each in a random regime."""
    lengths = rng.geometric(1.0 / _MEAN_REGIME_BARS, size=n_bars // 50 + 2)
    starts = np.cumsum(lengths)
    while starts[-1] < n_bars:  # rare: draw more spells
        starts = np.concatenate((starts, starts[-1] + np.cumsum(rng.geometric(0.002, 100))))
    labels = rng.integers(0, len(_REGIMES), size=len(starts) + 1)
    return labels[np.searchsorted(starts, np.arange(n_bars), side="right")]


def _first_time(start: str | pd.Timestamp, bar: pd.Timedelta) -> pd.Timestamp:
    first = pd.Timestamp(start)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    return first.floor(bar) if bar <= pd.Timedelta(days=1) else first.floor("D")


def check_synthetic_span(
    timeframe: str, n_bars: int, *, start: str | pd.Timestamp, market: Market
) -> None:
    """ValueError (saying how many bars fit) when ``n_bars`` bars of ``market`` from
    ``start`` would run past 2262, where pandas' timestamps end — e.g. a million hourly
    bars of a stock (about 1,800 a year) — so a request is refused before it is queued
    rather than failing on a worker with an out-of-bounds timestamp."""
    bar = check_timeframe(timeframe)
    _fitting_share(timeframe, n_bars, _first_time(start, bar), bar, market)


def _fitting_share(
    timeframe: str, n_bars: int, first: pd.Timestamp, bar: pd.Timedelta, market: Market
) -> float:
    """The market's share of grid times from ``first``; ValueError when the bars won't fit."""
    share = _open_share(first, bar, market)
    fits = int(_grid_limit(first, bar) * share * 0.99)  # the share is sampled: a margin
    if n_bars > fits:
        raise ValueError(
            f"{n_bars:,} {timeframe} bars of a {market} market from {first.date()} would run "
            f"past {_LAST_TIME.year} (the last year timestamps can hold): at most about "
            f"{fits:,} fit; ask for fewer bars, a longer timeframe or an earlier start"
        )
    return share


def _grid_limit(first: pd.Timestamp, bar: pd.Timedelta) -> int:
    return max(int((_LAST_TIME - first) / bar), 0)


def _open_share(first: pd.Timestamp, bar: pd.Timedelta, market: Market) -> float:
    """The share of grid times from ``first`` at which ``market`` trades (sampled)."""
    periods = min(_SAMPLE_BARS, _grid_limit(first, bar))
    if periods == 0:
        return 0.0
    sample = pd.date_range(first, periods=periods, freq=bar)
    return float(np.count_nonzero(market_open(market, sample, bar))) / periods


def _trading_times(
    first: pd.Timestamp, n_bars: int, bar: pd.Timedelta, market: Market, share: float
) -> pd.DatetimeIndex:
    """The first ``n_bars`` grid times from ``first`` at which ``market`` trades (``share``
    of the grid times, as sampled by ``_fitting_share``)."""
    limit = _grid_limit(first, bar)
    # Sized from the market's share of trading times (a stock trades ~20 % of the hours),
    # grown by a quarter when holidays made it short, never past the last timestamp.
    periods = min(int(n_bars / share * 1.02) + 64 if share else limit, limit)
    while True:
        grid = pd.date_range(first, periods=periods, freq=bar, name="timestamp")
        times = grid[market_open(market, grid, bar)]
        if len(times) >= n_bars:
            return times[:n_bars]
        if periods >= limit:  # the sampled share was a little optimistic
            raise ValueError(
                f"only {len(times):,} {market} bars fit before {_LAST_TIME.year}: ask for fewer"
            )
        periods = min(periods + periods // 4 + 64, limit)
