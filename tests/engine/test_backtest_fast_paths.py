"""The backtest's compiled shortcuts give the bits of the formulations they replace:
statistics aggregates against a per-bar loop and numpy, the fill pass without exits
against the pass that checks them, trade statistics from the kernel's table against the
trade table's, and a lazily built result against its parts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.backtest import aggregates as a
from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.backtest.exit_rules import any_exit_set
from ktrdr.engine.backtest.runner import build_trades, prepare_strategy, simulate, window_index
from ktrdr.engine.backtest.simulate import _fills, capped_fractions
from ktrdr.engine.backtest.statistics import _trade_stats, table_trade_summary
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.data.window import prepare_data
from ktrdr.engine.strategy import load_strategy

RNG = np.random.default_rng(20261202)


def _per_bar_drawdown(equity: np.ndarray, capital: float) -> tuple[float, int, int]:
    """The drawdown rule bar by bar: equity / running peak - 1 (NaN neither raises the
    peak nor counts as underwater), and the first longest underwater run."""
    peak, max_dd = capital, 0.0
    last_peak, longest, end_at = -1, 0, -1
    for t, e in enumerate(equity.tolist()):
        peak = e if e > peak else peak
        dd = e / peak - 1.0
        max_dd = dd if dd < max_dd else max_dd
        if dd < 0:
            if t - last_peak > longest:
                longest, end_at = t - last_peak, t
        else:
            last_peak = t
    return max_dd, longest, end_at


def _equity(n: int, trial: int) -> np.ndarray:
    steps = RNG.normal(0.0, 0.01, n)
    steps[RNG.random(n) < 0.3] = 0.0  # flat runs: no position
    equity = 100_000.0 * np.cumprod(1.0 + steps)
    if trial % 3 == 1:
        equity[RNG.random(n) < 0.05] = np.nan
    if trial % 7 == 2:
        equity[n // 2 :] -= 200_000.0  # a short blown through zero: negative equity
    if trial % 11 == 3:
        equity[n // 3] = np.inf
    if trial % 5 == 4:
        equity[:] = 100_000.0  # never moves
    return equity


@pytest.mark.parametrize("trial", range(60))
def test_equity_aggregates_are_the_per_bar_and_numpy_formulations(trial: int) -> None:
    n = int(RNG.integers(1, 3000))
    equity = _equity(n, trial)
    held = np.where(RNG.random(n) < 0.5, 0.0, RNG.normal(0.0, 10.0, n))
    capital = 100_000.0
    agg = np.full(a.N_AGGREGATES, np.nan)
    returns = np.empty(n)
    with np.errstate(invalid="ignore"):
        a.equity_aggregates(equity, held, capital, returns, agg)
        prev = np.concatenate(([capital], equity[:-1]))
        want = (equity - prev) / prev
    np.testing.assert_array_equal(returns, want)
    max_dd, longest, end_at = _per_bar_drawdown(equity, capital)
    assert (agg[a.MAX_DD], agg[a.DD_BARS], agg[a.DD_END]) == (max_dd, longest, end_at)
    assert agg[a.EXPOSURE] == np.mean(held != 0)
    with np.errstate(invalid="ignore"):
        mean = np.mean(want)
        std = np.std(want, ddof=1) if n > 1 else np.nan
        downside = np.sqrt(np.mean(np.minimum(want, 0.0) ** 2))
    np.testing.assert_array_equal(agg[[a.MEAN, a.STD, a.DOWNSIDE]], [mean, std, downside])


def _fill_arrays(n: int, side_choices: list[int]) -> tuple[np.ndarray, ...]:
    close = 100.0 * np.cumprod(1.0 + RNG.normal(0.0, 0.01, n))
    open_ = np.concatenate(([100.0], close[:-1])) * (1.0 + RNG.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * (1.0 + RNG.random(n) * 0.01)
    low = np.minimum(open_, close) * (1.0 - RNG.random(n) * 0.01)
    target = np.repeat(RNG.choice(side_choices, n // 5 + 1), 5)[:n].astype(np.int8)
    return open_, high, low, close, target


@pytest.mark.parametrize("sides", [[0, 1], [-1, 0, 1], [-1, 1]])
def test_fills_without_exits_skip_only_checks_that_find_nothing(sides: list[int]) -> None:
    for _ in range(20):
        n = int(RNG.integers(1, 2000))
        open_, high, low, close, target = _fill_arrays(n, sides)
        fraction = np.where(RNG.random(n) < 0.1, np.nan, RNG.random(n))
        off = np.full(3, np.nan)
        unused = np.broadcast_to(np.float64(np.nan), (n,))
        args = (fraction, np.nan, off, unused, unused, unused, 0, 0.001, 0.0005, 10_000.0)
        checked = _fills(open_, high, low, close, target, *args, True)
        skipped = _fills(open_, high, low, close, target, *args, False)
        k = checked[3]
        assert skipped[3] == k
        for got, want in zip(skipped[:2], checked[:2], strict=True):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(skipped[2][:, :k], checked[2][:, :k])


@pytest.mark.parametrize("sides", [[0, 1], [-1, 0, 1], [-1, 1]])
def test_bars_held_from_the_trade_table_is_the_count_of_bars_holding_units(
    sides: list[int],
) -> None:
    # Reversals, stops and targets inside bars and through gaps, time stops, entries on
    # the last bar and positions closed at the end of the data.
    at_end = 0
    for trial in range(40):
        n = int(RNG.integers(1, 1500))
        open_, high, low, close, target = _fill_arrays(n, sides)
        fraction = np.where(RNG.random(n) < 0.1, np.nan, RNG.random(n))
        # No exit, tight and wide stops / targets, a trailing stop; time stops in some.
        exits = np.array(
            [[np.nan] * 3, [0.004, 0.006, np.nan], [0.05, 0.08, np.nan], [np.nan, np.nan, 0.02]]
        )[trial % 4]
        unused = np.broadcast_to(np.float64(np.nan), (n,))
        time_bars = int(RNG.integers(0, 12)) if trial % 3 == 0 else 0
        _, held, table, k = _fills(
            open_, high, low, close, target, fraction, np.nan, exits, unused, unused, unused,
            time_bars, 0.001, 0.0005, 10_000.0, True,
        )  # fmt: skip
        assert a.bars_held(table, k) == np.count_nonzero(held), (trial, n)
        at_end += int(table[8, :k].sum())
    assert at_end > 0, "some positions were still open at the end of the data"


def test_exits_are_used_when_any_is_set() -> None:
    n = 50
    off = np.full(3, np.nan)
    unused = np.broadcast_to(np.float64(np.nan), (3, n))
    assert not any_exit_set(off, unused, 0)
    assert not any_exit_set(off, np.full((3, n), np.nan), 0)  # given, but never a number
    assert any_exit_set(off, unused, 5)
    assert any_exit_set(np.array([np.nan, 0.02, np.nan]), unused, 0)
    late = np.full((3, n), np.nan)
    late[2, n - 1] = 1.5  # an ATR trail known only at the last bar
    assert any_exit_set(off, late, 0)


@pytest.mark.parametrize("name", ["sma_crossover", "macd_adx_long_short", "trend_stops"])
def test_trade_statistics_from_the_kernel_table_are_the_trade_tables(name: str) -> None:
    strategy = load_strategy(name)
    data = prepare_data(generate_synthetic_bars("1h", 20_000, seed=5))
    target = prepare_strategy(strategy, data)
    sim = simulate(strategy, data, target, capital=1e5, commission=0.001, slippage=0.0005)
    table = build_trades(
        sim, window_index(data), data.window_column("open"), data.window_column("close")
    )
    assert len(table) > 100
    assert table_trade_summary(sim.table) == _trade_stats(table)


def test_no_trades_give_the_empty_trade_figures() -> None:
    empty = np.zeros((10, 0))
    figures = table_trade_summary(empty)
    assert figures["num_trades"] == 0 and figures["total_commission"] == 0.0
    assert all(math.isnan(figures[k]) for k in ("win_rate_pct", "profit_factor"))


def test_a_lazy_result_builds_its_parts_from_the_window() -> None:
    bars = generate_synthetic_bars("1h", 5_000, seed=9)
    start, end = bars.index[1000], bars.index[3999]
    result = run_backtest(load_strategy("sma_crossover"), bars, start=start, end=end)
    window = bars.loc[start:end]
    assert "trade_table" not in result.__dict__  # nothing built before it is read
    for series, name in ((result.equity_curve, "equity"), (result.positions, "units")):
        assert series.name == name and series.index.equals(window.index) and len(series) == 3000
    pd.testing.assert_series_equal(result.closes, window["close"], check_freq=False)
    table = result.trade_table
    assert result.trade_table is table  # built once
    assert table.entry_time[0] >= start and table.exit_time[-1] <= end
    first = result.trades[0]
    assert first.entry_price == table.entry_price[0] and first.net_pnl == table.net_pnl[0]
    assert result.statistics.num_trades == len(result.trades)


def test_capped_fractions_are_the_numpy_formulation() -> None:
    sigma = RNG.random(5000) * 0.3
    sigma[RNG.random(5000) < 0.05] = 0.0  # flat: no entry
    sigma[RNG.random(5000) < 0.05] = np.nan  # not yet known
    sigma[RNG.random(5000) < 0.01] = np.inf
    for target, cap in ((0.1, 1.0), (0.25, 0.5), (0.0, 1.0)):
        with np.errstate(divide="ignore", invalid="ignore"):
            wanted = target / sigma
        wanted[~np.isfinite(wanted)] = np.nan
        want = np.minimum(wanted, cap)
        assert capped_fractions(target, sigma, cap).tobytes() == want.tobytes()


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_window_clock_reads_the_timestamps_the_index_gives(unit: str, tz: str | None) -> None:
    """A batch reads a window's timestamps through ``WindowClock`` (taken once): the same
    first and last, and the same days between two bars, to the bit, as the index's own
    Timestamps, in every resolution and time zone."""
    from ktrdr.engine.backtest.statistics import WindowClock

    # Irregular steps of up to ~1000 s (ns, us; sub-second ones among them) or ~12 days (s).
    steps = RNG.integers(1, 10**6, 500) * {"ns": 10**6, "us": 10**3, "s": 1}[unit]
    ticks = np.cumsum(np.concatenate(([0], steps))).astype(np.int64)
    index = pd.DatetimeIndex(ticks.astype(f"datetime64[{unit}]"))
    index = index if tz is None else index.tz_localize("UTC").tz_convert(tz)
    if unit == "ns":
        # Bars whose span in ns is past 2**53: where a float of it would round.
        index = index.append(pd.DatetimeIndex([index[-1] + pd.Timedelta(days=40_000)]))
    assert index.unit == unit
    clock = WindowClock(index)
    assert (clock.start, clock.end, clock.bars) == (index[0], index[-1], len(index))
    for first, last in [(0, len(index) - 1), (3, 3), *RNG.integers(0, len(index), (200, 2))]:
        want = (index[last] - index[first]).total_seconds() / 86400.0
        assert clock.days_between(int(first), int(last)) == want
