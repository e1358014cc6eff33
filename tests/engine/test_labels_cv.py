"""Zigzag and triple-barrier labels, purged k-fold with an embargo, uniqueness weights —
on small series computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.engine.training.cv import purged_kfold, uniqueness_weights
from ktrdr.engine.training.labels import (
    BUY_CLASS,
    HOLD_CLASS,
    NO_LABEL,
    SELL_CLASS,
    triple_barrier_labels,
    zigzag_labels,
)

B, H, S = BUY_CLASS, HOLD_CLASS, SELL_CLASS


def test_zigzag_labels_each_bar_by_the_leg_it_is_on() -> None:
    close = [100, 101, 103, 106, 110, 108, 104, 100, 97, 99, 103, 107, 111, 109]
    labels, end = zigzag_labels(close, 0.05)
    # Swing points: 0 (start), 110 at bar 4 (left by 5.5%), 97 at bar 8 (left by 6.2%);
    # 111 at bar 12 is not confirmed yet, so bars from 8 on have no finished leg.
    assert labels.tolist() == [B, B, B, B, S, S, S, S]
    assert end.tolist() == [4, 4, 4, 4, 8, 8, 8, 8]


def test_zigzag_ignores_moves_below_the_threshold() -> None:
    labels, _ = zigzag_labels([100, 102, 100, 102, 100, 106, 103, 99], 0.05)
    # Only the 106 -> 99 reversal counts: one rising leg from the start to bar 5.
    assert labels.tolist() == [B] * 5


def test_triple_barrier_labels_first_touch_and_vertical_barrier() -> None:
    close = [100, 101, 102, 99, 97, 100, 103, 104]
    labels, end = triple_barrier_labels(close, take_profit=0.02, stop_loss=0.02, max_bars=3)
    # t=0: +2% at bar 2. t=1: 99 is -1.98% (inside), 97 -3.96% at bar 4. t=2: 99 is -2.9%.
    # t=3: 97 is -2.02% at bar 4. t=4: 100 is +3.1% at bar 5. Last 3 bars: no horizon.
    assert labels.tolist() == [B, S, S, S, B]
    assert end.tolist() == [2, 4, 3, 4, 5]
    flat, flat_end = triple_barrier_labels(
        [100, 100.5, 99.6, 100.2, 100], take_profit=0.02, stop_loss=0.02, max_bars=3
    )
    assert flat.tolist() == [H, H] and flat_end.tolist() == [3, 4]


def test_triple_barrier_scales_barriers_by_volatility() -> None:
    close = np.array([100, 101, 100, 101, 100, 101, 102.5, 100.0])
    labels, end = triple_barrier_labels(
        close, take_profit=1.0, stop_loss=1.0, max_bars=2, volatility_window=3
    )
    returns = close[1:] / close[:-1] - 1
    sigma3 = returns[1:4].std(ddof=1)  # returns of bars 2..4, known at bar 4
    assert (close[6] / close[4] - 1) >= sigma3  # so bar 4 is a BUY, reached at bar 6
    # Bars 0..2 have no σ yet (3 returns are needed: bars 1..3); labels start at bar 3.
    assert labels[:3].tolist() == [NO_LABEL] * 3 and len(labels) == len(close) - 2
    assert labels[4] == B and end[4] == 6


def test_uniqueness_weights_by_hand() -> None:
    # Windows [0,2], [1,3], [4,4]: concurrency 1,2,2,1,1 over bars 0..4.
    w = uniqueness_weights([0, 1, 4], [2, 3, 4])
    raw = np.array([(1 + 0.5 + 0.5) / 3, (0.5 + 0.5 + 1) / 3, 1.0])
    np.testing.assert_allclose(w, raw / raw.mean())


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 200),
    horizon=st.integers(1, 15),
    k=st.integers(2, 6),
    embargo=st.integers(0, 10),
    seed=st.integers(0, 1000),
)
def test_purged_kfold_never_trains_on_a_label_that_overlaps_the_test_fold(
    n: int, horizon: int, k: int, embargo: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    start = np.arange(n)
    end = start + rng.integers(0, horizon + 1, size=n)  # variable look-ahead
    seen_tests = []
    for train, test in purged_kfold(start, end, k, embargo):
        assert not set(train) & set(test)
        lo, hi = start[test].min(), end[test].max()
        for i in train:
            assert end[i] < lo or start[i] > hi + embargo, (i, lo, hi)
        seen_tests.append(test)
    np.testing.assert_array_equal(np.concatenate(seen_tests), np.arange(n))


def test_purged_kfold_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_splits"):
        list(purged_kfold([0, 1], [0, 1], 3))
    with pytest.raises(ValueError, match="embargo"):
        list(purged_kfold(range(10), range(10), 2, embargo=-1))
