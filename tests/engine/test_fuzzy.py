"""Fuzzy membership functions, including open shoulders and NaN handling."""

from __future__ import annotations

import numpy as np

from ktrdr.engine import fuzzy


def test_triangular_peaks_at_b_and_is_zero_outside() -> None:
    x = np.array([-1.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0])
    np.testing.assert_allclose(fuzzy.triangular(x, 0, 10, 20), [0, 0, 0.5, 1, 0.5, 0, 0])


def test_trapezoidal_is_one_on_plateau() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(fuzzy.trapezoidal(x, 0, 2, 3, 5), [0, 0.5, 1, 1, 0.5, 0])


def test_gaussian_values() -> None:
    x = np.array([50.0, 60.0])
    np.testing.assert_allclose(fuzzy.gaussian(x, 50, 10), [1.0, np.exp(-0.5)])


def test_shoulders_stay_at_one_beyond_their_edge() -> None:
    x = np.array([-1e9, 20.0, 27.5, 35.0, 1e9])
    np.testing.assert_allclose(fuzzy.left_shoulder(x, 20, 35), [1, 1, 0.5, 0, 0])
    np.testing.assert_allclose(fuzzy.right_shoulder(x, 20, 35), [0, 0, 0.5, 1, 1])


def test_memberships_keep_nan_and_handle_vertical_edges() -> None:
    x = np.array([np.nan, 1.0, 2.0])
    assert np.isnan(fuzzy.triangular(x, 0, 1, 2)[0])
    assert np.isnan(fuzzy.right_shoulder(x, 1, 2)[0])
    np.testing.assert_allclose(fuzzy.triangular(x, 1, 1, 2)[1:], [1.0, 0.0])
