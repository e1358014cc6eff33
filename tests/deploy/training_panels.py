"""The Research dashboard's checkpoint/resume panels, held against one real training run.

The expected figures come from what the run itself reports, never from the metrics: its
result lists the checkpoints it wrote with their times (``checkpoints_this_attempt``) and
its learning curve the wall time of every epoch. The quantile panels are compared with
Prometheus's own interpolation (``histogram_quantile``) applied to those observations in
the metric's buckets: at a rate window spanning the whole workload every bucket's rate is
its count times the same factor, so the quantile is that of the counts, exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from ktrdr.telemetry.training_metrics import (
    CHECKPOINT_DURATION_BUCKETS_S,
    EPOCH_DURATION_BUCKETS_S,
    RESUME_REASONS,
)

# query(title, ref_id) -> the panel target's result at the evaluation time.
PanelQuery = Callable[[str, str], list[dict[str, Any]]]


def prometheus_quantile(q: float, observed: Sequence[float], bounds: Sequence[float]) -> float:
    """``histogram_quantile(q, ...)`` of ``observed`` in buckets ``le=bounds`` (+Inf added),
    as Prometheus 2.x computes it: linear inside the bucket the rank falls in, the lower
    edge of the first bucket 0, the highest finite bound for the +Inf bucket."""
    edges = [*sorted(bounds), math.inf]
    cumulative = [sum(1 for v in observed if v <= edge) for edge in edges]
    total = cumulative[-1]
    if total == 0:
        return math.nan
    rank = q * total
    # The first finite bucket holding the rank, else the +Inf one (Go's sort.Search).
    b = next((i for i in range(len(edges) - 1) if cumulative[i] >= rank), len(edges) - 1)
    if b == len(edges) - 1:
        return edges[-2]
    start = edges[b - 1] if b > 0 else 0.0
    below = cumulative[b - 1] if b > 0 else 0
    return start + (edges[b] - start) * ((rank - below) / (cumulative[b] - below))


def _one(result: list[dict[str, Any]], what: str) -> float:
    assert len(result) == 1, f"{what}: {len(result)} series: {result}"
    return float(result[0]["value"][1])


def check_training_panels(
    query: PanelQuery, result: dict[str, Any], epoch_seconds: Sequence[float]
) -> None:
    """Exact values of every checkpoint/resume panel after one run that did not resume."""
    checkpoints = result["checkpoints_this_attempt"]
    written = [c["seconds"] for c in checkpoints]
    # Not vacuous: the workload checkpoints every epoch, and it never resumes.
    assert [c["epoch"] for c in checkpoints] == result["epochs_this_attempt"], result
    assert written and result["resumed_from_epoch"] == 0, result
    assert len(epoch_seconds) == result["metrics"]["epochs_run"] == len(written)

    assert _one(query("Checkpoints written (window)", "A"), "written") == len(written)
    assert _one(query("Checkpoints restored (window)", "A"), "restored") == 0
    # Both reasons at 0 (series born at 0 on every worker), not "No data".
    resumed = {s["metric"]["reason"]: float(s["value"][1]) for s in query(
        "Resumed runs by reason (window)", "A"
    )}  # fmt: skip
    assert resumed == dict.fromkeys(RESUME_REASONS, 0.0)

    for ref, q in (("A", 0.5), ("B", 0.95)):
        got = _one(query("Epoch duration P50 / P95", ref), f"epoch P{q}")
        want = prometheus_quantile(q, epoch_seconds, EPOCH_DURATION_BUCKETS_S)
        assert got == pytest.approx(want, rel=1e-9), (q, epoch_seconds)

    by_action = {
        s["metric"]["action"]: float(s["value"][1])
        for s in query("Checkpoint write / read P95", "A")
    }
    assert set(by_action) == {"write", "read"}, by_action
    want = prometheus_quantile(0.95, written, CHECKPOINT_DURATION_BUCKETS_S)
    assert by_action["write"] == pytest.approx(want, rel=1e-9), written
    assert math.isnan(by_action["read"]), "nothing was read back, yet a read time shows"
