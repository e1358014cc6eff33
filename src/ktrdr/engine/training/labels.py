"""Labels from future price movement: what the close did ``horizon`` bars later.

Classes are ints in ``MODEL_CLASSES`` order: 0 = SELL (fell by more than the threshold),
1 = HOLD (moved less than the threshold either way), 2 = BUY (rose by more).
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from ktrdr.engine.strategy.schema import MODEL_CLASSES, TrainingConfig

SELL_CLASS, HOLD_CLASS, BUY_CLASS = (MODEL_CLASSES.index(c) for c in ("SELL", "HOLD", "BUY"))
CLASS_NAMES: tuple[str, ...] = MODEL_CLASSES
LabelArray = npt.NDArray[np.int64]
# A bar that cannot be labelled (its look-ahead or its volatility is not known).
NO_LABEL = -1


def forward_labels(close: npt.ArrayLike, horizon: int, threshold: float) -> LabelArray:
    """Class of the forward return ``close[t + horizon] / close[t] - 1`` for every bar t that
    has one; the last ``horizon`` bars have no future close, so the result is that much
    shorter than ``close``."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 bar, got {horizon}")
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    prices = np.asarray(close, dtype=float)
    if len(prices) <= horizon:
        return np.empty(0, dtype=np.int64)
    forward = prices[horizon:] / prices[:-horizon] - 1.0
    labels = np.full(len(forward), HOLD_CLASS, dtype=np.int64)
    labels[forward > threshold] = BUY_CLASS
    labels[forward < -threshold] = SELL_CLASS
    return labels


def class_counts(labels: LabelArray) -> dict[str, int]:
    """How many labels fall in each class, by class name (zero counts included)."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    return {name: int(counts[i]) for i, name in enumerate(CLASS_NAMES)}


# ---- labels with a variable look-ahead: each returns (labels, end), where end[i] is the
# last bar label i looks at; the purge between train, validation and test uses it.


def zigzag_labels(
    close: npt.ArrayLike, threshold: float
) -> tuple[LabelArray, npt.NDArray[np.int64]]:
    """Swing labels: BUY on the bars of a rising leg, SELL on a falling leg, where a leg
    ends at a swing point that the price then leaves by more than ``threshold`` (a
    fraction). Bar t is labelled by the leg it is on — the direction from t to the next
    swing point — so bars after the last swing point (whose leg is not finished) get no
    label and the result is shorter than ``close``. ``end[i]`` is the next swing point."""
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    prices = np.asarray(close, dtype=float)
    swings = _swing_points(prices, threshold)
    if len(swings) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    n = swings[-1]  # bars up to the last swing point have a finished leg
    labels = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    for a, b in itertools.pairwise(swings):
        labels[a:b] = BUY_CLASS if prices[b] > prices[a] else SELL_CLASS
        end[a:b] = b
    return labels, end


def _swing_points(prices: npt.NDArray[np.float64], threshold: float) -> list[int]:
    """Indices of alternating highs and lows, each confirmed once the price has left it by
    more than ``threshold``; the first point is the first bar."""
    points = [0]
    direction, extreme = 0, 0  # direction of the leg being followed; its extreme so far
    for i in range(1, len(prices)):
        p = prices[i]
        if direction == 0:
            if p >= prices[0] * (1 + threshold):
                direction, extreme = 1, i
            elif p <= prices[0] * (1 - threshold):
                direction, extreme = -1, i
        elif direction * (p - prices[extreme]) > 0:
            extreme = i  # the leg goes on
        elif abs(p / prices[extreme] - 1) >= threshold:
            points.append(extreme)  # reversed far enough: the extreme was a swing point
            direction, extreme = -direction, i
    return points


def triple_barrier_labels(
    close: npt.ArrayLike,
    *,
    take_profit: float,
    stop_loss: float,
    max_bars: int,
    volatility_window: int | None = None,
) -> tuple[LabelArray, npt.NDArray[np.int64]]:
    """Triple-barrier labels (López de Prado, Advances in Financial ML, ch. 3): from each
    bar t, BUY if the close reaches ``close[t]·(1 + take_profit·σ_t)`` first, SELL if it
    reaches ``close[t]·(1 − stop_loss·σ_t)`` first, HOLD if neither within ``max_bars``
    bars (the vertical barrier). σ_t is 1 (fixed fractions) or, with
    ``volatility_window``, the standard deviation of the last that many one-bar returns up
    to t (so the barriers scale with the market; bars before it is known get NO_LABEL).
    Touches are judged on closes; the last ``max_bars`` bars have no full horizon and get
    no label. ``end[i]`` is the bar of the first touch (or the vertical barrier)."""
    if max_bars < 1 or take_profit <= 0 or stop_loss <= 0:
        raise ValueError("take_profit and stop_loss must be positive and max_bars at least 1")
    prices = np.asarray(close, dtype=float)
    n = len(prices) - max_bars
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    sigma = np.ones(len(prices))
    if volatility_window is not None:
        returns = np.r_[np.nan, prices[1:] / prices[:-1] - 1.0]
        sigma = np.lib.stride_tricks.sliding_window_view(returns, volatility_window).std(
            axis=1, ddof=1
        )
        sigma = np.r_[np.full(volatility_window - 1, np.nan), sigma]
    labels = np.full(n, HOLD_CLASS, dtype=np.int64)
    end = np.arange(n, dtype=np.int64) + max_bars
    path = np.lib.stride_tricks.sliding_window_view(prices[1:], max_bars)[:n] / prices[:n, None] - 1
    up_hit = path >= (take_profit * sigma[:n])[:, None]
    down_hit = path <= (-stop_loss * sigma[:n])[:, None]
    first_up = np.where(up_hit.any(axis=1), up_hit.argmax(axis=1), max_bars)
    first_down = np.where(down_hit.any(axis=1), down_hit.argmax(axis=1), max_bars)
    buy = first_up < first_down
    sell = first_down < first_up
    labels[buy], labels[sell] = BUY_CLASS, SELL_CLASS
    touched = buy | sell
    end[touched] = np.arange(n)[touched] + 1 + np.minimum(first_up, first_down)[touched]
    labels[np.isnan(sigma[:n])] = NO_LABEL  # σ not known yet at these bars
    return labels, end


def make_labels(
    config: TrainingConfig, close: npt.ArrayLike
) -> tuple[LabelArray, npt.NDArray[np.int64]]:
    """The labels ``config.labels`` names, with each label's last bar (for purging)."""
    prices = np.asarray(close, dtype=float)
    if config.labels == "zigzag":
        return zigzag_labels(prices, config.zigzag_threshold)
    if config.labels == "triple_barrier":
        return triple_barrier_labels(
            prices,
            take_profit=config.barrier_take_profit,
            stop_loss=config.barrier_stop_loss,
            max_bars=config.barrier_max_bars,
            volatility_window=config.barrier_volatility_window,
        )
    labels = forward_labels(prices, config.label_horizon, config.label_threshold)
    return labels, np.arange(len(labels), dtype=np.int64) + config.label_horizon
