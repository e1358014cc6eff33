"""Driving one sweep: which chunks it needs now, and when it is done.

Grid and random sweeps know every combination up front and create all their chunks at
once. TPE decides round by round: the next round's trials are asked only once every
result of the rounds before it is stored (see ktrdr.campaigns.tpe).
"""

from __future__ import annotations

from typing import Any

from ktrdr.campaigns import plan, tpe
from ktrdr.campaigns.chunks import (
    ChunkRequest,
    Driving,
    campaign_progress,
    chunk_body,
    chunk_size,
    first_key,
)
from ktrdr.campaigns.results import CampaignResult
from ktrdr.campaigns.summary import best_text, sweep_summary
from ktrdr.campaigns.table import write_results_table
from ktrdr.jobs.campaigns import SearchMethod, SweepParams, search_space
from ktrdr.operations.model import OperationStatus
from ktrdr.operations.schemas import OperationPublic


def sweep_params(driver: Driving, parent: OperationPublic) -> SweepParams:
    key = ("params", parent.id)
    if key not in driver.cache:
        driver.cache[key] = SweepParams.model_validate(parent.params)
    cached: SweepParams = driver.cache[key]
    return cached


def combination_requests(
    params: SweepParams, indexed: list[tuple[int, dict[str, Any]]], chunk_size: int, **extra: Any
) -> list[ChunkRequest]:
    """Chunks of at most `chunk_size` over (index, params) pairs (dealt out as
    ``plan.chunks`` says), each keyed by its first index."""
    requests = []
    for picks in plan.chunks(len(indexed), chunk_size, [p for _, p in indexed]):
        part = [indexed[i] for i in picks]
        combos = [{"key": str(n), "index": n, "params": p} for n, p in part]
        requests.append(
            ChunkRequest(str(part[0][0]), chunk_body(params, combinations=combos, **extra))
        )
    return requests


def _grid_or_random(
    driver: Driving, parent: OperationPublic, params: SweepParams, children: list[OperationPublic]
) -> list[ChunkRequest]:
    key = ("combinations", parent.id)
    if key not in driver.cache:
        driver.cache[key] = list(enumerate(plan.combinations(params)))
    indexed: list[tuple[int, dict[str, Any]]] = driver.cache[key]
    size = chunk_size(driver, parent, params, children, len(indexed))
    # Planned once: every round (each child's progress and report) asks for them again.
    planned = ("requests", parent.id, size)
    if planned not in driver.cache:
        driver.cache[planned] = combination_requests(
            params, indexed, size, keep_returns=params.keep_returns
        )
    requests: list[ChunkRequest] = driver.cache[planned]
    return requests


def _tpe(
    driver: Driving,
    parent: OperationPublic,
    params: SweepParams,
    children: list[OperationPublic],
    results: list[CampaignResult],
) -> list[ChunkRequest]:
    """The chunks of the newest round that may start (all of them, created or not)."""
    started = [tpe.round_of(params, int(first_key(c))) for c in children]
    current = max(started, default=-1)
    if current >= 0:
        before_next = tpe.round_indices(params, current).stop
        stored = sum(1 for r in results if r.combination < before_next)
        if stored == before_next and current + 1 < tpe.round_count(params):
            current += 1
    current = max(current, 0)
    key = ("tpe", parent.id, current)
    if key not in driver.cache:
        start = tpe.round_indices(params, current).start
        history = [r for r in results if r.combination < start]
        trials = tpe.ask_round(params, search_space(params), history, current)
        driver.cache[key] = list(zip(tpe.round_indices(params, current), trials, strict=True))
    size = chunk_size(driver, parent, params, children, len(driver.cache[key]))
    return combination_requests(params, driver.cache[key], size, keep_returns=params.keep_returns)


def drive_sweep(
    driver: Driving, parent: OperationPublic, children: list[OperationPublic]
) -> list[tuple[str, str]]:
    params = sweep_params(driver, parent)
    results = driver.stored_results(parent)
    if params.method == SearchMethod.TPE:
        assert params.trials is not None
        total = params.trials
        wanted = _tpe(driver, parent, params, children, results)
    else:
        wanted = _grid_or_random(driver, parent, params, children)
        total = len(driver.cache[("combinations", parent.id)])
    existing = {first_key(c) for c in children}
    driver.create_chunks(parent, [w for w in wanted if w.first_key not in existing])
    done = len(results)
    if done >= total and all(c.status == OperationStatus.COMPLETED for c in children):
        summary = sweep_summary(results, params, planned=total)
        summary["artifacts"] = write_results_table(driver.artifacts, parent.id, results, params)
        progress = campaign_progress(done, total, best_text(results, params))
        return driver.finish(
            parent, OperationStatus.COMPLETED, result=summary, progress=progress,
            children_done=True,
        )  # fmt: skip
    driver.report_progress(parent, done, total, best_text(results, params))
    return []
