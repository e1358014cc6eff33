"""Which result is best: the objective, its direction and the result constraints (one
rule for the driver's best-so-far, the summary, TPE's feedback and the results route)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ktrdr.campaigns.results import CampaignResult
from ktrdr.jobs.campaigns import OBJECTIVE_KEYS, CampaignSettings, Direction

# Keys the results route sorts by: the objectives' names and these statistics as named.
SORTABLE_STATISTICS = (
    "sharpe_ratio", "sortino_ratio", "calmar_ratio", "total_return_pct",
    "annualized_return_pct", "profit_factor", "max_drawdown_pct", "num_trades",
    "win_rate_pct", "exposure_pct", "volatility_pct",
)  # fmt: skip


def sort_key_names() -> list[str]:
    return [*OBJECTIVE_KEYS, *SORTABLE_STATISTICS]


def statistics_key(sort: str) -> str:
    """The statistics key behind a sort name; ValueError listing the choices."""
    if sort in OBJECTIVE_KEYS:
        return OBJECTIVE_KEYS[sort]
    if sort in SORTABLE_STATISTICS:
        return sort
    from ktrdr.engine.timeframes import did_you_mean

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


def eligible(result: CampaignResult, settings: CampaignSettings) -> bool:
    """Passes the result constraints and has a defined objective."""
    stats = result.statistics
    if settings.min_trades is not None and int(stats.get("num_trades") or 0) < settings.min_trades:
        return False
    return value_of(stats, settings.objective_key) is not None


def objective_value(result: CampaignResult, settings: CampaignSettings) -> float | None:
    """The objective of an eligible result, else None."""
    return (
        value_of(result.statistics, settings.objective_key) if eligible(result, settings) else None
    )


def ranked(results: Iterable[CampaignResult], settings: CampaignSettings) -> list[CampaignResult]:
    """Eligible results, best first (ties: lower combination index first)."""
    sign = -1.0 if settings.direction == Direction.MAXIMIZE else 1.0
    scored = [(objective_value(r, settings), r) for r in results]
    good = [(v, r) for v, r in scored if v is not None]
    good.sort(key=lambda vr: (sign * vr[0], vr[1].window or 0, vr[1].combination))
    return [r for _, r in good]


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
