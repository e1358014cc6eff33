"""Driving one walk-forward campaign.

1. A `windows` chunk cuts the campaign's bars into windows on a worker (the backend has
   no bars): train / test timestamps by the engine's window rule.
2. Every window's in-sample sweep: the grid or random combinations on its training bars,
   in chunks (keys `w<window>/<combination>`).
3. Once every window's in-sample results are stored, one `out_of_sample` chunk runs each
   window's best parameters (by the objective and result constraints) on its test bars
   and stitches the equity curves (keys `w<window>/oos`).
4. The summary: per-window chosen parameters and in/out-of-sample statistics, the
   stitched out-of-sample curve and walk-forward efficiency (mean OOS / mean IS objective).
"""

from __future__ import annotations

import math
from typing import Any

from ktrdr.campaigns import plan
from ktrdr.campaigns.chunks import (
    CampaignFailed,
    ChunkRequest,
    Driving,
    campaign_progress,
    chunk_body,
    chunk_size,
    first_key,
)
from ktrdr.campaigns.ranking import objective_value, ranked
from ktrdr.campaigns.results import CampaignResult
from ktrdr.campaigns.table import write_results_table
from ktrdr.jobs.campaigns import WalkforwardParams
from ktrdr.operations.model import OperationStatus
from ktrdr.operations.schemas import OperationPublic

WINDOWS_KEY = "windows/None"


def _params(driver: Driving, parent: OperationPublic) -> WalkforwardParams:
    key = ("params", parent.id)
    if key not in driver.cache:
        driver.cache[key] = WalkforwardParams.model_validate(parent.params)
    cached: WalkforwardParams = driver.cache[key]
    return cached


def _combinations(driver: Driving, parent: OperationPublic, params: WalkforwardParams) -> list[Any]:
    key = ("combinations", parent.id)
    if key not in driver.cache:
        driver.cache[key] = plan.combinations(params)
    combos: list[Any] = driver.cache[key]
    return combos


def in_sample_requests(
    params: WalkforwardParams,
    windows: list[dict[str, Any]],
    combos: list[dict[str, Any]],
    size: int,
) -> list[ChunkRequest]:
    requests = []
    for w in windows:
        n = w["window"]
        for part in plan.chunks(len(combos), size, combos):
            body = chunk_body(
                params, stage="in_sample", window=n, start=w["train_start"], end=w["train_end"],
                combinations=[{"key": f"w{n}/{i}", "index": i, "params": combos[i]} for i in part],
            )  # fmt: skip
            requests.append(ChunkRequest(f"w{n}/{part[0]}", body))
    return requests


def chosen(
    params: WalkforwardParams, windows: list[dict[str, Any]], results: list[CampaignResult]
) -> list[CampaignResult]:
    """Each window's best in-sample result; CampaignFailed naming a window with none."""
    picks = []
    for w in windows:
        best = ranked([r for r in results if r.window == w["window"]], params)
        if not best:
            raise CampaignFailed(
                f"walk-forward window {w['window']} ({w['train_start']} to {w['train_end']}): "
                "no in-sample combination meets the objective's result constraints; relax "
                "them (e.g. min_trades) or lengthen the in-sample window"
            )
        picks.append(best[0])
    return picks


def drive_walkforward(
    driver: Driving, parent: OperationPublic, children: list[OperationPublic]
) -> list[tuple[str, str]]:
    params = _params(driver, parent)
    by_key = {first_key(c): c for c in children}
    cutter = by_key.get(WINDOWS_KEY)
    if cutter is None:
        settings = {**params.lengths(), "anchored": params.anchored}
        body = chunk_body(params, stage="windows", windows=settings)
        driver.create_chunks(parent, [ChunkRequest("windows", body)])
        return []
    if cutter.status != OperationStatus.COMPLETED:
        driver.report_progress(parent, 0, 0, "cutting the bars into windows")
        return []
    windows: list[dict[str, Any]] = driver.result_of(cutter)["windows"]
    combos = _combinations(driver, parent, params)
    size = chunk_size(driver, parent, params, children, len(combos))
    wanted = in_sample_requests(params, windows, combos, size)
    driver.create_chunks(parent, [r for r in wanted if r.first_key not in by_key])
    results = driver.stored_results(parent)
    in_sample = [r for r in results if r.stage == "in_sample"]
    total = len(windows) * (len(combos) + 1)
    if len(in_sample) < len(windows) * len(combos):
        driver.report_progress(parent, len(results), total, f"{len(windows)} windows")
        return []
    picks = chosen(params, windows, in_sample)
    oos_key = f"w{windows[0]['window']}/oos"
    oos_chunk = by_key.get(oos_key)
    if oos_chunk is None:
        combos_oos = [
            {"key": f"w{w['window']}/oos", "index": pick.combination, "params": pick.params,
             "window": w["window"], "start": w["test_start"], "end": w["test_end"]}
            for w, pick in zip(windows, picks, strict=True)
        ]  # fmt: skip
        body = chunk_body(params, stage="out_of_sample", combinations=combos_oos)
        driver.create_chunks(parent, [ChunkRequest(oos_key, body)])
        return []
    if oos_chunk.status != OperationStatus.COMPLETED:
        driver.report_progress(parent, len(results), total, "out of sample")
        return []
    summary = walkforward_summary(params, windows, picks, results, driver.result_of(oos_chunk))
    summary["artifacts"] = write_results_table(
        driver.artifacts, parent.id, results, params, rank=False
    )
    progress = campaign_progress(total, total, "")
    return driver.finish(parent, OperationStatus.COMPLETED, result=summary, progress=progress)


def walkforward_summary(
    params: WalkforwardParams,
    windows: list[dict[str, Any]],
    picks: list[CampaignResult],
    results: list[CampaignResult],
    oos: dict[str, Any],
) -> dict[str, Any]:
    from ktrdr.engine.campaigns.walkforward import walkforward_efficiency

    out_of_sample = {r.window: r for r in results if r.stage == "out_of_sample"}
    rows = []
    for w, pick in zip(windows, picks, strict=True):
        tested = out_of_sample[w["window"]]
        rows.append(
            {
                **w, "params": pick.params, "combination": pick.combination,
                "in_sample": pick.statistics,
                "in_sample_objective": objective_value(pick, params),
                "out_of_sample": tested.statistics,
                "out_of_sample_objective": _finite(params.objective_rule.value(tested.statistics)),
            }
        )  # fmt: skip
    efficiency = walkforward_efficiency(
        [r["in_sample_objective"] for r in rows],
        [r["out_of_sample_objective"] for r in rows],
    )
    return {
        "method": params.method.value,
        "objective": params.objective,
        "objective_statistic": params.objective_key,
        "direction": params.objective_rule.direction,
        "result_constraints": params.constraints,
        "train_bars": params.train_bars,
        "test_bars": params.test_bars,
        "step_bars": params.step_bars or params.test_bars,
        "train_period": params.train_period,
        "test_period": params.test_period,
        "step_period": params.step_period or params.test_period,
        "anchored": params.anchored,
        "windows": rows,
        "stitched": oos.get("stitched"),
        "stitched_equity": oos.get("stitched_equity", []),
        "walkforward_efficiency": _finite(efficiency),
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
