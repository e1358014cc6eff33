"""Optional export of a finished training run to MLflow, where ML researchers already look.

Only when ``KTRDR_MLFLOW_TRACKING_URI`` is set on the worker (and the ``mlflow`` or
``mlflow-skinny`` package is installed): one MLflow run per training operation in the
experiment ``KTRDR_MLFLOW_EXPERIMENT`` (default ``ktrdr``), with the training parameters,
the per-epoch losses and accuracy as metric histories (step = epoch), the test metrics
and the saved model's metadata as an artifact. An export that fails is reported in the
result and logged; it never fails the training run, whose model is already saved.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRACKING_URI_ENV = "KTRDR_MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "KTRDR_MLFLOW_EXPERIMENT"


def export_run(
    operation_id: str,
    result: dict[str, Any],
    training: dict[str, Any],
    history: list[dict[str, Any]],
) -> dict[str, str] | None:
    """Log ``result`` (the training job's result), ``training`` (the configuration as
    trained, the run's epochs included) and ``history`` (the rows of its history artifact,
    which the result only references) to MLflow; None when not configured."""
    uri = os.environ.get(TRACKING_URI_ENV)
    if not uri:
        return None
    try:
        return _export(uri, operation_id, result, training, history)
    except Exception as exc:  # MLflow down, not installed, bad URI: the run stands
        log.warning("MLflow export of %s failed: %s", operation_id, exc)
        return {"tracking_uri": uri, "error": f"{type(exc).__name__}: {exc}"}


def _export(
    uri: str,
    operation_id: str,
    result: dict[str, Any],
    training: dict[str, Any],
    history: list[dict[str, Any]],
) -> dict[str, str]:
    if uri.startswith("file:"):
        # MLflow 3 keeps its file store only on request; a local directory is what a
        # researcher without a tracking server has.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=uri)
    name = os.environ.get(EXPERIMENT_ENV, "ktrdr")
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    model = result["model"]
    run = client.create_run(
        experiment_id,
        run_name=f"{model['name']} v{model['version']}",
        tags={"ktrdr.operation_id": operation_id, "ktrdr.strategy": result["strategy"]},
    )
    run_id = run.info.run_id
    params = {f"training.{k}": str(v) for k, v in training.items()}
    params |= {"symbol": result["symbol"], "timeframe": result["timeframe"]}
    metrics = [
        Metric(key, value, 0, h["epoch"])
        for h in history
        for key, value in (
            ("train_loss", h["train_loss"]), ("val_loss", h["val_loss"]),
            ("val_accuracy", h["val_accuracy"]),
        )
    ]  # fmt: skip
    final = result["metrics"]
    metrics += [
        Metric(key, float(final[key]), 0, 0)
        for key in ("test_accuracy", "baseline_accuracy", "epochs_run", "best_epoch")
    ]
    if "cross_validation" in result:
        metrics.append(
            Metric("cv_mean_accuracy", result["cross_validation"]["mean_accuracy"], 0, 0)
        )
    # log_batch takes at most 1000 metrics and 100 params per call.
    items = [Param(k, v) for k, v in params.items()]
    for begin in range(0, len(items), 100):
        client.log_batch(run_id, params=items[begin : begin + 100])
    for begin in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[begin : begin + 1000])
    client.log_batch(run_id, tags=[RunTag("ktrdr.model_path", str(model["path"]))])
    metadata = Path(model["path"]) / "metadata.json"
    if metadata.is_file():
        client.log_artifact(run_id, str(metadata), artifact_path="model")
    client.set_terminated(run_id)
    return {"tracking_uri": uri, "run_id": run_id, "experiment_id": str(experiment_id)}
