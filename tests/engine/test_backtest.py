"""Backtest engine: hand-computed fills, costs, P&L, equity and statistics; no look-ahead."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktrdr.engine.backtest import (
    BacktestCancelled,
    bars_per_year,
    prepare_data,
    prepare_strategy,
    run_backtest,
    simulate_fills,
)
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.errors import DataNotFoundError
from ktrdr.engine.strategy import builtin_strategy_names, load_strategy, validate_strategy_text

THRESHOLD_STRATEGY = """
name: threshold_test
data: {symbol: TEST, timeframe: 1d}
indicators:
  - {id: sma1, type: sma, params: {period: 1}}
decisions:
  signals:
    - threshold: {input: close, above: 105, action: BUY}
    - threshold: {input: close, below: 95, action: SELL}
costs: {commission: 0.001, slippage: 0.002}
position_sizing: {fraction: 1.0}
position_mode: MODE
"""

# Bar 1 closes above 105 (BUY decided), bar 3 closes below 95 (SELL decided).
OPENS = [100.0, 100.0, 107.0, 108.0, 93.0, 92.0]
CLOSES = [100.0, 106.0, 108.0, 94.0, 92.0, 92.0]


def _threshold_strategy(mode: str = "long_only"):  # type: ignore[no-untyped-def]
    return validate_strategy_text(THRESHOLD_STRATEGY.replace("MODE", mode))


def test_simulate_fills_at_next_open_without_costs() -> None:
    opens = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    closes = np.array([10.5, 11.5, 12.5, 13.5, 14.5])
    target = np.array([1, 1, 0, 0, 0], dtype=np.int8)
    sim = simulate_fills(
        opens, closes, target, capital=1000.0, fraction=1.0, commission=0.0, slippage=0.0
    )
    units = 1000.0 / 11.0  # bought at bar 1's open, the bar after the decision
    assert list(sim.entry_index) == [1]
    assert list(sim.exit_index) == [3]  # flat decided at bar 2's close -> bar 3's open
    assert sim.entry_fill[0] == pytest.approx(11.0)
    assert sim.exit_fill[0] == pytest.approx(13.0)
    expected = [1000.0, units * 11.5, units * 12.5, units * 13.0, units * 13.0]
    np.testing.assert_allclose(sim.equity, expected, rtol=1e-12)
    np.testing.assert_allclose(sim.units, [0.0, units, units, 0.0, 0.0], rtol=1e-12)


def test_simulate_short_profits_when_price_falls() -> None:
    sim = simulate_fills(
        np.array([100.0, 100.0, 90.0]),
        np.array([100.0, 95.0, 90.0]),
        np.array([-1, 0, 0], dtype=np.int8),
        capital=1000.0,
        fraction=1.0,
        commission=0.0,
        slippage=0.0,
    )
    assert list(sim.side) == [-1]
    assert sim.size[0] == pytest.approx(10.0)
    np.testing.assert_allclose(sim.equity, [1000.0, 1050.0, 1100.0])


def test_simulate_reversal_closes_then_opens_at_same_open() -> None:
    sim = simulate_fills(
        np.array([100.0, 100.0, 110.0, 100.0]),
        np.array([100.0, 105.0, 110.0, 100.0]),
        np.array([1, -1, -1, -1], dtype=np.int8),
        capital=1000.0,
        fraction=1.0,
        commission=0.0,
        slippage=0.0,
    )
    # Long 10 @100 (bar 1) -> closed @110 (bar 2) = +100; short 1100/110=10 @110 -> end @100.
    assert list(sim.side) == [1, -1]
    assert list(sim.entry_index) == [1, 2]
    assert list(sim.exit_index) == [2, 3]
    assert bool(sim.closed_at_end[1])
    assert sim.equity[-1] == pytest.approx(1200.0)


def test_run_backtest_trade_pnl_includes_entry_and_exit_costs(make_bars) -> None:  # type: ignore[no-untyped-def]
    bars = make_bars(OPENS, CLOSES)
    result = run_backtest(_threshold_strategy(), bars, capital=10_000.0)
    comm, slip = 0.001, 0.002
    entry_fill = 107.0 * (1 + slip)
    notional = 10_000.0 / (1 + comm)
    size = notional / entry_fill
    entry_comm = comm * notional
    exit_fill = 93.0 * (1 - slip)
    exit_comm = comm * size * exit_fill
    net = size * (exit_fill - entry_fill) - entry_comm - exit_comm

    assert len(result.trades) == 1
    trade = result.trades[0]
    assert trade.entry_time == bars.index[2]
    assert trade.exit_time == bars.index[4]
    assert trade.side == "long"
    assert trade.size == pytest.approx(size)
    assert trade.entry_price == pytest.approx(entry_fill)
    assert trade.exit_price == pytest.approx(exit_fill)
    assert trade.commission == pytest.approx(entry_comm + exit_comm)
    assert trade.gross_pnl == pytest.approx(size * (93.0 - 107.0))
    assert trade.slippage_cost == pytest.approx(size * (107.0 * slip + 93.0 * slip))
    assert trade.net_pnl == pytest.approx(net)
    assert trade.net_pnl == pytest.approx(trade.gross_pnl - trade.slippage_cost - trade.commission)
    assert trade.pnl_pct == pytest.approx(net / (size * entry_fill) * 100)
    assert trade.exit_reason == "signal"
    assert result.statistics.final_equity == pytest.approx(10_000.0 + net)

    equity = [10_000.0, 10_000.0, size * 108.0, size * 94.0, 10_000.0 + net, 10_000.0 + net]
    np.testing.assert_allclose(result.equity_curve.to_numpy(), equity, rtol=1e-12)


def test_run_backtest_statistics_match_hand_computation(make_bars) -> None:  # type: ignore[no-untyped-def]
    bars = make_bars(OPENS, CLOSES)
    result = run_backtest(_threshold_strategy(), bars, capital=10_000.0)
    s = result.statistics
    eq = result.equity_curve.to_numpy()
    # Independent hand computation from the equity values checked in the test above.
    bpy = 5 / (5 / 365.25)  # 5 daily steps spanning 5 days
    r = np.array([0.0, 0.0, eq[2] / 1e4 - 1, eq[3] / eq[2] - 1, eq[4] / eq[3] - 1, 0.0])
    assert s.bars_per_year == pytest.approx(bpy)
    assert s.total_return_pct == pytest.approx((eq[-1] / 1e4 - 1) * 100)
    assert s.annualized_return_pct == pytest.approx(r.mean() * bpy * 100)
    assert s.cagr_pct == pytest.approx(((eq[-1] / 1e4) ** (bpy / 6) - 1) * 100)
    assert s.volatility_pct == pytest.approx(r.std(ddof=1) * math.sqrt(bpy) * 100)
    assert s.sharpe_ratio == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(bpy))
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert s.sortino_ratio == pytest.approx(r.mean() / downside * math.sqrt(bpy))
    max_dd = eq[4] / eq[2] - 1  # peak at bar 2, trough after the exit costs at bar 4
    assert s.max_drawdown_pct == pytest.approx(max_dd * 100)
    assert s.max_drawdown_duration_bars == 3  # bars 3, 4, 5 under the bar-2 peak
    assert s.max_drawdown_duration_days == pytest.approx(3.0)
    assert s.calmar_ratio == pytest.approx((s.cagr_pct / 100) / abs(max_dd))
    assert s.buy_and_hold_return_pct == pytest.approx(-8.0)
    assert s.num_trades == 1
    assert s.win_rate_pct == 0.0
    assert s.best_trade_pct == s.worst_trade_pct == s.avg_trade_pct == result.trades[0].pnl_pct
    assert s.profit_factor == 0.0  # no gross wins over one loss
    assert s.exposure_pct == pytest.approx(100 * 2 / 6)


def test_run_backtest_short_side_in_long_short_mode(make_bars) -> None:  # type: ignore[no-untyped-def]
    bars = make_bars(OPENS, CLOSES)
    result = run_backtest(_threshold_strategy("long_short"), bars, capital=10_000.0)
    # Long from bar 2, reversed to short at bar 4's open, short closed at the last close.
    assert [t.side for t in result.trades] == ["long", "short"]
    short = result.trades[1]
    assert short.entry_time == bars.index[4]
    assert short.exit_reason == "end_of_data"
    assert short.exit_price == pytest.approx(92.0 * 1.002)  # buy back at close + slippage
    total = sum(t.net_pnl for t in result.trades)
    assert result.statistics.final_equity == pytest.approx(10_000.0 + total)


def test_run_backtest_closes_open_position_at_last_close(make_bars) -> None:  # type: ignore[no-untyped-def]
    bars = make_bars([100.0, 100.0, 107.0, 110.0], [100.0, 106.0, 108.0, 111.0])
    result = run_backtest(_threshold_strategy(), bars, capital=10_000.0, slippage=0.0)
    (trade,) = result.trades
    assert trade.exit_reason == "end_of_data"
    assert trade.exit_time == bars.index[-1]
    assert trade.exit_price == pytest.approx(111.0)
    assert result.statistics.final_equity == pytest.approx(10_000.0 + trade.net_pnl)


def test_run_backtest_reports_phases_and_cancels(bars_1h: pd.DataFrame) -> None:
    strategy = load_strategy("sma_crossover")
    seen: list[tuple[float, str]] = []
    run_backtest(strategy, bars_1h, progress=lambda f, p, m: seen.append((f, p)))
    phases = [p for _, p in seen]
    assert phases == ["data_loading", "strategy_init", "simulation", "results", "results"]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert seen[-1][0] == 1.0

    calls = iter([False, False, True])
    with pytest.raises(BacktestCancelled, match="simulation"):
        run_backtest(strategy, bars_1h, should_cancel=lambda: next(calls))


def test_run_backtest_rejects_empty_range_and_reversed_dates(bars_1h: pd.DataFrame) -> None:
    strategy = load_strategy("sma_crossover")
    with pytest.raises(DataNotFoundError, match="choose dates inside the data"):
        run_backtest(strategy, bars_1h, start="2030-01-01", end="2030-02-01")
    with pytest.raises(ValueError, match="is after end"):
        run_backtest(strategy, bars_1h, start="2020-03-01", end="2020-02-01")


def test_run_backtest_warms_up_from_history_before_start(bars_1h: pd.DataFrame) -> None:
    strategy = load_strategy("sma_crossover")
    start = bars_1h.index[500]
    data = prepare_data(bars_1h, start=start)
    assert data.window.index[0] == start
    result = run_backtest(strategy, bars_1h, start=start)
    assert result.equity_curve.index[0] == start
    # The slow SMA exists at the window's first bar: warm-up came from earlier bars.
    assert not math.isnan(bars_1h["close"].rolling(30).mean().loc[start])
    assert result.statistics.bars == len(bars_1h) - 500


def test_result_to_dict_is_strict_json(make_bars) -> None:  # type: ignore[no-untyped-def]
    bars = make_bars([100.0] * 5, [100.0] * 5)  # no trades: ratios are undefined
    result = run_backtest(_threshold_strategy(), bars)
    payload = result.to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert payload["statistics"]["win_rate_pct"] is None
    assert payload["statistics"]["sharpe_ratio"] is None
    assert payload["equity_curve"][0] == {
        "timestamp": "2024-01-01T00:00:00+00:00",
        "equity": 100_000.0,
        "close": 100.0,  # the report's price chart and buy-and-hold line
    }
    assert '"trades": []' in text


# Model-driven examples need a trained model: test_training.py runs those end to end.
RULE_EXAMPLES = [n for n in builtin_strategy_names() if load_strategy(n).decisions.model is None]


def test_every_example_strategy_runs_and_balances(bars_1h: pd.DataFrame) -> None:
    assert set(RULE_EXAMPLES) >= {"sma_crossover", "rsi_fuzzy", "macd_adx_long_short"}
    for name in RULE_EXAMPLES:
        strategy = load_strategy(name)
        bars = generate_synthetic_bars(strategy.data.timeframe, 3000, seed=11)
        result = run_backtest(strategy, bars, start=bars.index[strategy.warmup_bars()])
        assert result.statistics.num_trades > 0, name
        total = sum(t.net_pnl for t in result.trades)
        assert result.statistics.final_equity == pytest.approx(100_000.0 + total), name
        assert all(t.commission > 0 for t in result.trades), name
        json.dumps(result.to_dict(max_equity_points=100), allow_nan=False)
    long_short = run_backtest(
        load_strategy("macd_adx_long_short"), generate_synthetic_bars("4h", 3000, seed=11)
    )
    assert {t.side for t in long_short.trades} == {"long", "short"}


def test_bars_per_year_follows_timestamps() -> None:
    hourly = pd.date_range("2024-01-01", periods=1000, freq="1h", tz="UTC")
    assert bars_per_year(hourly, "1h") == pytest.approx(8766.0)
    weekdays = pd.bdate_range("2024-01-01", periods=500, tz="UTC")
    assert bars_per_year(weekdays, "1d") == pytest.approx(261, abs=1.5)


_LOOKAHEAD_STRATEGIES = {name: load_strategy(name) for name in RULE_EXAMPLES}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(_LOOKAHEAD_STRATEGIES)),
    seed=st.integers(0, 10_000),
    cut=st.integers(60, 398),
    factor_seed=st.integers(0, 10_000),
)
def test_no_lookahead_changing_future_bars_keeps_past_decisions(
    name: str, seed: int, cut: int, factor_seed: int
) -> None:
    strategy = _LOOKAHEAD_STRATEGIES[name]
    bars = generate_synthetic_bars(strategy.data.timeframe, 400, seed=seed)
    changed = bars.copy()
    # Rescale every bar after `cut` by its own random factor (keeps OHLC consistent).
    factors = np.random.default_rng(factor_seed).uniform(0.5, 1.5, size=len(bars) - cut - 1)
    cols = ["open", "high", "low", "close"]
    changed.iloc[cut + 1 :, [changed.columns.get_loc(c) for c in cols]] *= factors[:, None]

    targets = [prepare_strategy(strategy, prepare_data(b)) for b in (bars, changed)]
    np.testing.assert_array_equal(targets[0][: cut + 1], targets[1][: cut + 1])
    a, b = run_backtest(strategy, bars), run_backtest(strategy, changed)
    # Fills at or before bar `cut` were decided at or before `cut - 1`.
    np.testing.assert_array_equal(
        a.positions.to_numpy()[: cut + 1], b.positions.to_numpy()[: cut + 1]
    )
    np.testing.assert_array_equal(
        a.equity_curve.to_numpy()[: cut + 1], b.equity_curve.to_numpy()[: cut + 1]
    )
    done_a = [t for t in a.trades if t.exit_time <= bars.index[cut]]
    done_b = [t for t in b.trades if t.exit_time <= bars.index[cut]]
    assert done_a == done_b
