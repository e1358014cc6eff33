"""Fuzzy membership functions, vectorised over numpy arrays.

Each returns degrees in [0, 1]; NaN inputs give NaN (no data, no opinion). Shoulders are
the open-ended sets at the edges of a variable's range: a left shoulder is 1 for every
value at or below its first point, a right shoulder 1 at or above its last point.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


# Every ramp is NaN where x is: the linear ones by arithmetic (NaN stays NaN through the
# division and the clip), the steps explicitly (a comparison with NaN is just False).


def _ramp_up(x: FloatArray, a: float, b: float) -> FloatArray:
    """0 at/below a, 1 at/above b, linear between (a step when a == b)."""
    if b == a:
        return _keep_nan(x, np.where(x >= a, 1.0, 0.0))
    return np.clip((x - a) / (b - a), 0.0, 1.0)


def _ramp_down(x: FloatArray, c: float, d: float) -> FloatArray:
    """1 at/below c, 0 at/above d, linear between."""
    if d == c:
        return _keep_nan(x, np.where(x <= c, 1.0, 0.0))
    return np.clip((d - x) / (d - c), 0.0, 1.0)


def _keep_nan(x: FloatArray, y: FloatArray) -> FloatArray:
    return np.where(np.isnan(x), np.nan, y)


def triangular(x: npt.ArrayLike, a: float, b: float, c: float) -> FloatArray:
    """0 outside [a, c], peak 1 at b."""
    arr = np.asarray(x, dtype=float)
    return np.minimum(_ramp_up(arr, a, b), _ramp_down(arr, b, c))


def trapezoidal(x: npt.ArrayLike, a: float, b: float, c: float, d: float) -> FloatArray:
    """0 outside [a, d], 1 on [b, c]."""
    arr = np.asarray(x, dtype=float)
    return np.minimum(_ramp_up(arr, a, b), _ramp_down(arr, c, d))


def gaussian(x: npt.ArrayLike, mean: float, sigma: float) -> FloatArray:
    """exp(-(x - mean)^2 / (2 sigma^2))."""
    arr = np.asarray(x, dtype=float)
    return np.exp(-0.5 * ((arr - mean) / sigma) ** 2)


def left_shoulder(x: npt.ArrayLike, a: float, b: float) -> FloatArray:
    """1 at/below a (open to the left), falling to 0 at b."""
    arr = np.asarray(x, dtype=float)
    return _ramp_down(arr, a, b)


def right_shoulder(x: npt.ArrayLike, a: float, b: float) -> FloatArray:
    """0 at/below a, rising to 1 at b and staying 1 beyond (open to the right)."""
    arr = np.asarray(x, dtype=float)
    return _ramp_up(arr, a, b)
