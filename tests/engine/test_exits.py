"""Stops, targets, trailing and time stops, and position sizing, on hand-computed bars.

Every case runs long and mirrored short: prices reflected around 100 (p -> 200 - p) turn
a falling bar into a rising one, so a short meets exactly the long's situation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.backtest import prepare_data, run_backtest
from ktrdr.engine.backtest.result import EXIT_REASONS
from ktrdr.engine.backtest.simulate import Exits, simulate_fills
from ktrdr.engine.errors import StrategyError
from ktrdr.engine.strategy import validate_strategy_text

# Bars as (open, high, low, close); target +1 from the first bar's close.
Bar = tuple[float, float, float, float]


def _run(bars: list[Bar], side: int, exits: Exits, target: list[int] | None = None):  # type: ignore[no-untyped-def]
    arr = np.array(bars, dtype=float)
    if side < 0:
        arr = 200.0 - arr[:, [0, 2, 1, 3]]  # reflect around 100: high and low swap
    o, h, lo, c = arr.T
    tgt = np.array(target if target is not None else [side] * len(bars), dtype=np.int8)
    if target is not None and side < 0:
        tgt = -tgt
    return simulate_fills(
        o, c, tgt, capital=10_000.0, fraction=1.0, commission=0.0, slippage=0.0,
        high=h, low=lo, exits=exits,
    )  # fmt: skip


def _exit(sim, side: int) -> tuple[int, float, str]:  # type: ignore[no-untyped-def]
    """First trade: exit bar, exit price in the long frame, reason."""
    price = sim.exit_fill[0] if side > 0 else 200.0 - sim.exit_fill[0]
    return int(sim.exit_index[0]), float(price), EXIT_REASONS[sim.exit_reason[0]]


BOTH = pytest.mark.parametrize("side", [1, -1], ids=["long", "short"])


@BOTH
def test_stop_loss_hit_inside_a_bar_fills_at_the_stop(side: int) -> None:
    bars = [(100, 101, 99, 100), (100, 101, 99.5, 100), (99, 99.5, 97.5, 98.5), (98, 99, 97, 98)]
    sim = _run(bars, side, Exits(stop_fraction=0.02))
    # Entered at bar 1's open 100; stop 98; bar 2's low 97.5 reaches it.
    assert _exit(sim, side) == (2, pytest.approx(98.0), "stop_loss")
    assert sim.entry_fill[0] == pytest.approx(100.0)


@BOTH
def test_a_gap_through_the_stop_fills_at_the_open(side: int) -> None:
    bars = [(100, 101, 99, 100), (100, 101, 99.5, 100), (96, 97, 95, 96.5), (97, 98, 96, 97)]
    sim = _run(bars, side, Exits(stop_fraction=0.02))
    assert _exit(sim, side) == (2, pytest.approx(96.0), "stop_loss")


@BOTH
def test_a_bar_touching_stop_and_target_exits_at_the_stop(side: int) -> None:
    bars = [(100, 101, 99, 100), (100, 101, 99.5, 100), (100, 105, 97, 101), (101, 102, 100, 101)]
    sim = _run(bars, side, Exits(stop_fraction=0.02, take_profit_fraction=0.04))
    assert _exit(sim, side) == (2, pytest.approx(98.0), "stop_loss")


@BOTH
def test_take_profit_inside_a_bar_and_through_a_gap(side: int) -> None:
    inside = [(100, 101, 99, 100), (100, 101, 99.5, 100), (101, 104.5, 100.5, 104), (104,) * 4]
    sim = _run(inside, side, Exits(take_profit_fraction=0.04))
    assert _exit(sim, side) == (2, pytest.approx(104.0), "take_profit")
    gap = [(100, 101, 99, 100), (100, 101, 99.5, 100), (106, 107, 105, 106), (106,) * 4]
    sim = _run(gap, side, Exits(take_profit_fraction=0.04))
    assert _exit(sim, side) == (2, pytest.approx(106.0), "take_profit")


@BOTH
def test_trailing_stop_ratchets_with_the_best_price(side: int) -> None:
    bars = [
        (100, 101, 99, 100),
        (100, 103, 99.5, 102),  # entry at 100; best so far 103 -> trail 97.85
        (104, 110, 103, 109),  # open 104 -> trail 98.8, then high 110 -> 104.5 next bar
        (109, 109.5, 104, 105),  # low 104 reaches 104.5
        (105,) * 4,
    ]
    sim = _run(bars, side, Exits(trailing_fraction=0.05))
    # 5% under the best high (long), 5% over the best low (short: 200 - 110 = 90).
    level = 110 * 0.95 if side > 0 else 200 - 90 * 1.05
    assert _exit(sim, side) == (3, pytest.approx(level), "trailing_stop")


@BOTH
def test_trailing_stop_is_not_moved_by_the_same_bars_high(side: int) -> None:
    # The bar's low comes first or last — unknown: its own high must not tighten the stop.
    bars = [(100, 101, 99, 100), (100, 101, 99.5, 100), (100, 120, 97, 119), (119,) * 4]
    sim = _run(bars, side, Exits(trailing_fraction=0.05))
    assert _exit(sim, side) == (3, pytest.approx(119.0), "end_of_data")


@BOTH
def test_time_stop_exits_at_the_open_n_bars_after_entry(side: int) -> None:
    bars = [(100, 101, 99, 100)] + [(100 + i, 101 + i, 99 + i, 100 + i) for i in range(1, 6)]
    sim = _run(bars, side, Exits(time_stop_bars=3))
    assert _exit(sim, side) == (4, pytest.approx(104.0), "time_stop")


@BOTH
def test_after_a_stop_no_reentry_until_the_target_changes(side: int) -> None:
    bars = [(100, 101, 99, 100), (100, 101, 99.5, 100), (99, 99.5, 97.5, 98.5)]
    bars += [(98, 99, 97, 98)] * 3 + [(98, 99, 97.5, 98)] * 3
    target = [1, 1, 1, 1, 0, 1, 1, 1, 1]
    sim = _run(bars, side, Exits(stop_fraction=0.02), target)
    assert len(sim.entry_index) == 2
    # Stopped on bar 2; flat while the target stays long; re-entered after it went flat.
    assert sim.exit_index[0] == 2 and sim.entry_index[1] == 6


@BOTH
def test_atr_distance_is_the_one_known_at_the_decision(side: int) -> None:
    bars = [(100, 101, 99, 100), (100, 101, 99.5, 100), (99, 99.5, 96.5, 98), (98,) * 4]
    distance = np.array([3.0, 9.0, 9.0, 9.0])  # decided at bar 0's close: 3
    sim = _run(bars, side, Exits(stop_distance=distance))
    assert _exit(sim, side) == (2, pytest.approx(97.0), "stop_loss")


def test_stops_need_high_and_low() -> None:
    with pytest.raises(ValueError, match="high and low"):
        simulate_fills(
            np.ones(3), np.ones(3), np.ones(3, dtype=np.int8), capital=1.0, fraction=1.0,
            commission=0.0, slippage=0.0, exits=Exits(stop_fraction=0.1),
        )  # fmt: skip


def test_fixed_units_are_capped_by_cash() -> None:
    o = c = np.array([10.0, 10.0, 10.0])
    tgt = np.ones(3, dtype=np.int8)
    kw = {"capital": 1000.0, "fraction": 1.0, "commission": 0.0, "slippage": 0.0}
    assert simulate_fills(o, c, tgt, fixed_units=30.0, **kw).size[0] == 30.0
    assert simulate_fills(o, c, tgt, fixed_units=500.0, **kw).size[0] == pytest.approx(100.0)


STRATEGY = """
name: sized
data: {symbol: TEST, timeframe: 1d}
indicators:
  - {id: fast, type: sma, params: {period: 3}}
  - {id: slow, type: sma, params: {period: 8}}
decisions:
  signals:
    - crossover: {fast: fast, slow: slow}
costs: {commission: 0.0, slippage: 0.0}
"""


def _bars(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.date_range("2020-01-01", periods=n, freq="1D", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
         "volume": 1000.0}, index=idx,
    )  # fmt: skip


def test_volatility_target_commits_target_over_realised_sigma_capped() -> None:
    strategy = validate_strategy_text(
        STRATEGY + "position_sizing: {method: volatility_target, target_volatility: 0.05,"
        " volatility_period: 20, max_fraction: 0.9}\n"
    )
    bars = _bars()
    result = run_backtest(strategy, bars)
    first = result.trade_table
    entry = int(bars.index.get_loc(first.entry_time[0]))
    returns = np.diff(np.log(bars["close"].to_numpy()[entry - 21 : entry]))
    sigma = returns.std(ddof=1) * np.sqrt(365.25)  # 1d bars, nominal (24/7) year
    fraction = min(0.05 / sigma, 0.9)
    assert first.size[0] * first.entry_price[0] == pytest.approx(fraction * 100_000, rel=1e-9)


def test_exits_in_a_strategy_file_run_and_name_their_reason() -> None:
    strategy = validate_strategy_text(
        STRATEGY + "exits: {stop_loss: {atr: 1.5, atr_period: 10}, take_profit: {fraction: 0.03},"
        " time_stop_bars: 15}\n"
    )
    result = run_backtest(strategy, _bars(), start="2020-02-01")
    reasons = {t.exit_reason for t in result.trades}
    assert {"stop_loss", "take_profit"} <= reasons
    assert reasons <= set(EXIT_REASONS)
    assert strategy.warmup_bars() >= 5 * 10
    assert prepare_data(_bars(), "2020-02-01").window_start > 0


@pytest.mark.parametrize(
    ("yaml", "fix"),
    [
        ("exits: {stop_loss: {}}", "exactly one price reference: 'fraction'"),
        ("exits: {stop_loss: {fraction: 0.02, atr: 2}}", "exactly one price reference"),
        ("exits: {take_profit: {fraction: 2}}", "less than 1"),
        ("position_sizing: {method: fixed_units}", "needs 'units'"),
        ("position_sizing: {method: volatility_target}", "needs 'target_volatility'"),
        ("position_sizing: {units: 5}", "only used with method: fixed_units"),
        ("exits: {stop_los: {fraction: 0.1}}", "did you mean 'stop_loss'"),
    ],
)
def test_bad_exits_and_sizing_say_how_to_fix_them(yaml: str, fix: str) -> None:
    with pytest.raises(StrategyError, match=fix):
        validate_strategy_text(STRATEGY + yaml + "\n")
