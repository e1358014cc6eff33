"""Issue 17.3: the Prometheus and Grafana files follow the ports `ktrdr up` really uses.

`ktrdr up` (the real CLI, as a process) on non-default ports writes a Prometheus config;
Debian's Prometheus runs on exactly that file and must find every target up (the API and
both workers, discovered through the API) and load the repository's rules. The committed
prometheus.local.yml is the same generator's output for the default ports, and the local
Grafana provisioning is the compose one with only URLs and the dashboards path changed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr.dashboards.constants import API_JOB, WORKERS_JOB
from ktrdr.local_observability import prometheus_config, write_local_observability
from tests.deploy.conftest import (
    DASHBOARD_PROVIDERS_FILE,
    DASHBOARDS_DIR,
    DATASOURCES_FILE,
    PROMETHEUS_DIR,
    RULE_FILES,
    load_yaml,
)
from tests.support.stack import free_port, wait_for


def test_committed_local_config_is_the_generated_one_for_default_ports() -> None:
    committed = load_yaml(PROMETHEUS_DIR / "prometheus.local.yml")
    assert committed == prometheus_config("localhost:8000", ["rules/*.yml"])


def test_local_grafana_provisioning_differs_from_compose_only_in_urls_and_path(
    tmp_path: Path,
) -> None:
    files = write_local_observability(
        tmp_path, "127.0.0.1:18000", prometheus_url="http://127.0.0.1:19090",
        jaeger_url="http://jaeger.example:16686",
    )  # fmt: skip
    assert files.grafana_provisioning is not None
    local = load_yaml(files.grafana_provisioning / "datasources" / "datasources.yml")
    compose = load_yaml(DATASOURCES_FILE)
    assert [s["url"] for s in local["datasources"]] == [
        "http://127.0.0.1:19090",
        "http://jaeger.example:16686",
    ]
    for ours, theirs in zip(local["datasources"], compose["datasources"], strict=True):
        assert {**ours, "url": None} == {**theirs, "url": None}
    assert local["deleteDatasources"] == compose["deleteDatasources"]
    (provider,) = load_yaml(files.grafana_provisioning / "dashboards" / "dashboards.yml")[
        "providers"
    ]
    (compose_provider,) = load_yaml(DASHBOARD_PROVIDERS_FILE)["providers"]
    dashboards = Path(provider["options"]["path"])
    assert dashboards.is_absolute() and dashboards == DASHBOARDS_DIR.resolve()
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "operations.json",
        "research.json",
        "system-overview.json",
        "worker-status.json",
    ]
    assert {**provider, "options": None} == {**compose_provider, "options": None}


def free_port_pair() -> int:
    """A port p with p + 1 free too (`ktrdr up` numbers its workers from one port)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports")


@pytest.fixture
def ktrdr_up(tmp_path: Path) -> Iterator[tuple[int, list[int], Path]]:
    api_port, worker_port = free_port(), free_port_pair()
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ktrdr.cli.main", "up", "--workers", "2",
         "--api-port", str(api_port), "--worker-port", str(worker_port),
         "--data-home", str(home)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError((tmp_path / "up.log").read_text())
            try:
                health = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health", timeout=2)
                return bool(health.json()["workers_online"] == 2)
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, "ktrdr up with two workers", interval_s=0.2)
        yield api_port, [worker_port, worker_port + 1], home
    finally:
        # `ktrdr up` stops its API and workers on SIGTERM (they run in their own sessions).
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            raise


@pytest.mark.prometheus
@pytest.mark.integration
def test_prometheus_on_the_config_ktrdr_up_wrote_finds_every_target_up(
    ktrdr_up: tuple[int, list[int], Path], tmp_path: Path
) -> None:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).is_file():
        pytest.skip("prometheus not installed: Debian's `prometheus` package (./run test)")
    api_port, worker_ports, home = ktrdr_up
    config = home / "observability" / "prometheus.yml"
    text = config.read_text()
    assert "localhost:8000" not in text and f"127.0.0.1:{api_port}" in text
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        prometheus = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--enable-feature=exemplar-storage"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=5) as http:

            def targets_up() -> dict[str, set[str]] | None:
                if prometheus.poll() is not None:
                    raise AssertionError(log_path.read_text()[-3000:])
                try:
                    active: list[dict[str, Any]] = http.get("/targets").json()["data"][
                        "activeTargets"
                    ]
                except (httpx.HTTPError, ValueError, KeyError):
                    return None
                by_job: dict[str, set[str]] = {}
                for target in active:
                    if target["health"] != "up":
                        return None
                    by_job.setdefault(target["labels"]["job"], set()).add(
                        target["labels"]["instance"]
                    )
                return by_job if len(by_job.get(WORKERS_JOB, ())) == 2 else None

            found = wait_for(targets_up, 40, "every target up", interval_s=0.5)
            assert found == {
                API_JOB: {f"127.0.0.1:{api_port}"},
                WORKERS_JOB: {f"127.0.0.1:{p}" for p in worker_ports},
            }
            groups = http.get("/rules").json()["data"]["groups"]
            assert {Path(g["file"]).name for g in groups} == {p.name for p in RULE_FILES}
    finally:
        prometheus.terminate()
        prometheus.wait(15)
