"""The training job: data_loading → feature_engineering → training → evaluation → results.

One span and one phase-duration observation per phase; progress moves with every epoch,
each epoch goes to the operation's stored learning curve, and a cancel stops the training
at the next epoch boundary. Checkpoints (``training.checkpoint`` / ``training.resume``
spans) let a re-queued or resumed run go on where it stopped; with
``training.validation.method: purged_kfold`` the evaluation phase adds the k-fold.

The fitted per-epoch history is a columnar artifact (``/results/history``), written before
the job returns; the result keeps its key and checksum and a summary (epochs run, best
epoch and its validation loss), not the epochs themselves.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, fields
from typing import Any

import pyarrow as pa
from opentelemetry import trace

from ktrdr.engine.errors import TrainingCancelled
from ktrdr.engine.model_choice import summary_from_metadata
from ktrdr.engine.strategy.paths import strategy_document
from ktrdr.engine.strategy.schema import TrainingConfig
from ktrdr.engine.training import (
    SPLITS,
    EpochReport,
    TrainingData,
    evaluate,
    fit_model,
)
from ktrdr.engine.training.stacked import per_symbol_summary, training_rows
from ktrdr.engine.training.validation import class_balance, cross_validate
from ktrdr.jobs.training import TrainingParams
from ktrdr.operations.curve import EpochMetrics
from ktrdr.operations.results import HISTORY
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.mlflow_export import export_run
from ktrdr.worker.runners.stores import (
    bars_for,
    checkpoint_store,
    model_store,
    prune_checkpoints,
    publish_model,
    write_tables,
)

PHASES = ("data_loading", "feature_engineering", "training", "evaluation", "results")
# Progress: the training phase spans 20 % → 85 %, one step per epoch.
_TRAINING_FROM, _TRAINING_TO = 20.0, 85.0
tracer = trace.get_tracer("ktrdr.worker")
_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64()}
# The artifact's columns are EpochReport's fields, in order.
HISTORY_SCHEMA = pa.schema([(f.name, _ARROW_TYPES[str(f.type)]) for f in fields(EpochReport)])


def history_table(history: list[EpochReport]) -> pa.Table:
    """The fitted history, one row per epoch (non-finite losses kept as NaN)."""
    rows = [asdict(h) for h in history]
    return pa.Table.from_pylist(rows, schema=HISTORY_SCHEMA)


def best_val_loss(history: list[EpochReport], best_epoch: int) -> float | None:
    """The validation loss of the epoch whose weights were kept (None if not finite)."""
    best = next((h for h in history if h.epoch == best_epoch), None)
    return _finite(best.val_loss) if best is not None else None


class _EpochClock:
    """Times each epoch and reports it: progress, the stored learning curve, metrics."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._since = time.perf_counter()

    def restart(self) -> None:
        self._since = time.perf_counter()

    def report_restored(self, history: list[dict[str, Any]]) -> None:
        """The checkpoint's epochs, so the stored curve has those a lost worker trained
        but never reported."""
        for h in history:
            self._ctx.epoch(_metrics(EpochReport(**h), 0.0, restored=True))

    def on_epoch(self, report: EpochReport) -> None:
        now = time.perf_counter()
        took, self._since = now - self._since, now
        ctx = self._ctx
        ctx.metrics.epoch_finished(report.epoch, report.val_loss, report.val_accuracy)
        ctx.metrics.training.epoch_took(took)
        ctx.epoch(_metrics(report, took))
        done = report.epoch / report.epochs
        ctx.progress(
            _TRAINING_FROM + (_TRAINING_TO - _TRAINING_FROM) * done,
            message=f"epoch {report.epoch}/{report.epochs}: validation loss "
            f"{report.val_loss:.4f}, accuracy {report.val_accuracy:.1%}",
            items_done=report.epoch,
            items_total=report.epochs,
        )


def _metrics(report: EpochReport, took: float, *, restored: bool = False) -> EpochMetrics:
    return EpochMetrics(
        epoch=report.epoch, epochs=report.epochs, train_loss=_finite(report.train_loss),
        val_loss=_finite(report.val_loss), val_accuracy=_finite(report.val_accuracy),
        duration_s=took, restored=restored,
    )  # fmt: skip


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _cross_validation(
    ctx: JobContext, data: TrainingData, config: TrainingConfig
) -> dict[str, Any] | None:
    """The purged k-fold of ``training.validation`` (None for the chronological split)."""
    if config.validation.method != "purged_kfold":
        return None
    with tracer.start_as_current_span("training.cross_validation") as span:
        span.set_attribute("training.folds", config.validation.folds)

        def on_fold(done: int, total: int) -> None:
            ctx.progress(
                _TRAINING_TO + 8.0 * done / total,
                message=f"purged k-fold: fold {done}/{total} done",
            )

        try:
            folds = cross_validate(data, config, should_stop=lambda: ctx.cancelled, on_fold=on_fold)
        except TrainingCancelled:
            ctx.check_cancelled()
            raise
        span.set_attribute("training.cv_mean_accuracy", folds["mean_accuracy"])
        return folds


def run_training_job(ctx: JobContext) -> dict[str, Any]:
    params = TrainingParams.model_validate(ctx.params)
    symbols = [s for s, _ in params.data_keys()]
    # Several symbols train one model on their stacked rows (ktrdr.engine.training.stacked).
    symbol, timeframe = ",".join(symbols), params.data_keys()[0][1]
    strategy = params.run_strategy()
    config = strategy.training
    if params.epochs is not None:
        config = config.model_copy(update={"epochs": params.epochs})

    with ctx.phase("data_loading", span_prefix="training") as span:
        ctx.progress(2, message=f"loading {symbol} {timeframe}")
        bars = {
            s: bars_for(ctx, s, timeframe).load(
                s, timeframe, params.start, params.end, warmup_bars=strategy.warmup_bars()
            )
            for s in symbols
        }
        span.set_attribute("training.symbol", symbol)
        span.set_attribute("training.timeframe", timeframe)
        span.set_attribute("training.rows", sum(len(b) for b in bars.values()))
    ctx.check_cancelled()

    with ctx.phase("feature_engineering", span_prefix="training") as span:
        ctx.progress(10, message="fuzzy features and forward-return labels")
        data, stacked = training_rows(strategy, bars, params.start, params.end)
        span.set_attribute("training.strategy", strategy.name)
        span.set_attribute("training.features", len(data.feature_names))
        span.set_attribute("training.samples", len(data.y))
    ctx.check_cancelled()

    clock = _EpochClock(ctx)

    with ctx.phase("training", span_prefix="training") as span:
        ctx.progress(_TRAINING_FROM, message=f"training for up to {config.epochs} epochs")
        # A re-queued run (same operation) or a resumed one (resume_from) goes on from the
        # newest checkpoint, written every checkpoint_every epochs and before a cancel.
        run_id = params.resume_from or ctx.operation_id
        checkpoints = checkpoint_store(ctx, run_id)
        prune_checkpoints(ctx)
        resumed: list[int] = []

        def on_resume(epoch: int) -> None:
            resumed.append(epoch)
            ctx.metrics.training.run_resumed("resumed" if params.resume_from else "requeued")
            span.set_attribute("training.resumed_from_epoch", epoch)
            if checkpoints.restored is not None:
                clock.report_restored(checkpoints.restored.history)
            ctx.progress(_TRAINING_FROM, message=f"resumed from the checkpoint of epoch {epoch}")
            clock.restart()

        try:
            clock.restart()
            fitted = fit_model(
                data, config, on_epoch=clock.on_epoch, should_stop=lambda: ctx.cancelled,
                checkpoints=checkpoints, checkpoint_every=params.checkpoint_every,
                on_resume=on_resume,
            )  # fmt: skip
        except TrainingCancelled:
            ctx.check_cancelled()  # raises JobCancelled with the reason
            raise
        span.set_attribute("training.epochs", fitted.epochs_run)
        span.set_attribute("training.best_epoch", fitted.best_epoch)

    with ctx.phase("evaluation", span_prefix="training") as span:
        ctx.progress(_TRAINING_TO, message="evaluating on the held-out test split")
        evaluation = evaluate(fitted, data)
        span.set_attribute("training.test_accuracy", float(evaluation["accuracy"]))
        folds = _cross_validation(ctx, data, config)
    ctx.check_cancelled()

    with ctx.phase("results", span_prefix="training") as span:
        ctx.progress(95, message="saving the model")
        # The versions other workers saved first count: the next number is past theirs.
        info = model_store(ctx, strategy.model_name).save(
            fitted, strategy=strategy, symbol=symbol, timeframe=timeframe,
            metrics=evaluation, data=data,
        )  # fmt: skip
        publish_model(ctx, info.path)
        span.set_attribute("training.model", info.name)
        span.set_attribute("training.model_version", info.version)
        # Loss and accuracy per epoch (the console's report, a finished run's curve): an
        # artifact, complete before the result names it.
        artifacts = write_tables(ctx, {HISTORY: (history_table(fitted.history), {})})
    checkpoints.clear()  # the model is saved: the run's checkpoints are done with
    summary = summary_from_metadata(info.metadata)
    result: dict[str, Any] = {
        # What the backend's model catalog needs to choose and check models before
        # queueing a backtest (ktrdr.operations.catalog.resolve_model).
        "model": {**summary.to_dict(), "path": str(info.path)},
        # The numbers GET /operations/{id}/metrics serves.
        "metrics": {
            "test_accuracy": evaluation["accuracy"],
            "baseline_accuracy": evaluation["baseline_accuracy"],
            "epochs_run": fitted.epochs_run,
            "best_epoch": fitted.best_epoch,
            "best_val_loss": best_val_loss(fitted.history, fitted.best_epoch),
        },
        # Where this attempt started: after a worker loss, a SIGTERM or a resume, the epoch
        # of the checkpoint it went on from (0: from scratch), and the epochs it ran itself.
        "resumed_from_epoch": resumed[0] if resumed else 0,
        "epochs_this_attempt": [
            h.epoch for h in fitted.history if h.epoch > (resumed[0] if resumed else 0)
        ],
        # The checkpoints it wrote ({epoch, seconds}), as counted on the worker's metrics.
        "checkpoints_this_attempt": checkpoints.written,
        "evaluation": evaluation,
        # Share of each class per split (and per fold with a purged k-fold).
        "class_balance": {split: class_balance(data.y[data.part(split)]) for split in SPLITS},
        "validation": config.validation.model_dump(mode="json"),
        **({"cross_validation": folds} if folds is not None else {}),
        "artifacts": artifacts,
        "symbol": symbol,
        "timeframe": timeframe,
        "strategy": strategy.name,
        "effective_strategy": strategy_document(strategy),  # as trained, overrides applied
    }
    if stacked is not None:
        # Several symbols: each one's own split and its accuracy on its own test rows.
        predicted = fitted.predict_proba(data.X[data.test]).argmax(axis=1)
        result["symbols"] = symbols
        result["per_symbol"] = per_symbol_summary(stacked, predicted)
    exported = export_run(
        ctx.operation_id, result, config.model_dump(mode="json"),
        [asdict(h) for h in fitted.history],
    )  # fmt: skip
    if exported is not None:
        result["mlflow"] = exported
    return result
