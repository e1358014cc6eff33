"""When a portfolio brings its book back to its weights: the rebalance rules.

A portfolio always rebalances when a symbol's target side changes (at the next open). A
rule adds scheduled rebalances: ``every_n_bars`` (N bars after the last rebalance) or a
calendar rule (``daily``, ``weekly``, ``monthly``: at the open of the first bar of a new
UTC day, ISO week or month — known at that open, so no look-ahead). Light (pandas only):
the backend imports it to check a request before queueing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr.engine.timeframes import did_you_mean

ON_SIGNAL = "on_signal"
EVERY_N_BARS = "every_n_bars"
# Calendar rules and the pandas period each one starts anew.
CALENDAR_PERIODS = {"daily": "D", "weekly": "W", "monthly": "M"}
REBALANCE_RULES = (ON_SIGNAL, EVERY_N_BARS, *CALENDAR_PERIODS)
# Weights are fractions of equity written by people: 0.1 + 0.2 + 0.7 is 1 give or take this.
WEIGHT_SUM_TOLERANCE = 1e-9


def check_rebalance(rule: str, every_bars: int | None) -> None:
    """Raise ValueError saying how to fix an unknown rule or a missing / stray bar count."""
    if rule not in REBALANCE_RULES:
        raise ValueError(
            f"unknown rebalance rule {rule!r}{did_you_mean(rule, REBALANCE_RULES)}; use one "
            f"of: {', '.join(REBALANCE_RULES)} (every_n_bars also needs every_bars: N)"
        )
    if rule == EVERY_N_BARS and every_bars is None:
        raise ValueError("rebalance every_n_bars needs every_bars (e.g. every_bars: 24)")
    if rule != EVERY_N_BARS and every_bars is not None:
        raise ValueError(
            f"every_bars is only used with rebalance: every_n_bars (rule is {rule!r}); "
            "remove it or set rebalance: every_n_bars"
        )


def calendar_due(index: pd.DatetimeIndex, rule: str) -> npt.NDArray[np.bool_]:
    """True at the first bar of each new calendar period of ``rule`` (never at bar 0);
    all False for rules without a calendar."""
    due = np.zeros(len(index), dtype=np.bool_)
    period = CALENDAR_PERIODS.get(rule)
    if period is None or len(index) < 2:
        return due
    utc = index.tz_convert("UTC") if index.tz is not None else index
    codes = utc.tz_localize(None).to_period(period).asi8
    due[1:] = codes[1:] != codes[:-1]
    return due
