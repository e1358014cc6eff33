"""Issue 10.9: the Alertmanager config routes KTRDR alerts and inhibits worker alerts
while the API is down.

``amtool check-config`` checks the file and ``amtool config routes test`` the routing;
inhibition (which neither amtool nor promtool can evaluate) runs on a REAL Alertmanager
(Debian's ``prometheus-alertmanager``, installed by ``./run test``): the test posts alerts
with the labels the rules give them (promtool proves those labels in
deploy/prometheus/tests/ktrdr-alerts.test.yml) and reads back which ones are inhibited.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import DEPLOY, RULE_FILES, load_yaml
from tests.support.stack import free_port, wait_for

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not found: install Debian's `prometheus-alertmanager` (./run test does)"
        )
    return path


def test_amtool_check_config() -> None:
    done = subprocess.run(
        [_tool("amtool"), "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            {"severity": "critical", "component": "api", "alertname": "KtrdrServiceDown"},
            "ktrdr-pager",
        ),
        ({"severity": "critical", "component": "workers"}, "ktrdr-pager"),
        ({"severity": "warning", "component": "workers"}, "ktrdr-team"),
        ({"severity": "warning", "component": "operations"}, "ktrdr-research"),
    ],
)
def test_routes(labels: dict[str, str], receiver: str) -> None:
    done = subprocess.run(
        [
            _tool("amtool"), "config", "routes", "test", f"--config.file={CONFIG}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == receiver


def test_every_alert_has_a_component_the_config_knows() -> None:
    components = set()
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    components.add(rule["labels"]["component"])
    assert components == {
        "operations",
        "workers",
        '{{ if eq $labels.job "ktrdr-api" }}api{{ else }}workers{{ end }}',
    }


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[httpx.Client]:
    binary = _tool("prometheus-alertmanager")
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={CONFIG}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip port: one instance, no peers
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v2", timeout=10)

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return client.get("/status").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, 20, "alertmanager to answer", interval_s=0.1)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def _post(client: httpx.Client, *alerts: dict[str, str]) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": labels,
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=10)).isoformat(),
        }
        for labels in alerts
    ]
    response = client.post("/alerts", json=body)
    assert response.status_code == 200, response.text


def _states(client: httpx.Client) -> dict[str, dict[str, Any]]:
    alerts = client.get("/alerts").json()
    return {f"{a['labels']['alertname']}/{a['labels']['job']}": a["status"] for a in alerts}


API_DOWN = {"alertname": "KtrdrServiceDown", "job": "ktrdr-api", "instance": "api:8000",
            "severity": "critical", "component": "api"}  # fmt: skip
WORKER_DOWN = {"alertname": "KtrdrServiceDown", "job": "ktrdr-workers", "instance": "w1:5003",
               "severity": "critical", "component": "workers"}  # fmt: skip
STUCK = {"alertname": "KtrdrOperationQueuedTooLong", "job": "ktrdr-api", "type": "training",
         "severity": "warning", "component": "workers"}  # fmt: skip
FAILING = {"alertname": "KtrdrOperationFailureRatioHigh", "job": "ktrdr-api",
           "type": "backtesting", "severity": "warning", "component": "operations"}  # fmt: skip


def test_worker_alerts_are_inhibited_while_the_api_is_down(alertmanager: httpx.Client) -> None:
    # The API is up: a worker being down is news.
    _post(alertmanager, WORKER_DOWN, STUCK, FAILING)
    wait_for(lambda: len(_states(alertmanager)) == 3, 10, "three alerts")
    assert {k: s["state"] for k, s in _states(alertmanager).items()} == {
        "KtrdrServiceDown/ktrdr-workers": "active",
        "KtrdrOperationQueuedTooLong/ktrdr-api": "active",
        "KtrdrOperationFailureRatioHigh/ktrdr-api": "active",
    }
    # The API goes down: only its own alert (and the research outcome) still notify.
    _post(alertmanager, API_DOWN)

    def inhibited() -> dict[str, dict[str, Any]] | None:
        states = _states(alertmanager)
        return states if states["KtrdrServiceDown/ktrdr-workers"]["state"] == "suppressed" else None

    states = wait_for(inhibited, 10, "the worker alert to be inhibited")
    assert {k: s["state"] for k, s in states.items()} == {
        "KtrdrServiceDown/ktrdr-api": "active",
        "KtrdrServiceDown/ktrdr-workers": "suppressed",
        "KtrdrOperationQueuedTooLong/ktrdr-api": "suppressed",
        "KtrdrOperationFailureRatioHigh/ktrdr-api": "active",
    }
    assert states["KtrdrServiceDown/ktrdr-workers"]["inhibitedBy"]
