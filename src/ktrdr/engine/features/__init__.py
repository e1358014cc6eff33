"""Features: indicators, then fuzzy memberships, then the model's feature matrix.

The one room that backtests (rule and model decisions) and training both draw on, so a
feature is computed the same way wherever it is used. Every function is causal: the
value at bar t depends on bars up to t only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping, Sequence
from concurrent.futures import Executor, Future

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine import fuzzy
from ktrdr.engine.data.resample import join_closed_arrays, resample_bars
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
    strategy: Strategy,
    bars: pd.DataFrame,
    cache: IndicatorCache | None = None,
    columns: Features | None = None,
) -> Features:
    """Every indicator output by reference name (``id`` for the first output, ``id.output``)
    plus the price columns. An indicator on a higher timeframe runs on bars resampled from
    ``bars`` and is joined back only once each of its bars has closed.

    ``cache`` (optional, same ``bars`` every call) maps (indicator type, timeframe, params)
    to outputs, so strategies differing only in some parameters share the rest (sweeps).
    ``columns``: the bars' columns as float arrays when the caller has them already.
    """
    prices = ("open", "high", "low", "close", "volume")
    out: Features = (
        {c: columns[c] for c in prices}
        if columns is not None
        else {c: bars[c].to_numpy(dtype=float) for c in prices}
    )
    resampled: dict[str, pd.DataFrame] = {}
    # Without a cache (a single backtest), SMA pairs are computed together up front.
    paired = _paired_smas(strategy, out) if cache is None else {}
    for ind in strategy.indicators:
        spec = get_indicator(ind.type)
        params = strategy.indicator_params(ind.id)
        higher = ind.timeframe if ind.timeframe not in (None, strategy.data.timeframe) else None
        if cache is None:
            outputs = paired.get(ind.id) or _indicator_outputs(
                spec, params, bars, higher, resampled
            )
        else:
            key = _cache_key(ind.type, higher, params)
            cached = cache.get(key)
            if cached is None:
                cached = cache[key] = _indicator_outputs(spec, params, bars, higher, resampled)
            outputs = cached
        for name, values in outputs.items():
            out[f"{ind.id}.{name}"] = values
        out[ind.id] = out[f"{ind.id}.{spec.primary_output}"]
    return out


def _cache_key(kind: str, higher: str | None, params: Params) -> tuple[str, str]:
    return (kind, f"{higher or ''}|{params.model_dump_json()}")


_PRICES = ("open", "high", "low", "close", "volume")


# A base-timeframe SMA over a price column: its cache key, the column, the period.
SmaNeed = tuple[tuple[str, str], str, int]


def sma_needs(strategy: Strategy) -> list[SmaNeed]:
    """The SMAs of ``strategy`` that ``cache_smas`` can compute, under the keys
    ``compute_features`` looks up."""
    needs: list[SmaNeed] = []
    for ind in strategy.indicators:
        params = strategy.indicator_params(ind.id)
        source = getattr(params, "source", None)
        base = ind.timeframe in (None, strategy.data.timeframe)
        if ind.type == "sma" and base and source in _PRICES:
            key = _cache_key(ind.type, None, params)
            needs.append((key, str(source), int(params.period)))  # type: ignore[attr-defined]
    return needs


def cache_smas(
    needs: Sequence[SmaNeed],
    bars: pd.DataFrame,
    cache: IndicatorCache,
    pool: Executor | None = None,
    at_once: int = 1,
) -> None:
    """Put the (distinct) SMAs ``needs`` names into ``cache``, four per compiled pass
    (``rolling_means_into``: the values ``compute_features(strategy, bars, cache)``
    would compute one by one). A sweep's combinations bring many periods of one average.
    With ``pool``, up to ``at_once`` passes run on it at a time (they release the GIL), so
    at most ``4 * at_once`` new averages exist beside the cache's."""
    from ktrdr.engine.indicators.rolling_kernels import rolling_means_into

    by_source: dict[str, list[tuple[tuple[str, str], int]]] = {}
    for key, source, period in needs:
        by_source.setdefault(source, []).append((key, period))
    running: deque[tuple[list[tuple[str, str]], list[FloatArray], Future[None] | None]] = deque()

    def store() -> None:
        keys, values, future = running.popleft()
        if future is not None:
            future.result()
        for key, column in zip(keys, values, strict=True):
            cache[key] = {"value": column}

    for source, wanted in by_source.items():
        column = bars[source].to_numpy(dtype=np.float64)
        for at in range(0, len(wanted), 4):
            keys = [k for k, _ in wanted[at : at + 4]]
            periods = [p for _, p in wanted[at : at + 4]]
            # Allocated on this thread (see ``rolling_means_into``), not filled: the pass
            # writes every bar (a NaN fill first cost this thread ~1 ms per average).
            values = [np.empty(len(bars)) for _ in keys]
            if pool is None:
                rolling_means_into(column, periods, values)
                running.append((keys, values, None))
            else:
                future = pool.submit(rolling_means_into, column, periods, values)
                running.append((keys, values, future))
            while len(running) >= max(1, at_once):
                store()
    while running:
        store()


def _paired_smas(strategy: Strategy, columns: Features) -> dict[str, dict[str, FloatArray]]:
    """Outputs of base-timeframe SMAs over the same price column, two at a time in one
    compiled pass (``rolling_mean_pair``: the same values as one by one, in about the
    time of one — a crossover's two averages were a third of its backtest)."""
    from ktrdr.engine.indicators.rolling_kernels import rolling_mean_pair

    by_source: dict[str, list[tuple[str, int]]] = {}
    for ind in strategy.indicators:
        params = strategy.indicator_params(ind.id)
        source = getattr(params, "source", None)
        base = ind.timeframe in (None, strategy.data.timeframe)
        if ind.type == "sma" and base and source in columns:
            by_source.setdefault(str(source), []).append((ind.id, int(params.period)))  # type: ignore[attr-defined]
    found: dict[str, dict[str, FloatArray]] = {}
    for source, smas in by_source.items():
        for (id_a, period_a), (id_b, period_b) in zip(smas[::2], smas[1::2], strict=False):
            a, b = rolling_mean_pair(columns[source], period_a, period_b)
            found[id_a], found[id_b] = {"value": a}, {"value": b}
    return found


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
    columns = {name: s.to_numpy(dtype=float) for name, s in computed.items()}
    index = pd.DatetimeIndex(resampled[higher].index)
    return join_closed_arrays(columns, index, higher, pd.DatetimeIndex(bars.index))


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
