"""What the campaign kinds (sweep, walk-forward) share: chunk requests and bodies,
progress, and the driver's face they see (so they never import the driver itself)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from ktrdr.artifacts import ArtifactStore
from ktrdr.campaigns.results import CampaignResult, CampaignResults
from ktrdr.jobs.backtest import BacktestParams
from ktrdr.jobs.campaigns import MAX_AUTO_CHUNK, CampaignSettings
from ktrdr.operations.model import OperationStatus
from ktrdr.operations.schemas import OperationPublic, Progress


class Driving(Protocol):
    """The campaign driver as sweeps and walk-forwards use it."""

    cache: dict[Any, Any]
    results: CampaignResults
    artifacts: ArtifactStore | None

    def result_of(self, child: OperationPublic) -> dict[str, Any]: ...

    def stored_results(self, parent: OperationPublic) -> list[CampaignResult]: ...

    def create_chunks(self, parent: OperationPublic, requests: list[ChunkRequest]) -> None: ...

    def capable_workers(self) -> int: ...

    def report_progress(
        self, parent: OperationPublic, done: int, total: int, text: str
    ) -> None: ...

    def finish(
        self,
        parent: OperationPublic,
        status: OperationStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        progress: Progress | None = None,
        children_done: bool = False,
    ) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class ChunkRequest:
    """A child the campaign needs: identified by its first key (stable across restarts)."""

    first_key: str
    body: dict[str, Any]


class CampaignFailed(Exception):
    """A campaign cannot go on (a chunk failed for good); the message is the reason."""


def first_key(child: OperationPublic) -> str:
    combos = child.params.get("combinations") or []
    stage = child.params.get("stage", "sweep")
    return str(combos[0]["key"]) if combos else f"{stage}/{child.params.get('window')}"


def chunk_size(
    driver: Driving,
    parent: OperationPublic,
    settings: CampaignSettings,
    children: list[OperationPublic],
    count: int,
) -> int:
    """Combinations per chunk: the request's ``chunk_size``, else one chunk per idle capable
    worker (``count`` is how many are planned at once: a grid, a TPE round, one window),
    at most MAX_AUTO_CHUNK. Every chunk loads the bars and computes its indicators, so
    fewer, larger chunks waste less; one per worker keeps each of them busy. Once chunks
    exist their size is read back from them (the first of a plan is the largest), so a
    backend restart with other workers online plans the same chunks again."""
    if settings.chunk_size is not None:
        return settings.chunk_size
    key = ("chunk_size", parent.id)
    if key not in driver.cache:
        sizes = [
            len(c.params.get("combinations") or [])
            for c in children
            if c.params.get("stage", "sweep") in ("sweep", "in_sample")
        ]
        if sizes:
            driver.cache[key] = max(sizes)
        else:
            workers = max(1, driver.capable_workers())
            driver.cache[key] = max(1, min(MAX_AUTO_CHUNK, math.ceil(count / workers)))
    size: int = driver.cache[key]
    return size


def campaign_progress(done: int, total: int, text: str) -> Progress:
    """Combinations done of total, best so far in the message (100% only once complete)."""
    percent = 100.0 * done / total if total else 0.0
    message = f"{done}/{total} combinations" + (f", {text}" if text else "")
    return Progress(
        percent=percent if done >= total else min(percent, 99.9),
        phase="planning" if not total else "results" if done >= total else "evaluating",
        message=message[:2000], items_done=done, items_total=total,
    )  # fmt: skip


def chunk_body(params: BacktestParams, **chunk: Any) -> dict[str, Any]:
    """A child's parameters: the run's strategy, window and costs, plus the chunk's part."""
    base = params.model_dump(mode="json", include=set(BacktestParams.model_fields))
    return {**base, **chunk}
