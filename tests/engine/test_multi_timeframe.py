"""Indicators on a higher timeframe: resampled from the base bars, seen only once closed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktrdr.engine.backtest import prepare_data, prepare_strategy
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.data.resample import resample_bars
from ktrdr.engine.errors import StrategyError
from ktrdr.engine.features import compute_features
from ktrdr.engine.strategy import load_strategy, validate_strategy_text

BASE = """
name: mtf
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: daily_sma, type: sma, timeframe: 1d, params: {period: 3}}
  - {id: rsi, type: rsi, params: {period: 14}}
decisions:
  signals:
    - threshold: {input: rsi, below: 30, action: BUY}
"""


def test_a_daily_sma_changes_at_the_first_hourly_bar_after_the_daily_close() -> None:
    bars = generate_synthetic_bars("1h", 24 * 10, seed=5)  # starts at midnight UTC
    assert bars.index[0].hour == 0
    features = compute_features(validate_strategy_text(BASE), bars)
    values = pd.Series(features["daily_sma"], index=bars.index)
    daily_close = bars["close"].groupby(bars.index.floor("D")).last()
    # The SMA of days 1-3 exists once day 3 has closed: from day 4's 00:00 bar on.
    day4 = bars.index[0] + pd.Timedelta(days=3)
    assert values[: day4 - pd.Timedelta(hours=1)].isna().all()
    assert values[day4] == pytest.approx(daily_close.iloc[:3].mean(), rel=1e-12)
    # ... and it holds all day 4, changing exactly at day 5's first bar.
    day5 = day4 + pd.Timedelta(days=1)
    assert (values[day4 : day5 - pd.Timedelta(hours=1)] == values[day4]).all()
    assert values[day5] == pytest.approx(daily_close.iloc[1:4].mean(), rel=1e-12)
    assert values[day5] != values[day5 - pd.Timedelta(hours=1)]


def test_gaps_and_a_missing_day_keep_values_causal() -> None:
    bars = generate_synthetic_bars("1h", 24 * 8, seed=6)
    # Day 3 has no bars at all; day 5 loses its afternoon.
    bars = bars.drop(bars.index[48:72]).drop(bars.index[96 + 12 : 96 + 24], errors="ignore")
    daily = resample_bars(bars, "1d")
    assert len(daily) == 7  # the empty day is not a bar
    features = compute_features(validate_strategy_text(BASE), bars)
    values = pd.Series(features["daily_sma"], index=bars.index)
    for ts, value in values.dropna().items():
        # Built only from days that had closed before this bar opened.
        seen = daily[daily.index + pd.Timedelta(days=1) <= ts]
        assert value == pytest.approx(seen["close"].iloc[-3:].mean(), rel=1e-12)


_MTF = load_strategy("rsi_daily_trend")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.integers(150, 700), factor_seed=st.integers(0, 10_000))
def test_no_decision_depends_on_a_daily_bar_still_open(
    seed: int, cut: int, factor_seed: int
) -> None:
    """Rescale every hourly bar after ``cut``: decisions up to ``cut`` must not move, even
    though the day containing ``cut`` is still open (its daily bar changes)."""
    bars = generate_synthetic_bars("1h", 800, seed=seed)
    changed = bars.copy()
    factors = np.random.default_rng(factor_seed).uniform(0.8, 1.2, size=len(bars) - cut - 1)
    cols = [changed.columns.get_loc(c) for c in ("open", "high", "low", "close")]
    changed.iloc[cut + 1 :, cols] *= factors[:, None]
    a, b = (prepare_strategy(_MTF, prepare_data(x)) for x in (bars, changed))
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])
    fa, fb = (compute_features(_MTF, x)["daily_trend"] for x in (bars, changed))
    np.testing.assert_array_equal(fa[: cut + 1], fb[: cut + 1])


@pytest.mark.parametrize(
    ("timeframe", "fix"),
    [
        ("15m", "below the strategy's 1h bars; use the base timeframe or a higher one"),
        ("2h", "unknown timeframe '2h'"),
    ],
)
def test_bad_higher_timeframes_say_how_to_fix_them(timeframe: str, fix: str) -> None:
    with pytest.raises(StrategyError, match=fix):
        validate_strategy_text(BASE.replace("timeframe: 1d", f"timeframe: {timeframe}"))


def test_weekly_on_four_hour_bars_is_accepted() -> None:
    text = BASE.replace("timeframe: 1h}", "timeframe: 4h}")
    text = text.replace("timeframe: 1d,", "timeframe: 1w,")
    strategy = validate_strategy_text(text)
    assert strategy.bars_per("1w") == 42


def test_warmup_counts_higher_timeframe_bars() -> None:
    strategy = validate_strategy_text(BASE)
    # SMA(3) on days: 3 days plus the day that must close, in hours.
    assert strategy.warmup_bars() >= (3 + 1) * 24
