"""Batch evaluation of parameter sets: equal to ordinary backtests, bounded, cancellable."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.backtest import BacktestCancelled, prepare_data, run_backtest
from ktrdr.engine.backtest.aggregates import pairwise_sum
from ktrdr.engine.campaigns import OBJECTIVES, evaluate_batch, get_objective
from ktrdr.engine.campaigns.diagnostics import return_moments
from ktrdr.engine.campaigns.objectives import meets_constraints, parse_result_constraints
from ktrdr.engine.errors import StrategyError
from ktrdr.engine.features import cache_smas, compute_features, sma_needs
from ktrdr.engine.strategy import builtin_strategy_text, validate_strategy_text
from ktrdr.engine.strategy.search import SearchSpace, apply_overrides

FAST = "indicators.sma_fast.params.period"
SLOW = "indicators.sma_slow.params.period"
SMA_SEARCH = f"""
search:
  parameters:
    {FAST}: {{range: [3, 15, 4]}}
    {SLOW}: {{values: [12, 30]}}
    position_mode: {{values: [long_only, long_short]}}
    costs.commission: {{values: [0.0, 0.001]}}
  constraints: [sma_fast.period < sma_slow.period]
"""


def assert_same_statistics(got: dict[str, object], want: dict[str, object]) -> None:
    assert got.keys() == want.keys()
    for key, expected in want.items():
        if isinstance(expected, float):
            assert got[key] == pytest.approx(expected, rel=1e-12, abs=1e-12), key
        else:
            assert got[key] == expected, key


def test_batch_equals_ordinary_backtests_combination_by_combination(
    bars_1h: pd.DataFrame,
) -> None:
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover") + SMA_SEARCH)
    space = SearchSpace.from_strategy(strategy)
    combos = space.grid()
    assert len(combos) == 28
    start = bars_1h.index[200]
    results = evaluate_batch(
        strategy, prepare_data(bars_1h, start), combos, capital=50_000.0, chunk_size=5
    )
    assert [r.params for r in results] == combos
    traded = 0
    for r in results:
        want = run_backtest(space.apply(strategy, r.params), bars_1h, start=start, capital=50_000.0)
        assert_same_statistics(r.statistics, want.statistics.to_dict())
        traded += r.statistics["num_trades"] > 0
    assert traded == 28


def test_batch_equals_backtests_for_fuzzy_rules_and_cost_overrides(bars_1h: pd.DataFrame) -> None:
    strategy = validate_strategy_text(builtin_strategy_text("rsi_fuzzy"))
    sets = [
        {"indicators.rsi.params.period": p, "fuzzy_sets.rsi.sets.oversold.points.1": x}
        for p in (7, 14)
        for x in (40.0, 45.0)
    ]
    results = evaluate_batch(
        strategy, prepare_data(bars_1h), sets, capital=10_000.0, commission=0.002, slippage=0.0
    )
    for r in results:
        want = run_backtest(
            apply_overrides(strategy, r.params), bars_1h, capital=10_000.0,
            commission=0.002, slippage=0.0,
        )  # fmt: skip
        assert_same_statistics(r.statistics, want.statistics.to_dict())
        assert r.returns is None


def test_batch_equals_backtests_with_stops_sizing_and_higher_timeframes(
    bars_1h: pd.DataFrame,
) -> None:
    stops = validate_strategy_text(builtin_strategy_text("trend_stops"))
    stop_sets = [
        {"indicators.trend.params.period": p, "exits.stop_loss.atr": a, "exits.time_stop_bars": t}
        for p in (20, 50)
        for a in (1.5, 3.0)
        for t in (30, 100)
    ] + [{"position_sizing.volatility_period": 24}, {"exits.trailing_stop.fraction": 0.005}]
    daily = validate_strategy_text(builtin_strategy_text("rsi_daily_trend"))
    daily_sets = [{"indicators.rsi.params.period": p} for p in (7, 14)]
    for strategy, sets in ((stops, stop_sets), (daily, daily_sets)):
        results = evaluate_batch(strategy, prepare_data(bars_1h), sets, capital=1e5, chunk_size=3)
        for r in results:
            want = run_backtest(apply_overrides(strategy, r.params), bars_1h, capital=1e5)
            assert_same_statistics(r.statistics, want.statistics.to_dict())
        assert sum(r.statistics["num_trades"] for r in results) > 0


def test_kept_returns_are_the_backtests_per_bar_returns(bars_1h: pd.DataFrame) -> None:
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    (result,) = evaluate_batch(
        strategy, prepare_data(bars_1h), [{FAST: 5}], capital=1000.0, keep_returns=True
    )
    equity = run_backtest(apply_overrides(strategy, {FAST: 5}), bars_1h, capital=1000.0)
    eq = equity.equity_curve.to_numpy()
    want = np.diff(np.concatenate(([1000.0], eq))) / np.concatenate(([1000.0], eq[:-1]))
    assert result.returns is not None
    np.testing.assert_array_equal(result.returns, want)


def test_return_summaries_are_the_moments_and_block_returns_of_each_combinations_returns(
    bars_1h: pd.DataFrame,
) -> None:
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    sets = [{FAST: p, SLOW: q} for p in (3, 5, 8) for q in (20, 40)]
    data = prepare_data(bars_1h)
    kept = evaluate_batch(strategy, data, sets, capital=1e4, keep_returns=True, threads=1)
    summed = evaluate_batch(strategy, data, sets, capital=1e4, return_blocks=16, threads=3)
    n = len(bars_1h)
    edges = np.linspace(0, n, 17).round().astype(int)
    for k, s in zip(kept, summed, strict=True):
        assert k.returns is not None and s.returns is None and k.summary is None
        assert s.summary is not None and s.statistics == k.statistics
        # The same sums as the standalone moments of the kept series, bit for bit.
        got = (s.summary.sharpe_per_bar, s.summary.skew, s.summary.kurtosis, s.summary.n_obs)
        assert got == return_moments(k.returns)
        # Each block's compounded return; a growth factor near 1 carries about an ulp of
        # rounding per bar, whichever way it is compounded.
        want = [np.prod(1.0 + k.returns[lo:hi]) - 1.0 for lo, hi in itertools.pairwise(edges)]
        np.testing.assert_allclose(s.summary.block_returns, want, rtol=1e-12, atol=1e-13)
    # More blocks than bars: one per bar, each that bar's return.
    one = evaluate_batch(strategy, data, sets[:1], capital=1e4, return_blocks=10 * n)[0]
    assert one.summary is not None and kept[0].returns is not None
    np.testing.assert_allclose(one.summary.block_returns, kept[0].returns, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="return_blocks"):
        evaluate_batch(strategy, data, sets[:1], capital=1e4, return_blocks=-1)


def test_a_chunk_needing_more_averages_than_the_cache_holds_still_equals_backtests(
    bars_1h: pd.DataFrame,
) -> None:
    # 3 x 8 pairs bring 11 distinct SMAs into one chunk and the cache holds 4: they are
    # computed two at a time (half the cache), as combinations come to need them.
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    sets = [{FAST: p, SLOW: q} for p in (2, 3, 5) for q in range(10, 50, 5)]
    results = evaluate_batch(
        strategy, prepare_data(bars_1h), sets, capital=1e5, chunk_size=len(sets),
        cache_bytes=4 * 8 * len(bars_1h),
    )  # fmt: skip
    for r in results:
        want = run_backtest(apply_overrides(strategy, r.params), bars_1h, capital=1e5)
        assert r.statistics == want.statistics.to_dict()


def test_a_grid_of_two_periods_wider_than_the_cache_computes_each_average_few_times(
    bars_1h: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 x 10 periods, room for 7 averages: the inner periods go in groups of 5 through
    every outer one, so 10 slow averages once and 10 fast ones twice (cycling all ten
    inner ones through each outer period computed 110); results as backtests."""
    import ktrdr.engine.indicators.rolling_kernels as kernels

    computed: list[int] = []
    original = kernels.rolling_means_into

    def counting(values: np.ndarray, periods: list[int], outputs: list[np.ndarray]) -> None:
        computed.extend(periods)
        original(values, periods, outputs)

    monkeypatch.setattr(kernels, "rolling_means_into", counting)
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    sets = [{FAST: p, SLOW: q} for p in range(2, 12) for q in range(20, 120, 10)]
    results = evaluate_batch(
        strategy, prepare_data(bars_1h), sets, capital=1e5, threads=2,
        cache_bytes=7 * 8 * len(bars_1h),
    )  # fmt: skip
    assert len(computed) == 30 and sorted(set(computed)) == sorted(
        {*range(2, 12), *range(20, 120, 10)}
    )
    assert [r.params for r in results] == sets
    for r in results[::7]:
        want = run_backtest(apply_overrides(strategy, r.params), bars_1h, capital=1e5)
        assert r.statistics == want.statistics.to_dict()


def test_cached_smas_are_the_averages_compute_features_computes(bars_1h: pd.DataFrame) -> None:
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    combos = [apply_overrides(strategy, {FAST: p, SLOW: q}) for p in (2, 3) for q in (10, 20, 30)]
    needs = {need[0]: need for combo in combos for need in sma_needs(combo)}
    assert len(needs) == 5
    cache: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    with ThreadPoolExecutor(2) as pool:  # five averages: a pass of four, a pass of one
        cache_smas(list(needs.values()), bars_1h, cache, pool, at_once=2)
    assert cache.keys() == needs.keys()
    for combo in combos:
        alone, cached = compute_features(combo, bars_1h), compute_features(combo, bars_1h, cache)
        assert alone.keys() == cached.keys()
        for name, values in alone.items():
            np.testing.assert_array_equal(cached[name], values)
    assert len(cache) == 5, "every average came from the cache"


def test_pairwise_sum_is_numpys_sum_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    for n in (0, 7, 8, 128, 129, 1000, 70_001):
        a = rng.standard_normal(n) * 1e-3 + 1e-7
        assert pairwise_sum(a, 0, n) == a.sum()


def test_progress_and_cancel(bars_1h: pd.DataFrame) -> None:
    strategy = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    sets = [{FAST: p} for p in range(2, 9)]
    seen: list[tuple[int, int]] = []
    evaluate_batch(
        strategy, prepare_data(bars_1h), sets, capital=1e5, chunk_size=3, threads=2,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen == [(n, 7) for n in range(1, 8)], "after each combination, across chunks"
    checks: list[int] = []
    seen.clear()

    def cancel_at_the_fifth() -> bool:
        checks.append(1)
        return len(checks) == 5

    with pytest.raises(BacktestCancelled, match=r"after [0-4] of 7"):
        evaluate_batch(
            strategy, prepare_data(bars_1h), sets, capital=1e5, chunk_size=3, threads=2,
            should_cancel=cancel_at_the_fifth,
            progress=lambda done, total: seen.append((done, total)),
        )  # fmt: skip
    assert len(checks) == 5, "checked before each combination, the fifth not started"
    assert len(seen) <= 4


def test_model_strategies_and_bad_sets_are_refused(bars_1h: pd.DataFrame) -> None:
    model = validate_strategy_text(builtin_strategy_text("fuzzy_nn"))
    with pytest.raises(StrategyError, match="cannot be swept"):
        evaluate_batch(model, prepare_data(bars_1h), [{}], capital=1e5)
    sma = validate_strategy_text(builtin_strategy_text("sma_crossover"))
    with pytest.raises(StrategyError, match="did you mean 'sma_fast'"):
        evaluate_batch(
            sma, prepare_data(bars_1h), [{"indicators.sma_fats.params.period": 3}], capital=1e5
        )


def test_objectives_and_result_constraints() -> None:
    stats = {"sharpe_ratio": 1.5, "max_drawdown_pct": -12.0, "num_trades": 4, "profit_factor": None}
    assert set(OBJECTIVES) >= {"sharpe", "sortino", "calmar", "total_return", "profit_factor"}
    assert get_objective("sharpe").score(stats) == 1.5
    assert get_objective("sharpe", "minimize").score(stats) == -1.5
    assert get_objective("profit_factor").value(stats) == float("inf")  # no losing trade
    assert get_objective("calmar").score(stats) == float("-inf")  # undefined never wins
    results = [{"sharpe_ratio": 0.5}, {"sharpe_ratio": None}, {"sharpe_ratio": 2.0}]
    assert get_objective("sharpe").best(results) == 2
    with pytest.raises(ValueError, match="did you mean 'sortino'"):
        get_objective("sortin")
    bounds = parse_result_constraints({"min_trades": 5})
    assert not meets_constraints(stats, bounds)
    assert meets_constraints(stats, parse_result_constraints({"min_trades": 4}))
    assert meets_constraints(stats, {"max_drawdown_pct": -15.0})
    assert not meets_constraints(stats, {"max_drawdown_pct": -10.0})
    with pytest.raises(ValueError, match="did you mean 'min_trades'"):
        parse_result_constraints({"min_trade": 5})
