"""A training run's learning curve: the epochs its workers reported, as stored.

A worker sends each finished epoch with its progress reports (never coalesced away like
progress itself); the store keeps every record with the attempt that produced it. After a
re-queue or a resume the epochs after the checkpoint are trained again, so the curve is
one point per epoch, the newest attempt's; ``recorded`` keeps everything in arrival order
(that is how a test sees which epochs an attempt repeated). A resumed attempt first sends
the history its checkpoint holds, marked ``restored``: epochs a killed worker trained but
never got to report are in the curve too.

Once the run has completed, its points are the fitted history itself (the result's
``history`` artifact, passed in as ``final``): the figures exactly as the model was
fitted, with each epoch's attempt, worker and duration from the report of it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ktrdr.bounds import INT32_MAX, RequestModel
from ktrdr.operations.model import OperationStatus

if TYPE_CHECKING:  # the history module needs SQLAlchemy, which workers never load
    from ktrdr.operations.history import OperationEvent

# Epochs per progress report at most; a worker sends what piled up since the last one.
MAX_EPOCHS_PER_REPORT = 1000


class EpochMetrics(RequestModel):
    """One finished epoch as the worker reports it (a loss that is not finite is null)."""

    epoch: int = Field(ge=1, le=INT32_MAX)
    epochs: int = Field(ge=1, le=INT32_MAX, description="the run's epoch budget")
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None = Field(ge=0.0, le=1.0)
    duration_s: float = Field(ge=0.0, le=1e9, description="wall time of the epoch")
    restored: bool = Field(
        False,
        description="read back from the checkpoint the run went on from, not trained again "
        "(the epochs a killed worker had not yet reported; duration unknown, 0)",
    )


class EpochPoint(BaseModel):
    epoch: int
    attempt: int
    worker_id: str | None
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    duration_s: float
    restored: bool


class TrainingCurve(BaseModel):
    operation_id: str
    status: OperationStatus
    epochs_total: int | None = Field(description="the run's epoch budget (None before epoch 1)")
    best_epoch: int | None = Field(description="lowest validation loss so far")
    latest: EpochPoint | None = Field(description="the last epoch reported")
    points: list[EpochPoint] = Field(description="one per epoch, the newest attempt's")
    recorded: list[EpochPoint] = Field(description="every record, attempts in order")


def epoch_detail(epoch: EpochMetrics) -> str:
    """How an epoch is kept in the history's detail column."""
    return epoch.model_dump_json()


def build_curve(
    operation_id: str,
    status: OperationStatus,
    events: list[OperationEvent],
    final: list[dict[str, Any]] | None = None,
    attempt: int = 1,
) -> TrainingCurve:
    """The curve from the epoch reports; with ``final`` (the completed run's history rows,
    JSON form) and ``attempt`` (the attempt that completed it), from the fitted history."""
    recorded: list[EpochPoint] = []
    total: int | None = None
    for event in events:
        metrics = EpochMetrics.model_validate(json.loads(event.detail or "{}"))
        total = metrics.epochs
        recorded.append(
            EpochPoint(
                epoch=metrics.epoch, attempt=event.attempt, worker_id=event.worker_id,
                train_loss=metrics.train_loss, val_loss=metrics.val_loss,
                val_accuracy=metrics.val_accuracy, duration_s=metrics.duration_s,
                restored=metrics.restored,
            )
        )  # fmt: skip
    newest: dict[int, EpochPoint] = {}
    for point in recorded:
        # Later records (a later attempt, a repeated report) win, but a trained record is
        # kept over one restored from a checkpoint (same figures, and it has its duration).
        if not (point.restored and point.epoch in newest):
            newest[point.epoch] = point
    if final is None:
        points = [newest[e] for e in sorted(newest)]
    else:
        points = [_fitted_point(row, newest.get(row["epoch"]), attempt) for row in final]
        total = final[-1]["epochs"] if final else total
    scored = [p for p in points if p.val_loss is not None]
    best = min(scored, key=lambda p: (p.val_loss, p.epoch)).epoch if scored else None
    return TrainingCurve(
        operation_id=operation_id, status=status, epochs_total=total, best_epoch=best,
        latest=recorded[-1] if recorded else None, points=points, recorded=recorded,
    )  # fmt: skip


def _fitted_point(row: dict[str, Any], reported: EpochPoint | None, attempt: int) -> EpochPoint:
    """One epoch of the fitted history; where it came from is its report's. An epoch no
    worker reported (its reports lost) counts as the completing attempt's, duration 0."""
    return EpochPoint(
        epoch=row["epoch"], train_loss=row["train_loss"], val_loss=row["val_loss"],
        val_accuracy=row["val_accuracy"],
        attempt=reported.attempt if reported else attempt,
        worker_id=reported.worker_id if reported else None,
        duration_s=reported.duration_s if reported else 0.0,
        restored=reported.restored if reported else False,
    )  # fmt: skip
