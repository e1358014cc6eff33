"""`DELETE /data/{symbol}/{timeframe}`, `ktrdr data delete` and `KtrdrClient.delete_data`
on the real stack (API + a worker as processes): deleted bars are gone from disk and from
`data list`; unknown data is a 404 that says what is stored; data in use is a 409."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ktrdr.client import Conflict, KtrdrClient, NotFound
from ktrdr.local_stack import LocalStack
from tests.support.cli import ktrdr
from tests.support.stack import Api, StackFactory


@dataclass
class Stack:
    local: LocalStack
    api: Api


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    factory = StackFactory(tmp_path_factory.mktemp("delete"))
    local, api = factory.start(workers=1)
    for symbol in ("DELME", "KEEP", "BUSY", "CLIME"):
        op = api.http.post(
            "/data/downloads/start", json={"symbol": symbol, "timeframe": "1h", "bars": 300}
        ).json()
        assert api.wait_status(op["id"], {"completed"}, 60)["status"] == "completed"
    yield Stack(local, api)
    factory.stop_all()


def listed(api: Api) -> list[tuple[str, str]]:
    return [(d["symbol"], d["timeframe"]) for d in api.http.get("/data").json()["data"]]


def test_delete_removes_the_bars_and_the_catalog_entry(stack: Stack) -> None:
    bars = stack.local.data_home / "data" / "DELME" / "1h.parquet"
    assert bars.is_file()
    response = stack.api.http.delete("/data/delme/1h")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["symbol"], body["timeframe"], body["rows"], body["bars_removed"]) == (
        "DELME", "1h", 300, True,
    )  # fmt: skip
    assert not bars.exists() and list(bars.parent.iterdir()) == []
    assert ("DELME", "1h") not in listed(stack.api) and ("KEEP", "1h") in listed(stack.api)
    # Nothing can be queued on it any more: the submission says how to get data again.
    refused = stack.api.http.post("/backtests/start", json={"strategy": "sma_crossover",
                                                           "symbol": "DELME"})  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("no data for DELME 1h yet: download it first")


def test_unknown_data_is_404_saying_what_is_stored(stack: Stack) -> None:
    wrong_tf = stack.api.http.delete("/data/KEEP/4h")
    assert wrong_tf.status_code == 404
    assert wrong_tf.json()["detail"] == (
        "no data for KEEP 4h in the catalog; KEEP is stored for 1h; "
        "`ktrdr data list` shows every stored series"
    )
    typo = stack.api.http.delete("/data/KEPP/1h")
    assert typo.status_code == 404
    assert typo.json()["detail"].startswith("no data for KEPP 1h in the catalog (did you mean")
    bad_tf = stack.api.http.delete("/data/KEEP/1H")
    assert bad_tf.status_code == 422
    assert "unknown timeframe '1H' (did you mean '1h'?)" in bad_tf.json()["detail"]
    with KtrdrClient(stack.local.api_url) as client, pytest.raises(NotFound) as missing:
        client.delete_data("KEEP", "4h")
    assert missing.value.message == wrong_tf.json()["detail"]
    assert ("KEEP", "1h") in listed(stack.api)


def test_refused_with_409_while_an_operation_uses_the_data(stack: Stack) -> None:
    api = stack.api
    # The only worker is busy, so the backtest on BUSY waits in the queue.
    blocker = api.start_diagnostic(steps=200, step_ms=100)
    api.wait_status(blocker["id"], {"running"}, 30)
    queued = api.http.post("/backtests/start", json={"strategy": "sma_crossover",
                                                     "symbol": "BUSY"}).json()  # fmt: skip
    assert queued["status"] == "pending"
    refused = api.http.delete("/data/BUSY/1h")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"BUSY 1h is in use by {queued['id']} (pending backtesting); wait for them to finish "
        "or cancel them (`ktrdr ops cancel ID`), then delete again"
    )
    with KtrdrClient(stack.local.api_url) as client:
        with pytest.raises(Conflict) as conflict:
            client.delete_data("BUSY", "1h")
        assert conflict.value.message == refused.json()["detail"]
        assert (stack.local.data_home / "data" / "BUSY" / "1h.parquet").is_file()
        assert ("BUSY", "1h") in listed(api)
        client.cancel(queued["id"])
        # A universe that reads the series holds it as well.
        universe = api.http.post("/backtests/start", json={"strategy": "sma_crossover",
                                 "symbols": ["KEEP", "BUSY"]}).json()  # fmt: skip
        held = api.http.delete("/data/BUSY/1h")
        assert held.status_code == 409 and f"in use by {universe['id']}" in held.json()["detail"]
        client.cancel(universe["id"])
        deleted = client.delete_data("busy", "1h")
        client.cancel(blocker["id"])
    assert (deleted.symbol, deleted.timeframe, deleted.rows, deleted.bars_removed) == (
        "BUSY", "1h", 300, True,
    )  # fmt: skip
    assert ("BUSY", "1h") not in listed(api)


def test_cli_asks_first_and_deletes_with_yes(stack: Stack) -> None:
    url = stack.local.api_url
    declined = ktrdr("data", "delete", "CLIME", "1h", url=url, input_text="n\n")
    assert declined.returncode == 3, declined.stderr
    assert "nothing deleted" in declined.stdout
    assert ("CLIME", "1h") in listed(stack.api)
    done = ktrdr("data", "delete", "CLIME", "1h", "--yes", url=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "deleted CLIME 1h: 300 bars"
    after = json.loads(ktrdr("data", "list", "--json", url=url).stdout)
    assert ("CLIME", "1h") not in [(d["symbol"], d["timeframe"]) for d in after["data"]]
    again = ktrdr("data", "delete", "CLIME", "1h", "--yes", url=url)
    assert again.returncode == 3
    assert "no data for CLIME 1h in the catalog" in again.stderr + again.stdout
