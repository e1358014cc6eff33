"""A finished campaign's whole results table as one columnar artifact.

The results rows stay in the store for sorting and paging (``/sweep-results``); the
artifact is the table a researcher downloads whole (``/results/sweep_results`` as JSON,
CSV or Parquet) or loads into pandas, best first, one column per parameter and statistic.
``GET /results`` shows only its first rows inline, so the record stays small.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ktrdr.artifacts import ArtifactStore
from ktrdr.artifacts.tables import write_table
from ktrdr.campaigns.ranking import objective_value, ranked
from ktrdr.campaigns.results import CampaignResult
from ktrdr.jobs.campaigns import SweepParams

PART = "sweep_results"
# Rows of the table shown inline in GET /results (the artifact holds every row).
PREVIEW_ROWS = 20


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds (e.g. int and str choices)
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def results_table(
    results: list[CampaignResult], params: SweepParams, *, rank: bool = True
) -> pa.Table:
    """With ``rank`` (a sweep): qualifying results best first by the objective, then the
    rest by combination. Without (a walk-forward, whose windows are ranked apart): by
    stage, window and combination, ``rank`` empty."""
    best = ranked(results, params) if rank else []
    chosen = {r.key for r in best}
    rest = (r for r in results if r.key not in chosen)
    rows = best + sorted(rest, key=lambda r: (r.stage, r.window or 0, r.combination))
    param_names = sorted({k for r in rows for k in r.params})
    stat_names = sorted({k for r in rows for k in r.statistics})
    columns: dict[str, pa.Array] = {
        "rank": pa.array(
            [i + 1 if r.key in chosen else None for i, r in enumerate(rows)], pa.int32()
        ),
        "key": pa.array([r.key for r in rows], pa.string()),
        "combination": pa.array([r.combination for r in rows], pa.int64()),
        "stage": pa.array([r.stage for r in rows], pa.string()),
        "window": pa.array([r.window for r in rows], pa.int32()),
        "objective": pa.array([objective_value(r, params) for r in rows], pa.float64()),
    }
    for name in param_names:
        columns[name] = _column([r.params.get(name) for r in rows])
    for name in stat_names:
        if name not in columns:
            columns[name] = _column([r.statistics.get(name) for r in rows])
    return pa.table(columns)


def write_results_table(
    store: ArtifactStore | None,
    operation_id: str,
    results: list[CampaignResult],
    params: SweepParams,
    *,
    rank: bool = True,
) -> dict[str, dict[str, Any]]:
    """``{"sweep_results": artifact entry}`` for the campaign's result (empty without a store)."""
    if store is None or not results:
        return {}
    table = results_table(results, params, rank=rank)
    ref = write_table(store, f"operations/{operation_id}/{PART}.arrow", table)
    return {PART: {**ref.to_dict(), "rows": table.num_rows, "preview_rows": PREVIEW_ROWS}}
