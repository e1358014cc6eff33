"""Features: indicators, then fuzzy memberships, then the model's feature matrix.

The one room that backtests (rule and model decisions) and training both draw on, so a
feature is computed the same way wherever it is used. Every function is causal: the
value at bar t depends on bars up to t only.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine import fuzzy
from ktrdr.engine.data.resample import join_closed, resample_bars
from ktrdr.engine.indicators.registry import (
    IndicatorSpec,
    Params,
    compute_indicator,
    get_indicator,
)
from ktrdr.engine.model_choice import strategy_feature_names
from ktrdr.engine.strategy.schema import FuzzySetConfig, Strategy

FloatArray = npt.NDArray[np.float64]
Features = dict[str, FloatArray]
# (indicator type, timeframe|params as JSON) -> outputs by name; any MutableMapping (an LRU).
IndicatorCache = MutableMapping[tuple[str, str], dict[str, FloatArray]]


def compute_features(
    strategy: Strategy, bars: pd.DataFrame, cache: IndicatorCache | None = None
) -> Features:
    """Every indicator output by reference name (``id`` for the first output, ``id.output``)
    plus the price columns. An indicator on a higher timeframe runs on bars resampled from
    ``bars`` and is joined back only once each of its bars has closed.

    ``cache`` (optional, same ``bars`` every call) maps (indicator type, timeframe, params)
    to outputs, so strategies differing only in some parameters share the rest (sweeps).
    """
    out: Features = {
        c: bars[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close", "volume")
    }
    resampled: dict[str, pd.DataFrame] = {}
    for ind in strategy.indicators:
        spec = get_indicator(ind.type)
        params = strategy.indicator_params(ind.id)
        higher = ind.timeframe if ind.timeframe not in (None, strategy.data.timeframe) else None
        key = (ind.type, f"{higher or ''}|{params.model_dump_json()}")
        outputs = cache.get(key) if cache is not None else None
        if outputs is None:
            outputs = _indicator_outputs(spec, params, bars, higher, resampled)
            if cache is not None:
                cache[key] = outputs
        for name, values in outputs.items():
            out[f"{ind.id}.{name}"] = values
        out[ind.id] = out[f"{ind.id}.{spec.primary_output}"]
    return out


def _indicator_outputs(
    spec: IndicatorSpec,
    params: Params,
    bars: pd.DataFrame,
    higher: str | None,
    resampled: dict[str, pd.DataFrame],
) -> dict[str, FloatArray]:
    if higher is None:
        computed = compute_indicator(spec, params, bars)
        return {name: s.to_numpy(dtype=float) for name, s in computed.items()}
    if higher not in resampled:
        resampled[higher] = resample_bars(bars, higher)
    computed = compute_indicator(spec, params, resampled[higher])
    joined = join_closed(pd.DataFrame(computed), higher, pd.DatetimeIndex(bars.index))
    return {name: joined[name].to_numpy(dtype=float) for name in computed}


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
