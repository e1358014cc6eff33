"""Workers that share nothing but an object store (a real S3-compatible server, moto's):
each has a data home of its own, as on separate hosts.

Worker A downloads and trains, B backtests, C trains too: a backtest on B of A's bars
equals the one-host result, a model trained on A or C drives a backtest on B, a training
killed with -9 goes on where it stopped on the other trainer (its checkpoints are in the
store), and a damaged object or an unreachable store fails the job with the object's name
or the store's, never stuck.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ktrdr.artifacts import artifact_store
from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import DataStore, generate_synthetic_bars
from ktrdr.engine.data.calendars import market_of
from ktrdr.engine.model_choice import pin_model_version
from ktrdr.engine.strategy import load_strategy
from ktrdr.engine.strategy.paths import strategy_document
from ktrdr.engine.training import ModelStore
from ktrdr.local_stack import LocalStack
from ktrdr.worker.runners.backtest import MAX_STORED_EQUITY_POINTS
from tests.integration.test_training_operations import pinned_text, strategy_for_run
from tests.support.history import served_history
from tests.support.s3 import S3Server
from tests.support.stack import Api, StackFactory, free_port, wait_for

pytestmark = pytest.mark.integration

SYMBOL, BARS, SEED = "EURUSD", 4000, 3
WINDOW = {"start": "2020-02-03T00:00:00+00:00", "end": "2020-05-01T00:00:00+00:00"}
KINDS = ('["data_download","training"]', '["backtesting"]', '["training"]')


@dataclass
class Shared:
    local: LocalStack
    api: Api
    env: dict[str, str]
    server: S3Server
    a: str  # worker ids
    b: str
    c: str

    @property
    def bucket(self) -> str:
        return self.env["KTRDR_ARTIFACTS_URL"].split("/")[2]


def _worker_id(stack: LocalStack, index: int) -> str:
    port = stack.worker_ports[index]
    return f"127.0.0.1-{port}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Shared]:
    env = s3_server.env(s3_server.new_bucket())
    factory = StackFactory(tmp_path_factory.mktemp("shared"))
    try:
        local, api = factory.start(
            workers=3, env=env, separate_homes=True,
            worker_env=[{"KTRDR_KINDS": k} for k in KINDS],
        )  # fmt: skip
        shared = Shared(local, api, env, s3_server, *(_worker_id(local, i) for i in range(3)))
        done = _download(api, SYMBOL)
        assert done["worker_id"] == shared.a
        _catalog_names_the_object(shared, done)
        yield shared
    finally:
        factory.stop_all()


def _catalog_names_the_object(shared: Shared, done: dict[str, Any]) -> None:
    key = f"artifacts/bars/{SYMBOL}/1h.parquet"
    head = shared.server.client().head_object(Bucket=shared.bucket, Key=key)
    ref = done["result"]["dataset"]["artifact"]
    assert ref == {"key": f"bars/{SYMBOL}/1h.parquet", "sha256": head["Metadata"]["sha256"],
                   "size_bytes": head["ContentLength"]}  # fmt: skip
    (listed,) = shared.api.http.get("/data").json()["data"]
    assert listed["artifact"] == ref and listed["rows"] == BARS


def _download(api: Api, symbol: str) -> dict[str, Any]:
    body = {"symbol": symbol, "timeframe": "1h", "provider": "synthetic", "bars": BARS,
            "seed": SEED}  # fmt: skip
    response = api.http.post("/data/downloads/start", json=body)
    assert response.status_code == 202, response.text
    done = api.wait_status(response.json()["id"], {"completed", "failed"}, 60)
    assert done["status"] == "completed", done["error"]
    return done


def _backtest(api: Api, strategy: str, symbol: str = SYMBOL) -> dict[str, Any]:
    body = {"strategy": strategy, "symbol": symbol, "timeframe": "1h", "capital": 50_000,
            **WINDOW}  # fmt: skip
    response = api.http.post("/backtests/start", json=body)
    assert response.status_code == 202, response.text
    return api.wait_status(response.json()["id"], {"completed", "failed"}, 90)


def one_host_bars(tmp_path: Path) -> DataStore:
    """The bars a one-host download makes (same generator, same seed), in a store here."""
    store = DataStore(tmp_path / "one-host")
    bars = generate_synthetic_bars("1h", BARS, seed=SEED, start="2020-01-06",
                                   market=market_of(SYMBOL))  # fmt: skip
    store.save(SYMBOL, "1h", bars, source="synthetic")
    return store


def test_a_backtest_on_b_of_bars_downloaded_by_a_equals_the_one_host_result(
    shared: Shared, tmp_path: Path
) -> None:
    name = "rsi_fuzzy"
    op = _backtest(shared.api, name)
    assert op["status"] == "completed", op["error"]
    assert op["worker_id"] == shared.b
    stored = shared.api.http.get(f"/operations/{op['id']}/results").json()
    stored.pop("artifacts")
    strategy = load_strategy(name)
    strategy = strategy.model_copy(
        update={"data": strategy.data.model_copy(update={"symbol": SYMBOL, "timeframe": "1h"})}
    )
    bars = one_host_bars(tmp_path).load(SYMBOL, "1h", WINDOW["start"], WINDOW["end"],
                                        warmup_bars=strategy.warmup_bars())  # fmt: skip
    expected = run_backtest(strategy, bars, capital=50_000.0, **WINDOW).to_dict(
        max_equity_points=MAX_STORED_EQUITY_POINTS
    )
    expected.update(capital=50_000.0, warnings=[], effective_strategy=strategy_document(strategy))
    assert stored == json.loads(json.dumps(expected))
    # Nothing shared on disk: A wrote to the store, B read it into its own cache.
    home_a = shared.local.worker_home(shared.local.worker_ports[0])
    home_b = shared.local.worker_home(shared.local.worker_ports[1])
    assert not (home_a / "data").exists() and not (home_b / "data").exists()
    cached = home_b / "cache" / "bars" / SYMBOL / "1h.parquet"
    assert cached.read_bytes() == (home_a / "cache" / "bars" / SYMBOL / "1h.parquet").read_bytes()


def _train(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {"strategy": "fuzzy_nn", "symbol": SYMBOL, "timeframe": "1h", "epochs": 3,
            "start": "2020-02-01T00:00:00+00:00", "end": "2020-06-30T00:00:00+00:00",
            **overrides}  # fmt: skip
    response = api.http.post("/training/start", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


@pytest.mark.timeout(240)
def test_a_model_trained_on_one_worker_drives_a_backtest_on_another(
    shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = shared.api.wait_status(_train(shared.api)["id"], {"completed", "failed"}, 120)
    assert trained["status"] == "completed", trained["error"]
    assert trained["worker_id"] in {shared.a, shared.c}
    version = trained["result"]["model"]["version"]
    op = _backtest(shared.api, pinned_text(version))
    assert op["status"] == "completed", op["error"]
    assert op["worker_id"] == shared.b
    stored = shared.api.http.get(f"/operations/{op['id']}/results").json()
    assert (stored["model"]["name"], stored["model"]["version"]) == ("fuzzy_nn", version)

    # The engine run here, with the model as the store holds it.
    for name, value in shared.env.items():
        monkeypatch.setenv(name, value)
    store = artifact_store(tmp_path, shared.env["KTRDR_ARTIFACTS_URL"])
    for key in store.list("models/fuzzy_nn"):
        store.fetch(key)
    models = ModelStore(tmp_path / "cache" / "models")
    strategy = pin_model_version(strategy_for_run(), version)
    bars = one_host_bars(tmp_path).load(SYMBOL, "1h", WINDOW["start"], WINDOW["end"],
                                        warmup_bars=strategy.warmup_bars())  # fmt: skip
    result = run_backtest(strategy, bars, capital=50_000.0, models=models, **WINDOW)
    expected = json.loads(json.dumps(result.to_dict(max_equity_points=MAX_STORED_EQUITY_POINTS)))
    for part in ("statistics", "trades", "equity_curve"):
        assert stored[part] == expected[part], part


def test_damaged_bars_fail_the_backtest_naming_the_object(shared: Shared) -> None:
    _download(shared.api, "GBPUSD")
    client = shared.server.client()
    key = "artifacts/bars/GBPUSD/1h.parquet"
    original = client.head_object(Bucket=shared.bucket, Key=key)["Metadata"]
    # Bytes changed behind the store's back (a bad disk, a stray writer): metadata kept.
    client.put_object(Bucket=shared.bucket, Key=key, Body=b"PAR1 garbage", Metadata=original)
    op = _backtest(shared.api, "rsi_fuzzy", symbol="GBPUSD")
    assert op["status"] == "failed"
    assert (
        "ArtifactCorrupt: artifact 'bars/GBPUSD/1h.parquet' does not match its checksum"
        in (op["error"])
    )
    assert hashlib.sha256(b"PAR1 garbage").hexdigest()[:12] in op["error"]
    # Deleting the series removes its object from the store too.
    deleted = shared.api.http.delete("/data/GBPUSD/1h")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["bars_removed"] is True
    listed = client.list_objects_v2(Bucket=shared.bucket, Prefix="artifacts/bars/GBPUSD/")
    assert listed["KeyCount"] == 0


@pytest.mark.timeout(300)  # the module's stack may be started inside it
def test_a_training_killed_on_one_host_resumes_from_its_checkpoint_on_another(
    shared: Shared,
) -> None:
    api = shared.api
    steady = pinned_text(1).replace("early_stopping_patience: 5", "early_stopping_patience: 0")
    op = _train(api, strategy=steady, epochs=60, checkpoint_every=1)

    def a_few_epochs_in() -> dict[str, Any] | None:
        current = api.op(op["id"])
        done = current["progress"].get("items_done") or 0
        return current if current["progress"]["phase"] == "training" and done >= 3 else None

    running = wait_for(a_few_epochs_in, 90, "the training to pass its third epoch")
    victim_id = running["worker_id"]
    index = [shared.a, shared.b, shared.c].index(victim_id)
    victim = next(
        w for w in shared.local.workers if w.url.endswith(f":{shared.local.worker_ports[index]}")
    )
    victim.kill()
    done = api.wait_status(op["id"], {"completed", "failed"}, 180)
    assert done["status"] == "completed", done["error"]
    assert done["attempt"] == 2 and done["worker_id"] != victim_id
    # The checkpoint of epoch 2 or later, written on the killed worker's host (a fresh
    # start would say 0).
    assert done["result"]["resumed_from_epoch"] >= 2, "went on from the store's checkpoint"
    assert (
        shared.server.client()
        .list_objects_v2(Bucket=shared.bucket, Prefix=f"artifacts/checkpoints/{op['id']}/")
        .get("KeyCount")
        == 0
    ), "a completed run removes its checkpoints from the store"
    # Its history artifact is an object of the store (no shared disk), served from there.
    ref = done["result"]["artifacts"]["history"]
    head = shared.server.client().head_object(Bucket=shared.bucket, Key=f"artifacts/{ref['key']}")
    assert head["ContentLength"] == ref["size_bytes"]
    history = served_history(api, op["id"], "parquet")
    assert history.column("epoch").to_pylist() == list(range(1, 61))
    assert [
        p["val_loss"] for p in api.http.get(f"/operations/{op['id']}/curve").json()["points"]
    ] == (history.column("val_loss").to_pylist())
    victim.start()  # a restart with the same id, port and (empty of bars) home works on
    shared.local.wait_for_workers(3)
    again = _backtest(api, "rsi_fuzzy")
    assert again["status"] == "completed", again["error"]


def test_an_unreachable_store_fails_the_job_and_the_upload_with_the_reason(
    stack_factory: StackFactory, s3_server: S3Server
) -> None:
    env = {**s3_server.env("nowhere"), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    _, api = stack_factory.start(workers=1, env=env, separate_homes=True)
    response = api.http.post(
        "/data/downloads/start",
        json={"symbol": SYMBOL, "timeframe": "1h", "provider": "synthetic", "bars": 500},
    )
    done = api.wait_status(response.json()["id"], {"completed", "failed"}, 60)
    assert done["status"] == "failed"
    assert (
        "artifact store s3://nowhere/artifacts could not look up 'bars/EURUSD/1h.parquet'"
        in done["error"]
    )
    upload = api.http.post("/data/uploads", content=b"timestamp,open\n")
    assert upload.status_code == 503
    assert "could not write 'uploads/" in upload.json()["detail"]
