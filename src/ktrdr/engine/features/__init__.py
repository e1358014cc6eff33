"""Features: indicators, then fuzzy memberships, then the model's feature matrix.

The one room that backtests (rule and model decisions) and training both draw on, so a
feature is computed the same way wherever it is used. Every function is causal: the
value at bar t depends on bars up to t only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine import fuzzy
from ktrdr.engine.data.resample import join_closed, resample_bars
from ktrdr.engine.indicators.registry import compute_indicator, get_indicator
from ktrdr.engine.model_choice import strategy_feature_names
from ktrdr.engine.strategy.schema import FuzzySetConfig, Strategy

FloatArray = npt.NDArray[np.float64]
Features = dict[str, FloatArray]


def compute_features(strategy: Strategy, bars: pd.DataFrame) -> Features:
    """Every indicator output by reference name (``id`` for the first output, ``id.output``)
    plus the price columns. An indicator on a higher timeframe runs on bars resampled from
    ``bars`` and is joined back only once each of its bars has closed."""
    out: Features = {
        c: bars[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close", "volume")
    }
    resampled: dict[str, pd.DataFrame] = {}
    for ind in strategy.indicators:
        spec = get_indicator(ind.type)
        params = strategy.indicator_params(ind.id)
        higher = ind.timeframe if ind.timeframe not in (None, strategy.data.timeframe) else None
        if higher is None:
            outputs = compute_indicator(spec, params, bars)
        else:
            if higher not in resampled:
                resampled[higher] = resample_bars(bars, higher)
            computed = compute_indicator(spec, params, resampled[higher])
            joined = join_closed(pd.DataFrame(computed), higher, pd.DatetimeIndex(bars.index))
            outputs = {name: joined[name] for name in computed}
        for name, series in outputs.items():
            out[f"{ind.id}.{name}"] = series.to_numpy(dtype=float)
        out[ind.id] = out[f"{ind.id}.{spec.primary_output}"]
    return out


def membership(cfg: FuzzySetConfig, x: FloatArray) -> FloatArray:
    p = cfg.points
    match cfg.shape:
        case "triangular":
            return fuzzy.triangular(x, p[0], p[1], p[2])
        case "trapezoidal":
            return fuzzy.trapezoidal(x, p[0], p[1], p[2], p[3])
        case "gaussian":
            return fuzzy.gaussian(x, p[0], p[1])
        case "left_shoulder":
            return fuzzy.left_shoulder(x, p[0], p[1])
        case _:
            return fuzzy.right_shoulder(x, p[0], p[1])


def fuzzy_memberships(strategy: Strategy, features: Features) -> dict[tuple[str, str], FloatArray]:
    """Membership degree per (variable, set), in strategy order; NaN where the input is."""
    return {
        (var, set_name): membership(set_cfg, features[cfg.input])
        for var, cfg in strategy.fuzzy_sets.items()
        for set_name, set_cfg in cfg.sets.items()
    }


def membership_matrix(
    strategy: Strategy, features: Features
) -> tuple[list[str], npt.NDArray[np.float32]]:
    """Every fuzzy membership as a model feature: names ``"<variable>.<set>"`` and an
    (n_bars, n_features) float32 matrix, columns in strategy order."""
    memberships = fuzzy_memberships(strategy, features)
    names = strategy_feature_names(strategy)  # the same order as the memberships
    n = len(features["close"])
    if not memberships:
        return names, np.empty((n, 0), dtype=np.float32)
    return names, np.column_stack(list(memberships.values())).astype(np.float32)
