"""The worker's final report over lean HTTP against a real HTTP/1.1 server: each answer
means what it meant over httpx (the reporter's retries depend on it), connections are
kept, and one the server closed is replaced without losing the report."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from ktrdr.worker.backend_client import (
    BackendClient,
    NotRegistered,
    ReportRefused,
    StaleOperation,
)


class Api:
    def __init__(self) -> None:
        self.status = 200
        self.reply: dict[str, Any] = {"id": "op-1"}
        self.close_after_answer = False
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.connections: set[tuple[str, int]] = set()


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.bodies.append(json.loads(body))
            state.auth.append(self.headers.get("authorization"))
            state.connections.add(self.client_address)
            out = json.dumps(state.reply).encode()
            self.send_response(state.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            if state.close_after_answer:
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def report(client: BackendClient) -> None:
    client.report("op-1", attempt=1, outcome="completed", result={"x": 1.5}, error=None)


def test_reports_reuse_a_connection_and_carry_the_instance_credential(
    api: tuple[Api, str],
) -> None:
    state, url = api
    client = BackendClient(url, "w-1", "shared")
    client.credential = "instance-secret"
    for _ in range(3):
        report(client)
    client.close()
    assert len(state.connections) == 1
    assert state.auth == ["Bearer instance-secret"] * 3
    assert state.bodies[0]["worker_id"] == "w-1" and state.bodies[0]["result"] == {"x": 1.5}


def test_a_connection_the_api_closed_is_replaced(api: tuple[Api, str]) -> None:
    state, url = api
    state.close_after_answer = True
    client = BackendClient(url, "w-1", None)
    for _ in range(3):
        report(client)
    client.close()
    assert len(state.bodies) == 3 and len(state.connections) == 3


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (401, NotRegistered),
        (403, StaleOperation),
        (404, StaleOperation),
        (409, StaleOperation),
        (413, ReportRefused),
        (422, ReportRefused),
        (503, httpx.HTTPStatusError),
    ],
)
def test_each_refusal_means_what_it_did(
    api: tuple[Api, str], status: int, raised: type[Exception]
) -> None:
    state, url = api
    state.status, state.reply = status, {"detail": "the reason"}
    client = BackendClient(url, "w-1", None)
    with pytest.raises(raised) as caught:
        report(client)
    client.close()
    if raised is ReportRefused:
        assert str(caught.value) == f"{status}: the reason"


def test_an_unreachable_api_is_a_connect_error_and_nan_is_refused_before_sending() -> None:
    client = BackendClient("http://127.0.0.1:9", "w-1", None)
    with pytest.raises(httpx.ConnectError):
        report(client)
    with pytest.raises(ValueError):
        client.report("op-1", attempt=1, outcome="completed", result={"x": float("nan")},
                      error=None)  # fmt: skip
    client.close()
