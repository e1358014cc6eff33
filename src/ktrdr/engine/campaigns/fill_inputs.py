"""A campaign batch's per-combination fill inputs (sizing rows, exit fractions and
distances, costs), built with the backtest's own helpers so that every combination fills
exactly as its ordinary backtest would."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ktrdr.engine.backtest.runner import exit_levels, position_fractions
from ktrdr.engine.backtest.simulate import Exits
from ktrdr.engine.data.window import PreparedData
from ktrdr.engine.strategy.schema import Strategy

FloatArray = npt.NDArray[np.float64]


def per_bar_inputs(strategy: Strategy) -> bool:
    exits = strategy.exits
    distances = (exits.stop_loss, exits.take_profit, exits.trailing_stop)
    return strategy.position_sizing.method == "volatility_target" or any(
        d is not None and d.atr is not None for d in distances
    )


class FillInputs:
    """The fill pass's per-combination inputs for a chunk, built exactly as the backtest's
    ``runner.simulate`` / ``simulate_fills`` build them (same helpers, same values);
    combinations with the same sizing / exits share one row (by reference: nothing is
    stacked), and exits without per-bar distances share ``no_distances``."""

    def __init__(
        self,
        combos: list[Strategy],
        data: PreparedData,
        commission: float | None,
        slippage: float | None,
        no_distances: FloatArray,
    ) -> None:
        n = data.window_end - data.window_start
        sizes: dict[str, FloatArray] = {}
        dists: dict[str, tuple[Exits, FloatArray]] = {}
        self.size_rows: list[FloatArray] = []
        self.distance_rows: list[FloatArray] = []
        self.fixed_units = np.empty(len(combos))
        self.exit_fractions = np.empty((len(combos), 3))
        self.time_bars = np.empty(len(combos), np.int64)
        self.sell_to = [-1 if c.position_mode == "long_short" else 0 for c in combos]
        for c, combo in enumerate(combos):
            sizing = combo.position_sizing
            key = f"{combo.data.timeframe}|{sizing.model_dump_json()}"
            if key not in sizes:
                fraction = np.asarray(position_fractions(combo, data), dtype=np.float64)
                sizes[key] = np.ascontiguousarray(np.broadcast_to(fraction, (n,)))
            self.size_rows.append(sizes[key])
            self.fixed_units[c] = (
                float(sizing.units or 0.0) if sizing.method == "fixed_units" else np.nan
            )
            key = combo.exits.model_dump_json()
            if key not in dists:
                exits = exit_levels(combo.exits, data)
                parts = (exits.stop_distance, exits.take_profit_distance, exits.trailing_distance)
                if all(d is None for d in parts):
                    dists[key] = (exits, no_distances)
                else:
                    rows = [
                        no_distances[0] if d is None else np.asarray(d, np.float64) for d in parts
                    ]
                    dists[key] = (exits, np.vstack(rows))
            exits, distances = dists[key]
            self.distance_rows.append(distances)
            self.exit_fractions[c] = (
                exits.stop_fraction,
                exits.take_profit_fraction,
                exits.trailing_fraction,
            )
            self.time_bars[c] = int(exits.time_stop_bars)
        self.commission = np.array([_cost(commission, c.costs.commission) for c in combos])
        self.slippage = np.array([_cost(slippage, c.costs.slippage) for c in combos])


def _cost(override: float | None, own: float) -> float:
    return float(own if override is None else override)
