"""Fuzzy membership functions, vectorised over numpy arrays.

Each returns degrees in [0, 1]; NaN inputs give NaN (no data, no opinion). Shoulders are
the open-ended sets at the edges of a variable's range: a left shoulder is 1 for every
value at or below its first point, a right shoulder 1 at or above its last point.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


# Ramps, shoulders, triangles and trapezoids are one compiled pass (``fuzzy_kernels.ramps``:
# the clip/minimum arithmetic, NaN staying NaN, steps where two points coincide).


def _ramps(
    x: npt.ArrayLike, a: float, b: float, c: float, d: float, rises: bool, falls: bool
) -> FloatArray:
    from ktrdr.engine.fuzzy_kernels import ramps

    arr = np.asarray(x, dtype=float)
    flat = np.ascontiguousarray(arr).reshape(-1)
    out = ramps(flat, float(a), float(b), float(c), float(d), rises, falls)
    return out.reshape(arr.shape)


def triangular(x: npt.ArrayLike, a: float, b: float, c: float) -> FloatArray:
    """0 outside [a, c], peak 1 at b."""
    return _ramps(x, a, b, b, c, rises=True, falls=True)


def trapezoidal(x: npt.ArrayLike, a: float, b: float, c: float, d: float) -> FloatArray:
    """0 outside [a, d], 1 on [b, c]."""
    return _ramps(x, a, b, c, d, rises=True, falls=True)


def gaussian(x: npt.ArrayLike, mean: float, sigma: float) -> FloatArray:
    """exp(-(x - mean)^2 / (2 sigma^2))."""
    arr = np.asarray(x, dtype=float)
    return np.exp(-0.5 * ((arr - mean) / sigma) ** 2)


def left_shoulder(x: npt.ArrayLike, a: float, b: float) -> FloatArray:
    """1 at/below a (open to the left), falling to 0 at b."""
    return _ramps(x, a, b, a, b, rises=False, falls=True)


def right_shoulder(x: npt.ArrayLike, a: float, b: float) -> FloatArray:
    """0 at/below a, rising to 1 at b and staying 1 beyond (open to the right)."""
    return _ramps(x, a, b, a, b, rises=True, falls=False)
