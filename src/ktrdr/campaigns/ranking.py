"""Which result is best: the objective, its direction and the result constraints (one
rule for the driver's best-so-far, the summary, TPE's feedback and the results route)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ktrdr.campaigns.results import CampaignResult
from ktrdr.engine.campaigns.objectives import OBJECTIVES, meets_constraints
from ktrdr.engine.timeframes import did_you_mean
from ktrdr.jobs.campaigns import CampaignSettings

# Keys the results route sorts by: the objectives' names and these statistics as named.
SORTABLE_STATISTICS = (
    "sharpe_ratio", "sortino_ratio", "calmar_ratio", "total_return_pct",
    "annualized_return_pct", "profit_factor", "max_drawdown_pct", "num_trades",
    "win_rate_pct", "exposure_pct", "volatility_pct",
)  # fmt: skip


def sort_key_names() -> list[str]:
    return [*OBJECTIVES, *SORTABLE_STATISTICS]


def statistics_key(sort: str) -> str:
    """The statistics key behind a sort name; ValueError listing the choices."""
    if sort in OBJECTIVES:
        return OBJECTIVES[sort].statistic
    if sort in SORTABLE_STATISTICS:
        return sort
    names = sort_key_names()
    raise ValueError(
        f"cannot sort by {sort!r}{did_you_mean(sort, names)}; sort by one of {', '.join(names)}"
    )


def value_of(statistics: dict[str, Any], key: str) -> float | None:
    """A finite number, or None (no trades, an undefined ratio)."""
    value = statistics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def objective_value(result: CampaignResult, settings: CampaignSettings) -> float | None:
    """The raw objective of a result that meets the result constraints, else None
    (undefined objectives too: they never rank)."""
    if not meets_constraints(result.statistics, settings.constraints):
        return None
    rule = settings.objective_rule
    return None if math.isinf(rule.score(result.statistics)) else rule.value(result.statistics)


def objective_score(result: CampaignResult, settings: CampaignSettings) -> float | None:
    """Higher is better whatever the direction (what TPE maximises); None if it does not
    qualify."""
    if objective_value(result, settings) is None:
        return None
    return settings.objective_rule.score(result.statistics)


def ranked(results: Iterable[CampaignResult], settings: CampaignSettings) -> list[CampaignResult]:
    """Results that qualify, best first by the engine's objective score (ties: lower
    combination first)."""
    rule = settings.objective_rule
    good = [r for r in results if objective_value(r, settings) is not None]
    good.sort(key=lambda r: (-rule.score(r.statistics), r.window or 0, r.combination))
    return good


def sorted_by(
    results: Iterable[CampaignResult], sort: str, *, descending: bool
) -> list[CampaignResult]:
    """Results sorted by one statistic; undefined values last."""
    key = statistics_key(sort)
    sign = -1.0 if descending else 1.0
    items = list(results)
    defined = [r for r in items if value_of(r.statistics, key) is not None]
    undefined = [r for r in items if value_of(r.statistics, key) is None]
    defined.sort(key=lambda r: (sign * (value_of(r.statistics, key) or 0.0), r.combination))
    return defined + undefined
