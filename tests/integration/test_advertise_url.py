"""KTRDR_WORKER_ADVERTISE_URL: the address a worker on another host is reached by.

A real worker process binds 127.0.0.1 but advertises ``http://localhost:PORT`` (another
name for it, as a VM's DNS name or a Service would be): the registry keeps that URL, the
dispatcher reaches the worker through it, and Prometheus service discovery lists it.
"""

from __future__ import annotations

import pytest

from ktrdr.config import WorkerSettings
from tests.support.stack import StackFactory, free_port

pytestmark = pytest.mark.integration


def test_the_advertised_url_is_what_the_api_and_prometheus_use(
    stack_factory: StackFactory,
) -> None:
    stack, api = stack_factory.start(workers=0)
    port = free_port()
    stack.worker_env[port] = {"KTRDR_WORKER_ADVERTISE_URL": f"http://localhost:{port}/"}
    stack.start_worker(port)
    stack.wait_for_workers(1)
    (worker,) = api.workers()
    assert worker["url"] == f"http://localhost:{port}"
    assert worker["id"] == f"127.0.0.1-{port}"  # the id still comes from where it binds
    sd = api.http.get("/sd/workers").json()
    assert [g["targets"] for g in sd] == [[f"localhost:{port}"]]
    op = api.start_diagnostic(steps=1, step_ms=1)
    done = api.wait_status(op["id"], {"completed", "failed"}, 20)
    assert done["status"] == "completed" and done["worker_id"] == worker["id"]


def test_an_advertised_url_that_no_peer_could_use_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KTRDR_WORKER_ADVERTISE_URL", "worker-7:5003")
    with pytest.raises(ValueError, match="use http://HOST:PORT"):
        WorkerSettings()
    monkeypatch.setenv("KTRDR_WORKER_ADVERTISE_URL", "https://w7.example.net:8443")
    assert WorkerSettings().resolved_worker_url() == "https://w7.example.net:8443"
    monkeypatch.delenv("KTRDR_WORKER_ADVERTISE_URL")
    monkeypatch.setenv("KTRDR_WORKER_URL", "http://old-name:5003")  # the older variable
    assert WorkerSettings().resolved_worker_url() == "http://old-name:5003"
