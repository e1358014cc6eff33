"""Deflated Sharpe Ratio and PBO (CSCV) against hand-computed cases and scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from ktrdr.engine.campaigns.diagnostics import (
    EULER_GAMMA,
    cscv_logits,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_moments,
    sharpe_per_column,
    sweep_deflated_sharpe,
)


def test_deflated_sharpe_matches_the_papers_example() -> None:
    # Bailey & López de Prado (2014), section 6: annualised SR 2.5 over 1,250 daily returns,
    # skew -3, kurtosis 10, 100 trials with annualised Sharpe variance 0.5 -> DSR 0.9004.
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(250), 100, 0.5 / 250, 1250, skew=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_deflated_sharpe_equals_the_formula_computed_with_scipy() -> None:
    sr, n, var, t, skew, kurt = 0.08, 40, 0.0009, 800, -0.4, 5.0
    e_max = math.sqrt(var) * (
        (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n)
        + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n * math.e))
    )
    z = (sr - e_max) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert expected_max_sharpe(n, var) == pytest.approx(e_max, rel=1e-12)
    assert deflated_sharpe_ratio(sr, n, var, t, skew, kurt) == pytest.approx(
        stats.norm.cdf(z), rel=1e-12
    )
    # One trial: nothing to deflate, the PSR against 0.
    assert deflated_sharpe_ratio(sr, 1, var, t) == pytest.approx(
        stats.norm.cdf(sr * math.sqrt(t - 1) / math.sqrt(1 + sr**2 / 2)), rel=1e-12
    )
    assert probabilistic_sharpe_ratio(0.0, 0.0, 100) == 0.5


def test_return_moments_match_scipy() -> None:
    r = np.random.default_rng(3).standard_t(5, 2000) * 0.01 + 0.001
    sr, skew, kurt, n = return_moments(r)
    assert sr == r.mean() / r.std(ddof=1), "numpy's mean and std, bit for bit"
    assert skew == pytest.approx(stats.skew(r), rel=1e-10)
    assert kurt == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-10)
    assert n == 2000


def test_block_returns_compound_each_run_of_bars() -> None:
    from ktrdr.engine.campaigns.kernels import block_returns

    capital = 1e4
    equity = capital * np.cumprod(1.0 + np.random.default_rng(4).normal(0.0, 0.01, 1001))
    returns = np.diff(equity, prepend=capital) / np.concatenate(([capital], equity[:-1]))
    edges = np.linspace(0, len(equity), 129).round().astype(np.int64)
    want = [np.prod(1.0 + returns[a:b]) - 1.0 for a, b in itertools.pairwise(edges)]
    got = np.empty(128)
    block_returns(equity, capital, edges, got)
    # A growth factor near 1 carries about an ulp of rounding per bar either way.
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    assert got[0] == equity[edges[1] - 1] / capital - 1.0, "the first block starts at the capital"


def _two_trials(first: list[float], second: list[float]) -> np.ndarray:
    return np.column_stack([first, second])


def test_pbo_hand_computed_two_splits() -> None:
    # Two blocks of 4 rows. Trial A wins block 0 and loses block 1; trial B the reverse.
    # Split 1: IS = block 0 -> A chosen, OOS rank 1 of 2 -> omega 1/3, logit ln(1/2) < 0.
    # Split 2: IS = block 1 -> B chosen, same. PBO = 2/2 = 1.
    good, bad = [0.02, 0.01, 0.03, 0.02], [-0.01, 0.0, -0.02, 0.01]
    returns = _two_trials(good + bad, bad + good)
    logits = cscv_logits(returns, n_splits=2)
    np.testing.assert_allclose(logits, [math.log(0.5), math.log(0.5)], rtol=1e-12)
    assert probability_of_backtest_overfitting(returns, n_splits=2) == 1.0
    # A wins in both blocks: chosen both times, ranks first OOS -> omega 2/3, logit ln 2.
    dominant = _two_trials(good + good, bad + bad)
    np.testing.assert_allclose(cscv_logits(dominant, 2), [math.log(2.0)] * 2, rtol=1e-12)
    assert probability_of_backtest_overfitting(dominant, n_splits=2) == 0.0


def test_pbo_fast_path_equals_the_direct_definition() -> None:
    rng = np.random.default_rng(8)
    returns = rng.standard_normal((240, 7)) * 0.01 + rng.normal(0, 0.001, 7)
    direct = cscv_logits(returns, 8, metric=sharpe_per_column)
    fast = cscv_logits(returns, 8)
    assert len(fast) == math.comb(8, 4)
    np.testing.assert_allclose(fast, direct, rtol=1e-9)


def test_pbo_splits_on_several_threads_equal_one_thread_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ktrdr.engine.campaigns.diagnostics as diagnostics

    rng = np.random.default_rng(9)
    returns = rng.standard_normal((128, 30)) * 0.01
    monkeypatch.setattr(diagnostics, "_SPLITS_PER_THREAD", 10**9)
    one = cscv_logits(returns, 12)
    monkeypatch.setattr(diagnostics, "_SPLITS_PER_THREAD", 100)
    monkeypatch.setattr(diagnostics.os, "cpu_count", lambda: 3)
    several = cscv_logits(returns, 12)
    assert len(several) == math.comb(12, 6) and np.array_equal(several, one)


def test_pbo_fast_path_ranks_flat_and_tied_trials_like_the_definition() -> None:
    # A flat trial (no Sharpe: ranks worst), two identical trials (ties averaged) and an
    # odd number of blocks per half (5 of 10), against the direct definition.
    rng = np.random.default_rng(3)
    returns = rng.standard_normal((205, 6)) * 0.01
    returns[:, 1] = 0.0
    returns[:, 4] = returns[:, 3]
    direct = cscv_logits(returns, 10, metric=sharpe_per_column)
    fast = cscv_logits(returns, 10)
    assert len(fast) == math.comb(10, 5)
    np.testing.assert_allclose(fast, direct, rtol=1e-9)


def test_pbo_separates_skill_from_noise() -> None:
    rng = np.random.default_rng(1)
    skilled = rng.standard_normal((1600, 30)) * 0.01
    skilled[:, 0] += 0.004  # one trial with a real edge in every block
    assert probability_of_backtest_overfitting(skilled) == 0.0
    # Without skill the in-sample best is a coin flip out of sample: PBO is 1/2 on
    # average over samples (one sample's PBO varies widely, so average 20).
    pbo = [
        probability_of_backtest_overfitting(
            np.random.default_rng(s).standard_normal((400, 20)), n_splits=8
        )
        for s in range(20)
    ]
    assert 0.4 < float(np.mean(pbo)) < 0.65


def test_pbo_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="even number"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), n_splits=3)
    with pytest.raises(ValueError, match="too few"):
        probability_of_backtest_overfitting(np.zeros((10, 3)), n_splits=16)


def test_sweep_deflated_sharpe_from_statistics_dicts() -> None:
    bpy = 8766.0
    annual = [1.2, 0.4, -0.3, 2.0]
    stats_list = [{"sharpe_ratio": a, "bars_per_year": bpy, "bars": 5000} for a in annual]
    stats_list.append({"sharpe_ratio": None, "bars_per_year": bpy, "bars": 5000})
    per = [a / math.sqrt(bpy) for a in annual]
    want = deflated_sharpe_ratio(per[3], 4, float(np.var(per, ddof=1)), 5000)
    assert sweep_deflated_sharpe(stats_list, best=3) == pytest.approx(want, rel=1e-12)
    assert math.isnan(sweep_deflated_sharpe(stats_list, best=4))
