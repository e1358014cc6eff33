"""A finished sweep's result: the best parameter set, the top of the table, diagnostics."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

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


def diagnostics(
    results: list[CampaignResult], best: CampaignResult | None
) -> dict[str, float | int | None]:
    """Deflated Sharpe Ratio of the best result among every trial, and PBO by CSCV over the
    compact return series the chunks kept (formulas: docs/campaigns.md).

    The DSR follows the engine's ``sweep_deflated_sharpe`` (per-period Sharpes from the
    statistics, N = trials with a defined Sharpe, their variance with ddof 1, T = bars);
    the best's skew and kurtosis come from the moments its chunk kept (normal without)."""
    from ktrdr.engine.campaigns import diagnostics as d

    out: dict[str, float | int | None] = {"trials": len(results)}
    stats = [r.statistics for r in results]
    if best is not None:
        extra = best.extra or {}
        per_period = [
            float(st["sharpe_ratio"]) / math.sqrt(float(st["bars_per_year"]))
            for st in stats
            if st.get("sharpe_ratio") is not None
        ]
        chosen = best.statistics
        if chosen.get("sharpe_ratio") is not None and len(per_period) >= 2:
            with contextlib.suppress(ValueError):  # degenerate moments: no DSR
                out["deflated_sharpe_ratio"] = _finite(
                    d.deflated_sharpe_ratio(
                        float(chosen["sharpe_ratio"]) / math.sqrt(float(chosen["bars_per_year"])),
                        len(per_period), float(np.var(per_period, ddof=1)), int(chosen["bars"]),
                        float(extra.get("skew") or 0.0), float(extra.get("kurtosis") or 3.0),
                    )
                )  # fmt: skip
    blocks = [(r.extra or {}).get("block_returns") or [] for r in results]
    if len(results) >= 2 and all(blocks):
        matrix = np.array([[np.nan if v is None else v for v in b] for b in blocks]).T
        with contextlib.suppress(ValueError):  # too few blocks for 16 splits: no PBO
            out["probability_of_backtest_overfitting"] = _finite(
                d.probability_of_backtest_overfitting(np.nan_to_num(matrix), n_splits=16)
            )
    return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def sweep_summary(
    results: list[CampaignResult], settings: CampaignSettings, *, planned: int
) -> dict[str, Any]:
    order = ranked(results, settings)
    return {
        "method": settings.method.value,
        "objective": settings.objective,
        "objective_statistic": settings.objective_key,
        "direction": settings.objective_rule.direction,
        "result_constraints": settings.constraints,
        "combinations": planned,
        "evaluated": len(results),
        "eligible": len(order),
        "best": entry(order[0], settings) if order else None,
        "top": [entry(r, settings) for r in order[:TOP_IN_SUMMARY]],
        "diagnostics": diagnostics(results, order[0] if order else None),
    }
