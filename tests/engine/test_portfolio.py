"""Universe runs and portfolio backtests: one strategy, several symbols."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.portfolio import run_portfolio, run_universe
from ktrdr.engine.strategy import load_strategy, validate_strategy_text

STRATEGY = validate_strategy_text(
    """
name: pf
data: {symbol: ANY, timeframe: 1h}
indicators:
  - {id: fast, type: ema, params: {period: 8}}
  - {id: slow, type: ema, params: {period: 30}}
decisions:
  signals:
    - crossover: {fast: fast, slow: slow}
costs: {commission: 0.001, slippage: 0.0005}
position_mode: long_short
"""
)


@pytest.fixture(scope="module")
def universe() -> dict[str, pd.DataFrame]:
    return {f"S{i}": generate_synthetic_bars("1h", 1500, seed=100 + i) for i in range(4)}


def test_universe_equals_each_symbol_on_its_own_share(universe: dict[str, pd.DataFrame]) -> None:
    result = run_universe(STRATEGY, universe, capital=100_000.0)
    for symbol, bars in universe.items():
        alone = run_backtest(STRATEGY, bars, capital=25_000.0)
        assert result.per_symbol[symbol].statistics == alone.statistics
    total = sum(r.equity_curve for r in result.per_symbol.values())
    pd.testing.assert_series_equal(result.equity_curve, total, check_names=False)
    assert result.statistics.final_equity == pytest.approx(
        sum(r.statistics.final_equity for r in result.per_symbol.values())
    )
    serial = run_universe(STRATEGY, universe, capital=100_000.0, max_workers=1)
    pd.testing.assert_series_equal(serial.equity_curve, result.equity_curve)


def test_portfolio_cash_never_negative_and_equity_is_cash_plus_positions(
    universe: dict[str, pd.DataFrame],
) -> None:
    result = run_portfolio(STRATEGY, universe, rebalance_every=24)
    assert (result.cash >= 0).all()
    recomputed = result.cash + result.position_values.sum(axis=1)
    np.testing.assert_allclose(result.equity_curve, recomputed, rtol=1e-12)
    assert result.rebalances > 10
    assert result.statistics.total_commission == pytest.approx(result.commission.sum())
    # Both sides are used.
    assert (result.units < 0).to_numpy().any() and (result.units > 0).to_numpy().any()


def test_weights_are_respected_at_every_rebalance(universe: dict[str, pd.DataFrame]) -> None:
    weights = {"S0": 0.4, "S1": 0.3, "S2": 0.2, "S3": 0.1}
    result = run_portfolio(
        STRATEGY, universe, weights=weights, rebalance_every=12, commission=0.0, slippage=0.0
    )
    opens = pd.concat({s: b["open"] for s, b in universe.items()}, axis=1).loc[result.units.index]
    rebalanced = result.commission.index[(result.units.diff().abs().sum(axis=1) > 0).to_numpy()]
    assert len(rebalanced) > 10
    for ts in rebalanced:
        units = result.units.loc[ts]
        prev = result.units.index.get_loc(ts) - 1
        value_at_open = result.cash.iloc[prev] + (result.units.iloc[prev] * opens.loc[ts]).sum()
        held = units * opens.loc[ts] / value_at_open
        sides = np.sign(units)
        for symbol, w in weights.items():
            assert held[symbol] == pytest.approx(w * sides[symbol], abs=1e-12), (ts, symbol)


def test_equal_weights_by_default_and_bad_weights_say_why(
    universe: dict[str, pd.DataFrame],
) -> None:
    assert run_portfolio(STRATEGY, universe).weights == {s: 0.25 for s in universe}
    for weights, fix in [
        ({"S0": 0.6, "S1": 0.6, "S2": 0.1, "S3": 0.1}, "at most 1"),
        ({"S0": 0.5, "S1": 0.5, "S2": 0.0, "S3": 0.0}, "must be > 0"),
        ({"S0": 0.5, "S9": 0.5}, "unknown symbol 'S9'"),
    ]:
        with pytest.raises(DataValidationError, match=fix):
            run_portfolio(STRATEGY, universe, weights=weights)


def test_portfolio_of_one_symbol_at_full_weight_is_a_single_backtest() -> None:
    bars = generate_synthetic_bars("1h", 1200, seed=3)
    one = run_portfolio(STRATEGY, {"X": bars}, commission=0.0, slippage=0.0)
    alone = run_backtest(STRATEGY, bars, commission=0.0, slippage=0.0)
    np.testing.assert_allclose(one.equity_curve, alone.equity_curve, rtol=1e-10)


def test_symbols_are_aligned_on_shared_bars() -> None:
    a = generate_synthetic_bars("1h", 600, seed=1)
    b = a.iloc[100:].copy()
    result = run_portfolio(load_strategy("sma_crossover"), {"A": a, "B": b})
    assert result.equity_curve.index[0] == a.index[100]


def test_monthly_rule_rebalances_at_the_first_bar_of_each_month() -> None:
    from ktrdr.engine.rebalance import calendar_due

    bars = generate_synthetic_bars("1h", 24 * 120, seed=5)
    universe = {"A": bars, "B": generate_synthetic_bars("1h", 24 * 120, seed=6)}
    index = pd.DatetimeIndex(bars.index)
    due = calendar_due(index, "monthly")
    firsts = index[due]
    assert [t.strftime("%Y-%m-%d %H:%M") for t in firsts] == [
        "2020-02-01 00:00", "2020-03-01 00:00", "2020-04-01 00:00", "2020-05-01 00:00",
    ]  # fmt: skip
    plain = run_portfolio(STRATEGY, universe)
    monthly = run_portfolio(STRATEGY, universe, rebalance="monthly")
    # Invested at each month's first bar, the book trades there only under the rule.
    invested = (monthly.units.shift(1).fillna(0.0) != 0).any(axis=1)
    fills = monthly.commission > 0
    for ts in firsts:
        assert fills[ts] == bool(invested[ts]), ts
    assert monthly.rebalances == plain.rebalances + sum(
        bool(invested[ts]) and not bool(plain.commission[ts] > 0) for ts in firsts
    )


def test_unknown_rebalance_rule_says_the_rules() -> None:
    bars = {"A": generate_synthetic_bars("1h", 300, seed=1)}
    with pytest.raises(DataValidationError, match="did you mean 'weekly'"):
        run_portfolio(STRATEGY, bars, rebalance="weekley")
