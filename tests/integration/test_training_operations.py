"""Training runs as operations on real processes: a model trained on a worker, saved as a
versioned artifact, then loaded by a backtest -- checked against the engine run directly.

The in-test OTLP receiver stands in for Jaeger (which cannot run here) for the trace check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import DataStore
from ktrdr.engine.model_choice import pin_model_version
from ktrdr.engine.strategy import load_strategy
from ktrdr.engine.strategy.loader import builtin_strategy_text
from ktrdr.engine.strategy.paths import strategy_document
from ktrdr.engine.training import ModelStore, evaluate, fit_model, prepare_training_data
from ktrdr.local_stack import LocalStack
from ktrdr.worker.runners.backtest import MAX_STORED_EQUITY_POINTS
from ktrdr.worker.runners.training import PHASES
from tests.support.history import assert_history_served
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.stack import Api, StackFactory, wait_for

pytestmark = pytest.mark.integration

SYMBOL = "EURUSD"
STRATEGY = "fuzzy_nn"
EPOCHS = 3
WINDOW = {"start": "2020-02-01T00:00:00+00:00", "end": "2020-06-30T00:00:00+00:00"}


@dataclass
class TrainingStack:
    local: LocalStack
    api: Api
    receiver: OtlpReceiver
    first: dict[str, Any]  # the first completed training run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainingStack]:
    receiver = OtlpReceiver()
    factory = StackFactory(tmp_path_factory.mktemp("training"))
    try:
        local, api = factory.start(
            workers=1,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            },
        )
        response = api.http.post(
            "/data/downloads/start",
            json={"symbol": SYMBOL, "timeframe": "1h", "provider": "synthetic", "bars": 6000},
        )
        assert response.status_code == 202, response.text
        api.wait_status(response.json()["id"], {"completed"}, 60)
        first = start_training(api, epochs=EPOCHS)
        first = api.wait_status(first["id"], {"completed", "failed"}, 90)
        assert first["status"] == "completed", first["error"]
        yield TrainingStack(local, api, receiver, first)
    finally:
        factory.stop_all()
        receiver.close()


def start_training(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {"strategy": STRATEGY, "symbol": SYMBOL, "timeframe": "1h", **WINDOW, **overrides}
    response = api.http.post("/training/start", json=body)
    assert response.status_code == 202, response.text
    op: dict[str, Any] = response.json()
    return op


def pinned_text(version: int, **model: str) -> str:
    """The fuzzy_nn example's text deciding with ``version`` of its model."""
    extra = "".join(f"\n    {k}: {v}" for k, v in model.items())
    text = builtin_strategy_text(STRATEGY)
    return text.replace(
        "    min_confidence: 0.45", f"    min_confidence: 0.45\n    version: {version}{extra}"
    )


def strategy_for_run() -> Any:
    strategy = load_strategy(STRATEGY)
    data = strategy.data.model_copy(update={"symbol": SYMBOL, "timeframe": "1h"})
    return strategy.model_copy(update={"data": data})


def test_training_run_stores_a_versioned_model_and_matches_the_engine(
    trained: TrainingStack,
) -> None:
    op = trained.first
    result = op["result"]
    assert result["model"]["name"] == STRATEGY and result["model"]["version"] == 1
    assert op["progress"]["percent"] == 100.0
    # The same training run directly on the same stored bars: same model quality, to the
    # last digit (CPU training is deterministic for one seed).
    strategy = strategy_for_run()
    config = strategy.training.model_copy(update={"epochs": EPOCHS})
    bars = DataStore(trained.local.data_home / "data").load(
        SYMBOL, "1h", WINDOW["start"], WINDOW["end"], warmup_bars=strategy.warmup_bars()
    )
    data = prepare_training_data(strategy, bars, WINDOW["start"], WINDOW["end"])
    fitted = fit_model(data, config)
    expected = json.loads(json.dumps(evaluate(fitted, data)))
    assert result["evaluation"] == expected
    assert result["metrics"]["test_accuracy"] == expected["accuracy"]
    assert result["metrics"]["epochs_run"] == fitted.epochs_run <= EPOCHS
    # The artifact is on the worker's disk, loadable, with the features it was trained on.
    loaded = ModelStore(trained.local.data_home / "models").load(STRATEGY, 1)
    assert loaded.metadata["feature_names"] == data.feature_names
    metrics = trained.api.http.get(f"/operations/{op['id']}/metrics").json()
    assert metrics["metrics"]["test_accuracy"] == expected["accuracy"]
    # The per-epoch history: an artifact the record references, the engine's to the bit.
    assert_history_served(trained.api, op, fitted.history, trained.local.data_home)


def test_backtest_with_the_trained_model_equals_the_engine_run_directly(
    trained: TrainingStack, tmp_path: Path
) -> None:
    response = trained.api.http.post(
        "/backtests/start",
        json={"strategy": pinned_text(1), "symbol": SYMBOL, "timeframe": "1h",
              "capital": 50_000, **WINDOW},
    )  # fmt: skip
    assert response.status_code == 202, response.text
    op = trained.api.wait_status(response.json()["id"], {"completed", "failed"}, 60)
    assert op["status"] == "completed", op["error"]
    stored = trained.api.http.get(f"/operations/{op['id']}/results").json()
    # Which model it used, and that the window is the one it was trained on.
    model = trained.first["result"]["model"]
    assert (
        op["params"]["model"]
        == stored.pop("model")
        == {k: v for k, v in model.items() if k != "path"}
    )
    assert model["symbol"] == SYMBOL and model["date_ranges"]["train"]["start"] >= WINDOW["start"]
    (warning,) = stored.pop("warnings")
    assert warning.startswith("in-sample: this window overlaps the data model fuzzy_nn v1")
    assert f"train {model['date_ranges']['train']['start'][:10]}.." in warning
    # ... and so do the CLI and the HTML report.
    report = tmp_path / "report.html"
    shown = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "backtest", "show", op["id"], "--trades", "0",
         "--html", str(report), "--url", trained.local.api_url],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "model fuzzy_nn v1 (trained on EURUSD 1h, train " in shown.stdout
    assert f"warning: {warning}" in shown.stdout
    page = report.read_text()
    assert "model fuzzy_nn v1 (trained on EURUSD 1h" in page and "in-sample: this window" in page

    strategy = pin_model_version(strategy_for_run(), 1)
    bars = DataStore(trained.local.data_home / "data").load(
        SYMBOL, "1h", WINDOW["start"], WINDOW["end"], warmup_bars=strategy.warmup_bars()
    )
    models = ModelStore(trained.local.data_home / "models")
    result = run_backtest(strategy, bars, capital=50_000.0, models=models, **WINDOW)
    expected = result.to_dict(max_equity_points=MAX_STORED_EQUITY_POINTS)
    expected["capital"] = 50_000.0
    assert stored.pop("effective_strategy") == strategy_document(strategy)
    stored.pop("artifacts")  # references to the tables that /results has filled in
    assert stored == json.loads(json.dumps(expected))


def test_training_is_one_trace_with_every_phase_on_the_worker(trained: TrainingStack) -> None:
    op = trained.first
    names = {f"training.{phase}" for phase in PHASES} | {"worker.job", "operations.dispatch"}

    def arrived(spans: list[Any]) -> bool:
        return names <= {s.name for s in spans if s.trace_id == op["trace_id"]}

    spans = [s for s in trained.receiver.wait_for(arrived, 15) if s.trace_id == op["trace_id"]]
    job = next(s for s in spans if s.name == "worker.job")
    for phase in PHASES:
        [span] = [s for s in spans if s.name == f"training.{phase}"]
        assert span.parent_span_id == job.span_id
        assert span.attributes["operation.id"] == op["id"]
    training = next(s for s in spans if s.name == "training.training")
    assert training.attributes["training.epochs"] == op["result"]["metrics"]["epochs_run"]
    results = next(s for s in spans if s.name == "training.results")
    assert results.attributes["training.model_version"] == 1


def test_cancelled_training_stops_at_an_epoch_and_frees_the_worker(
    trained: TrainingStack,
) -> None:
    api = trained.api
    # Early stopping off, so the run would really go on for 1000 epochs.
    endless = builtin_strategy_text(STRATEGY).replace(
        "early_stopping_patience: 5", "early_stopping_patience: 0"
    )
    assert "early_stopping_patience: 0" in endless
    op = start_training(api, strategy=endless, epochs=1000)

    def training_epochs() -> dict[str, Any] | None:
        current = api.op(op["id"])
        done = current["progress"].get("items_done") or 0
        return current if current["progress"]["phase"] == "training" and done >= 1 else None

    running = wait_for(training_epochs, 60, "the training to reach its first epoch")
    assert running["progress"]["items_total"] == 1000
    response = api.http.post(f"/operations/{op['id']}/cancel")
    assert response.status_code == 200, response.text
    cancelled = api.wait_status(op["id"], {"cancelled"}, 20)
    assert cancelled["progress"]["items_done"] < 1000
    # The worker takes the next run, which saves the next version.
    second = api.wait_status(start_training(api, epochs=1)["id"], {"completed"}, 60)
    assert second["result"]["model"]["version"] == 2

    fams = {
        f.name: f
        for f in text_string_to_metric_families(httpx.get(f"{trained.local.api_url}/metrics").text)
    }
    runs = {s.labels["status"]: s.value for s in fams["ktrdr_training_runs"].samples
            if s.name == "ktrdr_training_runs_total"}  # fmt: skip
    assert (runs["completed"], runs["cancelled"], runs["failed"]) == (2, 1, 0)
    worker = trained.local.workers[0].url
    worker_fams = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{worker}/metrics").text)
    }
    [epochs] = [s.value for s in worker_fams["ktrdr_training_epochs"].samples
                if s.name == "ktrdr_training_epochs_total"]  # fmt: skip
    first_epochs = trained.first["result"]["metrics"]["epochs_run"]
    cancelled_epochs = epochs - first_epochs - 1
    # The cancelled run trained on past the progress last stored before the cancel (pushes
    # are throttled; epochs here take milliseconds), and stopped far short of its 1000.
    assert cancelled["progress"]["items_done"] <= cancelled_epochs < 500


def test_training_a_strategy_without_fuzzy_sets_is_refused_before_queueing(
    trained: TrainingStack,
) -> None:
    before = trained.api.http.get("/operations", params={"type": "training"}).json()["count"]
    response = trained.api.http.post(
        "/training/start", json={"strategy": "sma_crossover", "symbol": SYMBOL}
    )
    assert response.status_code == 422
    assert "has no fuzzy_sets" in response.text and "fuzzy_nn" in response.text
    after = trained.api.http.get("/operations", params={"type": "training"}).json()["count"]
    assert after == before


def test_cli_train_run_shows_the_evaluation_and_train_list_the_models(
    trained: TrainingStack,
) -> None:
    url = trained.local.api_url
    run = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "train", "run", STRATEGY, "--symbol", SYMBOL,
         "--start", WINDOW["start"], "--end", WINDOW["end"], "--epochs", "2", "--url", url],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "test accuracy" in run.stdout and "HOLD" in run.stdout and "precision" in run.stdout
    assert f"saved model {STRATEGY} v" in run.stdout
    latest = trained.api.http.get("/operations", params={"type": "training", "limit": 1}).json()
    if trained.api.op(latest["data"][0]["id"])["result"]["model"]["beats_baseline"]:
        assert "it beats its baseline" in run.stdout
    else:
        assert "but it does NOT beat its baseline" in " ".join(run.stdout.split())
    operation_id = trained.first["id"]
    shown = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "train", "show", operation_id, "--url", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    accuracy = trained.first["result"]["metrics"]["test_accuracy"]
    assert f"test accuracy {accuracy:.1%}" in shown.stdout and f"{STRATEGY} v1" in shown.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "train", "list", "--json", "--url", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    models = json.loads(listed.stdout)
    completed = trained.api.http.get(
        "/operations", params={"type": "training", "status": "completed"}
    ).json()
    assert len(models) == completed["count"] >= 2
    assert [m["version"] for m in models] == sorted((m["version"] for m in models), reverse=True)
    assert {m["model"] for m in models} == {STRATEGY}
    assert all(0.0 <= m["test_accuracy"] <= 1.0 for m in models)


def test_a_cancelled_run_resumed_through_the_api_equals_an_uninterrupted_run(
    trained: TrainingStack,
) -> None:
    api = trained.api
    epochs = 150
    steady = builtin_strategy_text(STRATEGY).replace(
        "early_stopping_patience: 5", "early_stopping_patience: 0"
    )
    op = start_training(api, strategy=steady, epochs=epochs, checkpoint_every=1)

    def a_few_epochs_in() -> dict[str, Any] | None:
        current = api.op(op["id"])
        done = current["progress"].get("items_done") or 0
        return current if current["progress"]["phase"] == "training" and done >= 2 else None

    wait_for(a_few_epochs_in, 60, "the training to pass its second epoch")
    assert api.http.post(f"/operations/{op['id']}/cancel").status_code == 200
    cancelled = api.wait_status(op["id"], {"cancelled", "completed"}, 30)
    assert cancelled["status"] == "cancelled", "finished before the cancel: raise the epochs"
    checkpoints = trained.local.data_home / "checkpoints" / op["id"]
    assert sorted(checkpoints.glob("epoch-*.pt")), "a cancel writes a checkpoint"

    refused = api.http.post(f"/operations/{trained.first['id']}/resume")
    assert refused.status_code == 409 and "only a cancelled or failed training" in refused.text
    response = api.http.post(f"/operations/{op['id']}/resume")
    assert response.status_code == 202, response.text
    resumed = api.wait_status(response.json()["id"], {"completed", "failed"}, 120)
    assert resumed["status"] == "completed", resumed["error"]
    result = resumed["result"]
    start = result["resumed_from_epoch"]
    assert start >= 2 and result["epochs_this_attempt"] == list(range(start + 1, epochs + 1))
    assert not checkpoints.exists(), "a completed run removes its checkpoints"

    # The same run, never stopped, in this process: the same weights to the last bit.
    import torch

    strategy = strategy_for_run().model_copy(
        update={"training": strategy_for_run().training.model_copy(
            update={"early_stopping_patience": 0, "epochs": epochs})}
    )  # fmt: skip
    bars = DataStore(trained.local.data_home / "data").load(
        SYMBOL, "1h", WINDOW["start"], WINDOW["end"], warmup_bars=strategy.warmup_bars()
    )
    data = prepare_training_data(strategy, bars, WINDOW["start"], WINDOW["end"])
    whole = fit_model(data, strategy.training)
    saved = ModelStore(trained.local.data_home / "models").load(
        STRATEGY, result["model"]["version"]
    )
    for a, b in zip(
        saved.module.state_dict().values(), whole.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def _refused(api: Api, body: dict[str, Any]) -> str:
    response = api.http.post("/backtests/start", json=body)
    assert response.status_code == 422, response.text
    return str(response.json()["detail"])


def test_models_are_chosen_and_checked_before_queueing(trained: TrainingStack) -> None:
    api = trained.api
    model = trained.first["result"]["model"]
    metrics = trained.first["result"]["metrics"]
    assert model["beats_baseline"] is (metrics["test_accuracy"] > metrics["baseline_accuracy"])
    before = api.http.get("/operations", params={"type": "backtesting"}).json()["count"]
    if not model["beats_baseline"]:
        # Saved and flagged, but never the default: the newest model that beats its baseline.
        detail = _refused(api, {"strategy": STRATEGY, "symbol": SYMBOL, **WINDOW})
        assert detail.startswith("no version of model 'fuzzy_nn' beats its baseline")
        assert "v1 (does not beat its baseline)" in detail and "decisions.model.version" in detail
    detail = _refused(api, {"strategy": pinned_text(1, name="fuzzy_mn"), "symbol": SYMBOL})
    assert detail.startswith("no trained model named 'fuzzy_mn'")
    assert "did you mean 'fuzzy_nn'?" in detail
    detail = _refused(api, {"strategy": pinned_text(99), "symbol": SYMBOL})
    assert detail.startswith("model 'fuzzy_nn' has no version 99 (versions: v1")
    # Another symbol: refused before queueing unless the strategy allows it.
    download = api.http.post(
        "/data/downloads/start",
        json={"symbol": "GBPUSD", "timeframe": "1h", "provider": "synthetic", "bars": 1500},
    ).json()
    api.wait_status(download["id"], {"completed"}, 60)
    detail = _refused(api, {"strategy": pinned_text(1), "symbol": "GBPUSD"})
    assert "model fuzzy_nn v1 was trained on EURUSD 1h, this run is GBPUSD 1h" in detail
    assert "allow_other_symbols: true" in detail
    after = api.http.get("/operations", params={"type": "backtesting"}).json()["count"]
    assert after == before, "nothing was queued"
    allowed = api.http.post(
        "/backtests/start",
        json={"strategy": pinned_text(1, allow_other_symbols="true"), "symbol": "GBPUSD"},
    )
    assert allowed.status_code == 202, allowed.text
    done = api.wait_status(allowed.json()["id"], {"completed", "failed"}, 60)
    assert done["status"] == "completed", done["error"]
    assert done["result"]["model"]["symbol"] == SYMBOL and done["result"]["warnings"] == []
