"""The compiled memberships, rule strengths and resample runs give the bits of the NumPy
and pandas steps they replaced (written out here as the reference), on inputs with NaN,
infinities, signed zeros, coinciding points and pre-1970 stamps."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine import fuzzy
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.data.resample import _AGG, _rule, resample_bars
from ktrdr.engine.features import compute_features, fuzzy_memberships
from ktrdr.engine.signals import fire_rule, rule_strengths
from ktrdr.engine.strategy import validate_strategy_text

RNG = np.random.default_rng(20261203)


def _up(x: np.ndarray, a: float, b: float) -> np.ndarray:
    if b == a:
        return np.where(np.isnan(x), np.nan, np.where(x >= a, 1.0, 0.0))
    return np.clip((x - a) / (b - a), 0.0, 1.0)


def _down(x: np.ndarray, c: float, d: float) -> np.ndarray:
    if d == c:
        return np.where(np.isnan(x), np.nan, np.where(x <= c, 1.0, 0.0))
    return np.clip((d - x) / (d - c), 0.0, 1.0)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).view(np.uint64)


def _inputs() -> np.ndarray:
    x = RNG.normal(0.0, 40.0, 5000)
    x[RNG.random(len(x)) < 0.05] = np.nan
    special = [np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 30.0, 40.0, 60.0, 5.0, 10.0, 20.0]
    return np.concatenate([x, special * 5])


@pytest.mark.parametrize(
    "points", [(30.0, 40.0), (0.0, 1.0), (-1.0, 0.0), (5.0, 5.0), (-0.0, 0.0), (0.0, 10.0)]
)
def test_shoulders_are_the_clipped_ramps_bit_for_bit(points: tuple[float, float]) -> None:
    x = _inputs()
    a, b = points
    np.testing.assert_array_equal(_bits(fuzzy.left_shoulder(x, a, b)), _bits(_down(x, a, b)))
    np.testing.assert_array_equal(_bits(fuzzy.right_shoulder(x, a, b)), _bits(_up(x, a, b)))


@pytest.mark.parametrize(
    "points", [(0.0, 10.0, 20.0, 30.0), (5.0, 5.0, 9.0, 9.0), (1.0, 4.0, 4.0, 8.0), (3.0,) * 4]
)
def test_triangles_and_trapezoids_are_the_minimum_of_two_ramps(points: tuple) -> None:
    x = _inputs()
    a, b, c, d = points
    want = np.minimum(_up(x, a, b), _down(x, c, d))
    np.testing.assert_array_equal(_bits(fuzzy.trapezoidal(x, a, b, c, d)), _bits(want))
    want = np.minimum(_up(x, a, b), _down(x, b, d))
    np.testing.assert_array_equal(_bits(fuzzy.triangular(x, a, b, d)), _bits(want))


def test_memberships_keep_the_input_shape() -> None:
    assert fuzzy.triangular(12.0, 0, 10, 20).shape == ()
    grid = np.arange(12.0).reshape(3, 4)[:, ::2]  # not contiguous
    np.testing.assert_array_equal(fuzzy.left_shoulder(grid, 2, 6), _down(grid, 2, 6))


RULES = """
name: rules
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: rsi, type: rsi, params: {period: 14}}
  - {id: mom, type: roc, params: {period: 3}}
fuzzy_sets:
  rsi:
    input: rsi
    sets:
      low: {shape: left_shoulder, points: [30, 45]}
      mid: {shape: triangular, points: [35, 50, 65]}
      high: {shape: right_shoulder, points: [55, 70]}
  mom:
    input: mom
    sets:
      down: {shape: left_shoulder, points: [-0.2, 0.0]}
      flat: {shape: gaussian, points: [0.0, 0.1]}
      up: {shape: right_shoulder, points: [0.0, 0.2]}
decisions:
  fuzzy_rules:
    threshold: 0.4
    rules:
      - IF rsi IS low AND mom IS up AND rsi IS NOT mid THEN BUY
      - {rule: IF rsi IS low OR mom IS flat THEN BUY, weight: 0.7}
      - IF rsi IS high OR mom IS NOT up OR mom IS down THEN SELL
      - {rule: IF rsi IS NOT high THEN CLOSE, weight: 0.3}
      - IF mom IS down AND rsi IS mid THEN CLOSE
"""


def test_rule_strengths_are_the_fold_of_each_rules_numpy_steps() -> None:
    strategy = validate_strategy_text(RULES)
    bars = generate_synthetic_bars("1h", 3000, seed=11)
    features = compute_features(strategy, bars)  # the warm-up gives NaN memberships
    memberships = fuzzy_memberships(strategy, features)
    want = {a: np.zeros(len(bars)) for a in {r.action for r in strategy.parsed_rules}}
    for rule in strategy.parsed_rules:
        want[rule.action] = np.fmax(want[rule.action], fire_rule(rule, memberships))
    got = rule_strengths(strategy, features)
    for action, strength in got.items():
        expected = want.get(action, np.zeros(len(bars)))
        np.testing.assert_array_equal(_bits(strength), _bits(expected))
    assert all((s > 0).any() for s in got.values())  # every action fires somewhere


def test_fire_rule_folds_conditions_left_to_right() -> None:
    strategy = validate_strategy_text(RULES)
    m = {key: RNG.random(50) for key in fuzzy_memberships(strategy, {
        "rsi": np.zeros(50), "mom": np.zeros(50), "close": np.zeros(50)})}  # fmt: skip
    first = strategy.parsed_rules[0]
    want = functools.reduce(np.minimum, [m[("rsi", "low")], m[("mom", "up")],
                                         1.0 - m[("rsi", "mid")]])  # fmt: skip
    np.testing.assert_array_equal(fire_rule(first, m), want)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_resampling_runs_in_any_unit_and_before_1970(unit: str) -> None:
    bars = generate_synthetic_bars("1h", 2000, seed=12)
    stamps = pd.date_range("1969-11-03 05:00", periods=len(bars), freq="h", tz="UTC")
    bars = bars.set_axis(stamps.as_unit(unit)).drop(bars.index[RNG.random(len(bars)) < 0.3],
                                                    errors="ignore")  # fmt: skip
    bars = bars.iloc[np.sort(RNG.choice(len(bars), len(bars) * 3 // 4, replace=False))]
    for higher in ("4h", "1d"):
        want = bars.resample(_rule(higher), label="left", closed="left").agg(_AGG)
        want = want.dropna(subset=["close"])
        got = resample_bars(bars, higher)
        assert got.index.equals(want.index)
        for column in _AGG:
            np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy())
