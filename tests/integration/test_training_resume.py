"""Training runs that survive and can be looked at, on real processes: kill -9 of the worker
mid-run (the run goes on from its checkpoint on the other worker, and ends with the weights
of a run never interrupted), the stored learning curve, the purged k-fold through the
platform, `ktrdr train show/compare` on real runs, the checkpoint telemetry and the MLflow
export into a local MLflow file store (the real MLflow client, no server needed).

The in-test OTLP receiver stands in for Jaeger (which cannot run here) for the span checks.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ktrdr.engine.data import DataStore
from ktrdr.engine.strategy import load_strategy
from ktrdr.engine.strategy.loader import builtin_strategy_text
from ktrdr.engine.training import ModelStore, fit_model, prepare_training_data
from ktrdr.engine.training.checkpoint import CheckpointStore
from ktrdr.engine.training.validation import cross_validate
from ktrdr.local_stack import LocalStack
from tests.support.cli import ktrdr
from tests.support.history import assert_history_served, served_history
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.stack import Api, StackFactory, wait_for

pytestmark = pytest.mark.integration

SYMBOL = "EURUSD"
STRATEGY = "fuzzy_nn"
WINDOW = {"start": "2020-02-01T00:00:00+00:00", "end": "2020-06-30T00:00:00+00:00"}
# Lost after 7 s of silence: long enough that a loaded machine's slow heartbeat is not a
# death, short enough for the test.
HEARTBEAT_TIMEOUT_S = 7.0
# Epochs of the killed run: enough that a worker whose epoch reports lag (they go out
# every 0.25 s, ~25 epochs apart here) is still training when the test sees 4 stored. At
# 60 the run had often trained 58-60 by then, and no run could be caught in five.
KILL_EPOCHS = 300
STEADY = builtin_strategy_text(STRATEGY).replace(
    "early_stopping_patience: 5", "early_stopping_patience: 0"
)
PURGED = STEADY.replace(
    "  seed: 7\n", "  seed: 7\n  validation: {method: purged_kfold, folds: 3, embargo: 12}\n"
)


@dataclass
class Stack:
    local: LocalStack
    api: Api
    receiver: OtlpReceiver
    mlruns: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    receiver = OtlpReceiver()
    root = tmp_path_factory.mktemp("training-resume")
    mlruns = root / "mlruns"
    factory = StackFactory(root)
    try:
        local, api = factory.start(
            workers=2,
            env={
                "KTRDR_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "KTRDR_MLFLOW_TRACKING_URI": mlruns.as_uri(),
            },
        )
        response = api.http.post(
            "/data/downloads/start",
            json={"symbol": SYMBOL, "timeframe": "1h", "provider": "synthetic", "bars": 6000},
        )
        assert response.status_code == 202, response.text
        api.wait_status(response.json()["id"], {"completed"}, 60)
        yield Stack(local, api, receiver, mlruns)
    finally:
        factory.stop_all()
        receiver.close()


def start_training(api: Api, strategy: str, **overrides: Any) -> dict[str, Any]:
    body = {"strategy": strategy, "symbol": SYMBOL, "timeframe": "1h", **WINDOW, **overrides}
    response = api.http.post("/training/start", json=body)
    assert response.status_code == 202, response.text
    op: dict[str, Any] = response.json()
    return op


def curve(api: Api, op_id: str) -> dict[str, Any]:
    response = api.http.get(f"/operations/{op_id}/curve")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def engine_data(local: LocalStack, strategy_text: str, epochs: int) -> tuple[Any, Any]:
    """The training data and configuration of a run, prepared here from the same bars."""
    strategy = load_strategy(strategy_text)
    data_spec = strategy.data.model_copy(update={"symbol": SYMBOL, "timeframe": "1h"})
    strategy = strategy.model_copy(update={"data": data_spec})
    bars = DataStore(local.data_home / "data").load(
        SYMBOL, "1h", WINDOW["start"], WINDOW["end"], warmup_bars=strategy.warmup_bars()
    )
    data = prepare_training_data(strategy, bars, WINDOW["start"], WINDOW["end"])
    return data, strategy.training.model_copy(update={"epochs": epochs})


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def worker_process(local: LocalStack, worker_id: str) -> Any:
    return next(w for w in local.workers if worker_id.endswith(w.url.rsplit(":", 1)[1]))


def test_kill_9_mid_run_resumes_on_the_other_worker_with_the_uninterrupted_weights(
    stack: Stack,
) -> None:
    api = stack.api
    folder = Path()
    checkpoint = 0
    for _ in range(5):
        op = start_training(api, STEADY, epochs=KILL_EPOCHS, checkpoint_every=2)

        def a_few_epochs(op_id: str = op["id"]) -> dict[str, Any] | None:
            seen = curve(api, op_id)
            return seen if len(seen["recorded"]) >= 4 else None

        wait_for(a_few_epochs, 90, "four epochs stored")
        running = api.op(op["id"])
        victim_id = running["worker_id"]
        victim = worker_process(stack.local, victim_id)
        survivor = next(w for w in stack.local.workers if w is not victim)
        before = samples(survivor.url)
        # Frozen first: a worker that reports its epochs a little late may have trained
        # (and checkpointed) all of them by now, which leaves attempt 2 nothing to resume.
        assert victim.process is not None
        victim.process.send_signal(signal.SIGSTOP)
        time.sleep(0.5)  # a report sent just before the freeze reaches the API
        folder = stack.local.data_home / "checkpoints" / op["id"]
        # What the frozen worker left: the newest checkpoint that verifies is where it goes on.
        # (None: the run had trained every epoch and removed its checkpoints before the
        # freeze, its reports still on the way. Then try again, as for a run caught late.)
        last = CheckpointStore(folder).latest()
        checkpoint = last.epoch if last is not None else 0
        running_now = api.op(op["id"])["status"] == "running"
        if last is not None and checkpoint < KILL_EPOCHS - 4 and running_now:
            victim.kill()
            break
        victim.process.send_signal(signal.SIGCONT)
        api.wait_status(op["id"], {"completed", "failed"}, 120)
    else:
        pytest.fail(
            "no training run could be caught with a checkpoint and epochs left in five runs"
        )
    assert running["status"] == "running" and running["attempt"] == 1

    killed_at = [p["epoch"] for p in curve(api, op["id"])["recorded"]]
    k = killed_at[-1]
    assert killed_at == list(range(1, k + 1)), "attempt 1 stored every epoch, in order"
    # Every 2nd epoch is written after its report: at most 2 behind the last stored one.
    assert k - 2 <= checkpoint and checkpoint % 2 == 0 and checkpoint >= 2

    done = api.wait_status(op["id"], {"completed", "failed"}, HEARTBEAT_TIMEOUT_S + 120)
    assert done["status"] == "completed", done["error"]
    assert done["attempt"] == 2 and done["worker_id"] != victim_id
    result = done["result"]
    assert result["resumed_from_epoch"] == checkpoint
    assert result["epochs_this_attempt"] == list(range(checkpoint + 1, KILL_EPOCHS + 1))
    assert not folder.exists(), "the completed run removed its checkpoints"

    # The stored history: attempt 1 epochs 1..k, attempt 2 from the checkpoint on; no epoch
    # before the checkpoint was trained twice, and the repeated ones came out identical.
    # (Attempt 2 first sent the checkpoint's own history, marked restored: the epochs the
    # killed worker trained after its last stored report are in the curve too.)
    stored = curve(api, op["id"])
    trained: dict[int, list[int]] = {}
    restored: dict[int, list[int]] = {}
    for point in stored["recorded"]:
        (restored if point["restored"] else trained).setdefault(point["attempt"], []).append(
            point["epoch"]
        )
    assert trained[1][: len(killed_at)] == killed_at and set(restored) == {2}
    assert trained[2] == list(range(checkpoint + 1, KILL_EPOCHS + 1))
    assert restored[2] == list(range(1, checkpoint + 1))
    first = {p["epoch"]: p for p in stored["recorded"] if p["attempt"] == 1}
    for point in stored["recorded"]:
        if point["attempt"] == 2 and point["epoch"] in first:
            for key in ("train_loss", "val_loss", "val_accuracy"):
                assert point[key] == first[point["epoch"]][key]
    assert [p["epoch"] for p in stored["points"]] == list(range(1, KILL_EPOCHS + 1))
    history = served_history(api, op["id"], "json")
    assert [(p["train_loss"], p["val_loss"], p["val_accuracy"]) for p in stored["points"]] == [
        (h["train_loss"], h["val_loss"], h["val_accuracy"]) for h in history
    ]

    # The same run never interrupted, here: the saved model has its weights to the bit, and
    # the history artifact (attempt 2's, checkpoint epochs included) is that run's.
    import torch

    data, config = engine_data(stack.local, STEADY, KILL_EPOCHS)
    whole = fit_model(data, config)
    assert_history_served(api, done, whole.history, stack.local.data_home)
    saved = ModelStore(stack.local.data_home / "models").load(STRATEGY, result["model"]["version"])
    for a, b in zip(
        saved.module.state_dict().values(), whole.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)

    # Telemetry of the worker that went on: one restore, one re-queued resume, its own
    # checkpoints and epochs, exactly.
    after = samples(survivor.url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    written = KILL_EPOCHS // 2 - checkpoint // 2
    assert delta("ktrdr_training_checkpoints_written_total") == written
    assert delta("ktrdr_training_checkpoints_restored_total") == 1
    assert delta("ktrdr_training_resumed_runs_total", reason="requeued") == 1
    assert delta("ktrdr_training_resumed_runs_total", reason="resumed") == 0
    duration = "ktrdr_training_checkpoint_duration_seconds_count"
    assert delta(duration, action="write") == written
    assert delta(duration, action="read") == 1
    assert delta("ktrdr_training_epoch_duration_seconds_count") == KILL_EPOCHS - checkpoint

    def both_span_kinds(spans: list[Any]) -> bool:
        mine = [s for s in spans if s.trace_id == done["trace_id"]]
        return {"training.resume", "training.checkpoint"} <= {s.name for s in mine}

    spans = [
        s for s in stack.receiver.wait_for(both_span_kinds, 15) if s.trace_id == done["trace_id"]
    ]
    [resume] = [s for s in spans if s.name == "training.resume"]
    assert resume.attributes["training.resumed_from_epoch"] == checkpoint
    assert resume.attributes["operation.id"] == op["id"]
    epochs_written = sorted(
        s.attributes["training.checkpoint.epoch"]
        for s in spans
        if s.name == "training.checkpoint"
        and s.attributes["training.checkpoint.epoch"] > checkpoint
    )
    assert epochs_written == list(range(checkpoint + 2, KILL_EPOCHS + 1, 2))


@pytest.fixture(scope="module")
def two_runs(stack: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    """A plain 4-epoch run and one with a 3-fold purged k-fold, both completed."""
    plain = start_training(stack.api, STEADY, epochs=4)
    purged = start_training(stack.api, PURGED, epochs=3)
    ops = tuple(
        stack.api.wait_status(o["id"], {"completed", "failed"}, 180) for o in (plain, purged)
    )
    for o in ops:
        assert o["status"] == "completed", o["error"]
    return ops[0], ops[1]


def test_purged_kfold_result_equals_the_engine_and_reports_class_balance(
    stack: Stack, two_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    plain, purged = two_runs
    result = purged["result"]
    assert result["validation"] == {"method": "purged_kfold", "folds": 3, "embargo": 12}
    data, config = engine_data(stack.local, PURGED, 3)
    expected = json.loads(json.dumps(cross_validate(data, config)))
    assert result["cross_validation"] == expected
    folds = result["cross_validation"]["folds"]
    assert [f["fold"] for f in folds] == [1, 2, 3]
    # Rows of the folds: every row before the test split is tested exactly once, and a
    # fold trains on all others but those purged or embargoed around it.
    rows = data.validation.stop
    assert sum(f["test_rows"] for f in folds) == rows
    for f in folds:
        assert f["train_rows"] + f["test_rows"] + f["purged_rows"] + f["embargoed_rows"] == rows
    assert folds[0]["embargoed_rows"] == 12 and folds[-1]["embargoed_rows"] == 0
    assert folds[0]["purged_rows"] == data.label_horizon
    balance = folds[0]["class_balance"]["test"]
    assert set(balance) == {"SELL", "HOLD", "BUY"} and abs(sum(balance.values()) - 1) < 1e-12
    counts = result["evaluation"]["label_distribution"]["train"]
    assert result["class_balance"]["train"] == {
        name: n / sum(counts.values()) for name, n in counts.items()
    }
    assert "cross_validation" not in plain["result"]
    assert plain["result"]["validation"]["method"] == "chronological"


def test_the_learning_curve_is_served_typed_with_clear_refusals(
    stack: Stack, two_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    plain, _ = two_runs
    api = stack.api
    served = curve(api, plain["id"])
    history = served_history(api, plain["id"], "json")
    assert served["epochs_total"] == 4 and served["status"] == "completed"
    assert [p["epoch"] for p in served["points"]] == [1, 2, 3, 4]
    assert [p["val_loss"] for p in served["points"]] == [h["val_loss"] for h in history]
    assert [p["attempt"] for p in served["recorded"]] == [1, 1, 1, 1]
    best = min(history, key=lambda h: h["val_loss"])["epoch"]
    assert served["best_epoch"] == best == plain["result"]["metrics"]["best_epoch"]
    assert served["latest"]["epoch"] == 4 and all(p["duration_s"] > 0 for p in served["points"])
    metrics = api.http.get(f"/operations/{plain['id']}/metrics").json()
    assert metrics["curve"] == served
    unknown = api.http.get("/operations/op_training_20200101_000000_00000000/curve")
    assert unknown.status_code == 404
    downloads = api.http.get("/operations", params={"type": "data_download"}).json()["data"]
    refused = api.http.get(f"/operations/{downloads[0]['id']}/curve")
    assert refused.status_code == 409
    assert (
        "is a data_download operation; only training runs have a learning curve"
        in (refused.json()["detail"])
    )
    assert api.http.get(f"/operations/{downloads[0]['id']}/metrics").json()["curve"] is None


def test_train_show_and_compare_on_two_real_runs(
    stack: Stack, two_runs: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    plain, purged = two_runs
    url = stack.local.api_url
    report = tmp_path / "run.html"
    shown = ktrdr("train", "show", purged["id"], "--html", str(report), url=url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    val_acc = next(line for line in lines if line.startswith("val acc"))
    history = served_history(stack.api, purged["id"], "json")
    assert val_acc.endswith(f"{history[0]['val_accuracy']:.1%} → {history[-1]['val_accuracy']:.1%}")
    assert len(val_acc.split()[2]) == 3, "one block per epoch"
    assert f"best (lowest validation loss) epoch {purged['result']['metrics']['best_epoch']}" in (
        shown.stdout
    )
    page = report.read_text()
    assert 'id="curves"' in page and 'id="confusion"' in page and "Purged k-fold (3 folds" in page
    matrix = purged["result"]["evaluation"]["confusion_matrix"]["rows_true_columns_predicted"]
    assert json.dumps(matrix).replace(" ", "") in page.replace(" ", "")

    compared = ktrdr("train", "compare", plain["id"], purged["id"], url=url)
    assert compared.returncode == 0, compared.stderr
    out = compared.stdout
    assert plain["id"] in out and purged["id"] in out
    validation_row = next(line for line in out.splitlines() if "│ validation " in line)
    assert "chronological" in validation_row and "purged_kfold" in validation_row
    accuracy_row = next(line for line in out.splitlines() if "test accuracy" in line)
    for op in (plain, purged):
        assert f"{op['result']['metrics']['test_accuracy']:.1%}" in accuracy_row
    train_range = plain["result"]["model"]["date_ranges"]["train"]
    assert f"{train_range['start'][:10]}..{train_range['end'][:10]}" in out
    as_json = json.loads(
        ktrdr("train", "compare", plain["id"], purged["id"], "--json", url=url).stdout
    )
    assert as_json["rows"]["epochs run"] == ["4", "3"]
    one = ktrdr("train", "compare", plain["id"], url=url)
    assert one.returncode != 0 and "at least two training runs" in one.stdout


def test_train_run_shows_the_newest_validation_metric_beside_its_bar(
    stack: Stack, tmp_path: Path
) -> None:
    strategy = tmp_path / "steady.yaml"
    strategy.write_text(STEADY, encoding="utf-8")
    run = ktrdr(
        "train", "run", str(strategy), "--symbol", SYMBOL, "--timeframe", "1h",
        "--start", WINDOW["start"], "--end", WINDOW["end"], "--epochs", "5",
        url=stack.local.api_url, timeout_s=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    op_id = next(line.split()[1] for line in run.stdout.splitlines() if line.startswith("queued"))
    last = curve(stack.api, op_id)["points"][-1]
    assert last["epoch"] == 5
    shown = f"epoch 5/5 val loss {last['val_loss']:.4f} acc {last['val_accuracy']:.1%}"
    [bar] = [line for line in run.stdout.splitlines() if "100.0%" in line]
    assert shown in bar, run.stdout


def test_finished_runs_are_exported_to_mlflow(
    stack: Stack, two_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    import os

    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    plain, purged = two_runs
    client = MlflowClient(tracking_uri=stack.mlruns.as_uri())
    for op in (plain, purged):
        exported = op["result"]["mlflow"]
        assert "error" not in exported, exported
        run = client.get_run(exported["run_id"])
        assert run.data.tags["ktrdr.operation_id"] == op["id"]
        history = served_history(stack.api, op["id"], "parquet").to_pylist()
        assert run.data.params["training.epochs"] == str(len(history))
        losses = client.get_metric_history(exported["run_id"], "val_loss")
        assert [(m.step, m.value) for m in sorted(losses, key=lambda m: m.step)] == [
            (h["epoch"], h["val_loss"]) for h in history
        ]
        assert run.data.metrics["test_accuracy"] == op["result"]["metrics"]["test_accuracy"]
    assert (
        client.get_run(purged["result"]["mlflow"]["run_id"]).data.metrics["cv_mean_accuracy"]
        == purged["result"]["cross_validation"]["mean_accuracy"]
    )
