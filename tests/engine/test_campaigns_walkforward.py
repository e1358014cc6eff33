"""Walk-forward windows (no look-ahead, property-tested), stitching and efficiency."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.engine.campaigns.walkforward import (
    stitch_equity,
    walkforward_efficiency,
    walkforward_windows,
)


def hourly(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")


def test_rolling_windows_in_bars() -> None:
    windows = walkforward_windows(hourly(10), train=4, test=2)
    assert [(w.train_start, w.train_end, w.test_start, w.test_end) for w in windows] == [
        (0, 4, 4, 6),
        (2, 6, 6, 8),
        (4, 8, 8, 10),
    ]
    assert windows[0].test_first == pd.Timestamp("2024-01-01 04:00", tz="UTC")
    assert windows[0].train_last == pd.Timestamp("2024-01-01 03:00", tz="UTC")


def test_anchored_windows_and_a_custom_step() -> None:
    windows = walkforward_windows(hourly(10), train=4, test=2, step=3, anchored=True)
    assert [(w.train_start, w.train_end, w.test_end) for w in windows] == [(0, 4, 6), (0, 7, 9)]


def test_windows_by_duration() -> None:
    index = pd.date_range("2024-01-01", periods=40, freq="1D", tz="UTC")
    windows = walkforward_windows(index, train="10D", test=pd.Timedelta("5D"))
    assert [(w.train_start, w.test_start, w.test_end) for w in windows] == [
        (0, 10, 15), (5, 15, 20), (10, 20, 25), (15, 25, 30), (20, 30, 35), (25, 35, 40),
    ]  # fmt: skip


def test_bad_lengths_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="all as bar counts or all as durations"):
        walkforward_windows(hourly(10), train=4, test="2h")
    with pytest.raises(ValueError, match="duration like '180D'"):
        walkforward_windows(hourly(10), train="four", test=2)
    with pytest.raises(ValueError, match="no complete window"):
        walkforward_windows(hourly(10), train=8, test=4)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(2, 400),
    train=st.integers(1, 120),
    test=st.integers(1, 60),
    step=st.one_of(st.none(), st.integers(1, 60)),
    anchored=st.booleans(),
    gaps=st.lists(st.integers(1, 5), min_size=400, max_size=400),
    as_duration=st.booleans(),
)
def test_no_window_trains_on_its_test_data(
    n: int,
    train: int,
    test: int,
    step: int | None,
    anchored: bool,
    gaps: list[int],
    as_duration: bool,
) -> None:
    # Irregular hourly bars (gaps of 1-5 hours), lengths in bars or in hours.
    index = pd.DatetimeIndex(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        np.cumsum([0, *gaps[: n - 1]]), unit="h"
    ))  # fmt: skip
    unit = (lambda x: pd.Timedelta(hours=x)) if as_duration else (lambda x: x)
    try:
        windows = walkforward_windows(
            index, train=unit(train), test=unit(test),
            step=None if step is None else unit(step), anchored=anchored,
        )  # fmt: skip
    except ValueError as exc:
        assert "no complete window" in str(exc)
        return
    for w in windows:
        assert 0 <= w.train_start < w.train_end == w.test_start < w.test_end <= n
        assert w.train_last < w.test_first  # every training bar precedes every test bar
        assert index[w.train_start] == w.train_first and index[w.test_end - 1] == w.test_last
        if anchored:
            assert w.train_start == 0
    for a, b in itertools.pairwise(windows):
        assert a.test_start < b.test_start  # windows move forward
        if step is None or step >= test:
            assert a.test_end <= b.test_start  # test periods never overlap


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.floats(50.0, 200.0), min_size=1, max_size=6), min_size=1, max_size=5),
    st.integers(0, 4),
)
def test_stitching_uses_only_the_past(values: list[list[float]], cut: int) -> None:
    segments, t = [], 0
    for vals in values:
        idx = hourly(200)[t : t + len(vals)]
        segments.append(pd.Series(vals, index=idx))
        t += len(vals)
    full = stitch_equity(segments, capital=100.0)
    # Dropping later segments never changes the stitched curve before them.
    head = stitch_equity(segments[: cut + 1], capital=100.0)
    pd.testing.assert_series_equal(full.iloc[: len(head)], head)
    # Each segment starts from the previous segment's final equity.
    end = 100.0
    for seg in segments:
        part = full.loc[seg.index]
        np.testing.assert_allclose(part.to_numpy(), seg.to_numpy() * end / 100.0, rtol=1e-12)
        end = float(part.iloc[-1])


def test_stitch_refuses_overlapping_segments_and_efficiency() -> None:
    a = pd.Series([101.0, 102.0], index=hourly(2))
    with pytest.raises(ValueError, match="not after the previous one's end"):
        stitch_equity([a, a], capital=100.0)
    assert stitch_equity([a, pd.Series([110.0], index=hourly(3)[2:])], 100.0).iloc[-1] == (
        pytest.approx(110.0 * 1.02)
    )
    # Windows run with the previous final equity as capital concatenate unchanged.
    b = pd.Series([204.0, 210.0], index=hourly(4)[2:])
    chained = stitch_equity([a * 2, b], capital=[200.0, 204.0])
    assert chained.tolist() == [202.0, 204.0, 204.0, 210.0]
    with pytest.raises(ValueError, match="one each"):
        stitch_equity([a], capital=[100.0, 100.0])
    assert walkforward_efficiency(2.0, 1.0) == 0.5
    assert walkforward_efficiency([1.0, 3.0], [0.5, 0.5]) == 0.25
    assert math.isnan(walkforward_efficiency(0.0, 1.0))
    # Against an in-sample loss the ratio means nothing: two losses, or a smaller loss
    # out of sample, would otherwise score as a positive (or sub-1) efficiency.
    assert math.isnan(walkforward_efficiency(-2.0, -1.0))
    assert math.isnan(walkforward_efficiency([1.0, -3.0], [0.5, 0.5]))
    assert math.isnan(walkforward_efficiency([], []))
