"""A finished sweep's result: the best parameter set, the top of the table, diagnostics."""

from __future__ import annotations

from typing import Any

from ktrdr.campaigns.ranking import objective_value, ranked
from ktrdr.campaigns.results import CampaignResult
from ktrdr.jobs.campaigns import CampaignSettings

TOP_IN_SUMMARY = 10


def best_text(results: list[CampaignResult], settings: CampaignSettings) -> str:
    """'best sharpe 1.234 at {...}' for the progress message, or '' while none qualifies."""
    best = ranked(results, settings)
    if not best:
        return ""
    value = objective_value(best[0], settings)
    short = {k.rsplit(".", 1)[-1] if "params" not in k else k.split(".")[1]: v
             for k, v in best[0].params.items()}  # fmt: skip
    return f"best {settings.objective} {value:.4g} at {short}"


def entry(result: CampaignResult, settings: CampaignSettings) -> dict[str, Any]:
    return {
        "key": result.key,
        "combination": result.combination,
        "params": result.params,
        "objective": objective_value(result, settings),
        "statistics": result.statistics,
    }


def sweep_summary(
    results: list[CampaignResult], settings: CampaignSettings, *, planned: int
) -> dict[str, Any]:
    order = ranked(results, settings)
    return {
        "method": settings.method.value,
        "objective": settings.objective,
        "objective_statistic": settings.objective_key,
        "direction": settings.direction.value,
        "min_trades": settings.min_trades,
        "combinations": planned,
        "evaluated": len(results),
        "eligible": len(order),
        "best": entry(order[0], settings) if order else None,
        "top": [entry(r, settings) for r in order[:TOP_IN_SUMMARY]],
    }
