"""Several hosts simulated with network namespaces: the object store (moto's server), the
API and two workers each in a namespace of its own, reaching each other only over veth
pairs on a bridge. The workers have separate data homes and share only the object store
(the namespaces share the machine's filesystem, but nothing in the run relies on that:
the workers' homes are distinct folders and the API never reads theirs).

A backtest of bars that one worker downloaded equals the one-host result; a worker killed
with -9 has its operation re-queued to the worker on the other host; Prometheus service
discovery lists each worker at the address of its own host. Skips, saying why, where
namespaces cannot be created (not root, no `ip netns`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.strategy import load_strategy
from ktrdr.engine.strategy.paths import strategy_document
from ktrdr.local_stack import LocalStack, ManagedProcess
from ktrdr.worker.runners.backtest import MAX_STORED_EQUITY_POINTS
from tests.integration.test_shared_store import SYMBOL, WINDOW, _backtest, _download, one_host_bars
from tests.support.netns import Hosts, unavailable_reason
from tests.support.s3 import S3Server
from tests.support.stack import FAST_LIVENESS, Api, wait_for

pytestmark = pytest.mark.integration

API_PORT, WORKER_PORT, S3_PORT = 8000, 5003, 9000


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    made = Hosts()
    try:
        yield made
    finally:
        made.close()


def _process(hosts: Hosts, host: str, args: list[str], env: dict[str, str], logs: Path) -> Any:
    address = hosts.addresses[host]
    port = API_PORT if host == "api" else WORKER_PORT
    process = ManagedProcess(
        f"{host}", f"http://{address}:{port}", [*args, "--host", address, "--port", str(port)],
        env, logs / f"{host}.log", command_prefix=hosts.prefix(host),
    )  # fmt: skip
    process.start()
    return process


@pytest.mark.timeout(180)
def test_api_store_and_workers_on_separate_hosts(hosts: Hosts, tmp_path: Path) -> None:
    started = time.monotonic()
    for host in ("store", "api", "w1", "w2"):
        hosts.add(host)
    server = S3Server(tmp_path, host=hosts.addresses["store"], port=S3_PORT)
    server.start(prefix=hosts.prefix("store"))
    processes: list[ManagedProcess] = []
    api: Api | None = None
    try:
        env = {**os.environ, **FAST_LIVENESS, **server.env(server.new_bucket())}
        api_url = f"http://{hosts.addresses['api']}:{API_PORT}"
        api_env = {**env, "KTRDR_DATA_HOME": str(tmp_path / "api")}
        api_process = _process(hosts, "api", ["api"], api_env, tmp_path / "logs")
        processes.append(api_process)
        LocalStack._wait_ready(api_process, f"{api_url}/api/v1/health", 60)
        for host in ("w1", "w2"):
            address = hosts.addresses[host]
            worker_env = {
                **env,
                "KTRDR_DATA_HOME": str(tmp_path / host),  # a home of its own
                "KTRDR_API_URL": api_url,
                "KTRDR_WORKER_ADVERTISE_URL": f"http://{address}:{WORKER_PORT}",
            }
            processes.append(_process(hosts, host, ["worker"], worker_env, tmp_path / "logs"))
        api = Api(api_url)
        wait_for(lambda: len(api.workers()) == 2, 60, "both workers to register", 0.2)
        by_host = {w["url"]: w["id"] for w in api.workers()}
        assert set(by_host) == {f"http://{hosts.addresses[h]}:{WORKER_PORT}" for h in ("w1", "w2")}
        targets = sorted(g["targets"][0] for g in api.http.get("/sd/workers").json())
        assert targets == sorted(f"{hosts.addresses[h]}:{WORKER_PORT}" for h in ("w1", "w2"))

        _download(api, SYMBOL)
        op = _backtest(api, "rsi_fuzzy")
        assert op["status"] == "completed", op["error"]
        strategy = load_strategy("rsi_fuzzy")
        strategy = strategy.model_copy(
            update={"data": strategy.data.model_copy(update={"symbol": SYMBOL, "timeframe": "1h"})}
        )
        bars = one_host_bars(tmp_path).load(SYMBOL, "1h", WINDOW["start"], WINDOW["end"],
                                            warmup_bars=strategy.warmup_bars())  # fmt: skip
        expected = run_backtest(strategy, bars, capital=50_000.0, **WINDOW).to_dict(
            max_equity_points=MAX_STORED_EQUITY_POINTS
        )
        expected.update(
            capital=50_000.0, warnings=[], effective_strategy=strategy_document(strategy)
        )
        stored = api.http.get(f"/operations/{op['id']}/results").json()
        stored.pop("artifacts")
        assert stored == json.loads(json.dumps(expected))

        long = api.start_diagnostic(steps=40, step_ms=100)
        running = api.wait_status(long["id"], {"running"}, 15)
        wait_for(lambda: api.op(long["id"])["progress"]["percent"] > 0, 10, "progress")
        victim = next(p for p in processes[1:] if by_host[p.url] == running["worker_id"])
        victim.kill()
        done = api.wait_status(long["id"], {"completed", "failed"}, 30)
        assert done["status"] == "completed"
        assert done["attempt"] == 2 and done["worker_id"] != running["worker_id"]
        assert time.monotonic() - started < 120
    finally:
        if api is not None:
            api.http.close()
        for process in reversed(processes):
            process.kill()
        server.stop()
