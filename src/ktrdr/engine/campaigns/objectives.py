"""What a sweep optimises, and which results it accepts: pure functions over the statistics
dict of one combination (``Statistics.to_dict()`` keys; None/NaN mean "not defined").

No numpy here, so the backend can validate ``--objective`` and result constraints at
submission (``get_objective`` / ``parse_result_constraints`` raise ValueError with a
did-you-mean).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ktrdr.engine.timeframes import did_you_mean

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Objective:
    """A statistic to optimise; ``score`` turns it into "higher is better" with undefined
    values (no trades, zero volatility) scored -inf so they never win."""

    name: str
    statistic: str  # key in the statistics dict
    direction: Direction
    description: str

    def value(self, statistics: Mapping[str, Any]) -> float:
        """The raw statistic (NaN when undefined; +inf profit factor stays +inf)."""
        v = statistics.get(self.statistic)
        if v is None:
            # JSON carries +inf profit factor (no losing trade) as None too; trades decide.
            if self.statistic == "profit_factor" and (statistics.get("num_trades") or 0) > 0:
                return math.inf
            return math.nan
        return float(v)

    def score(self, statistics: Mapping[str, Any]) -> float:
        """Comparable score: higher is better for either direction; -inf if undefined."""
        v = self.value(statistics)
        if math.isnan(v):
            return -math.inf
        return v if self.direction == "maximize" else -v

    def best(self, results: list[Mapping[str, Any]]) -> int:
        """Index of the best statistics dict (the first one on ties); ValueError if empty."""
        if not results:
            raise ValueError("no results to choose from")
        scores = [self.score(r) for r in results]
        return scores.index(max(scores))


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("sharpe", "sharpe_ratio", "maximize", "annualised Sharpe ratio (rf = 0)"),
        Objective("sortino", "sortino_ratio", "maximize", "annualised Sortino ratio"),
        Objective("calmar", "calmar_ratio", "maximize", "CAGR / |max drawdown|"),
        Objective("total_return", "total_return_pct", "maximize", "total return, percent"),
        Objective("profit_factor", "profit_factor", "maximize", "gross wins / gross losses"),
        Objective("max_drawdown", "max_drawdown_pct", "maximize", "max drawdown (<= 0), percent"),
    )
}


def get_objective(name: str, direction: Direction | None = None) -> Objective:
    """The registered objective ``name``, optionally with its direction overridden
    ("maximize"/"minimize"); ValueError with a did-you-mean for an unknown name."""
    if name not in OBJECTIVES:
        raise ValueError(
            f"unknown objective {name!r}{did_you_mean(name, list(OBJECTIVES))}; "
            f"choose one of: {', '.join(OBJECTIVES)}"
        )
    objective = OBJECTIVES[name]
    if direction is None or direction == objective.direction:
        return objective
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    return Objective(objective.name, objective.statistic, direction, objective.description)


# Result constraints: statistic bounds a combination must meet to count (e.g. min_trades).
RESULT_CONSTRAINTS: dict[str, tuple[str, Literal["min", "max"]]] = {
    "min_trades": ("num_trades", "min"),
    "max_drawdown_pct": ("max_drawdown_pct", "min"),  # drawdowns are <= 0: at least -X
    "min_exposure_pct": ("exposure_pct", "min"),
    "min_win_rate_pct": ("win_rate_pct", "min"),
    "min_total_return_pct": ("total_return_pct", "min"),
}


def parse_result_constraints(given: Mapping[str, Any]) -> dict[str, float]:
    """Validate {name: bound} (e.g. {"min_trades": 10}); ValueError naming the fix."""
    out: dict[str, float] = {}
    for name, bound in given.items():
        if name not in RESULT_CONSTRAINTS:
            raise ValueError(
                f"unknown result constraint {name!r}{did_you_mean(name, list(RESULT_CONSTRAINTS))}"
                f"; choose from: {', '.join(RESULT_CONSTRAINTS)}"
            )
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
        ):
            raise ValueError(f"result constraint {name} needs a finite number, got {bound!r}")
        out[name] = float(bound)
    return out


def meets_constraints(statistics: Mapping[str, Any], constraints: Mapping[str, float]) -> bool:
    """True when every bound holds; an undefined statistic fails its bound. For
    ``max_drawdown_pct`` give the worst acceptable drawdown as a negative percent (-20)."""
    for name, bound in constraints.items():
        key, kind = RESULT_CONSTRAINTS[name]
        v = statistics.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return False
        if (kind == "min" and float(v) < bound) or (kind == "max" and float(v) > bound):
            return False
    return True
