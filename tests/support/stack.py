"""The real local stack (API + workers as processes) for integration tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ktrdr.local_stack import LocalStack

T = TypeVar("T")

# Liveness settings that keep kill -9 / restart tests short: beat every 0.3 s, lost after
# 2 s of silence, a fresh dispatch believed for 1 s.
FAST_LIVENESS = {
    "KTRDR_HEARTBEAT_INTERVAL_S": "0.3",
    "KTRDR_HEARTBEAT_TIMEOUT_S": "2",
    "KTRDR_DISPATCH_GRACE_S": "1",
    "KTRDR_DISPATCH_POLL_S": "0.2",
    "KTRDR_SHUTDOWN_GRACE_S": "2",
    "PYTHONUNBUFFERED": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.05
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


def assert_one_job_at_a_time_per_worker(ops: list[dict[str, Any]]) -> dict[str, int]:
    """From the workers' own records (diagnostic results): no worker ran two operations
    at once, and each result names the worker the backend assigned. Returns jobs/worker."""
    runs: dict[str, list[tuple[float, float]]] = {}
    for op in ops:
        # A full record (GET /operations/{id}) or a listing's summary: both carry these.
        result = op["result"] if "result" in op else op["result_summary"]
        assert result["worker_id"] == op["worker_id"]
        runs.setdefault(op["worker_id"], []).append(
            (result["started_unix_s"], result["ended_unix_s"])
        )
    for worker_id, spans in runs.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert start >= end, f"{worker_id} ran two operations at once"
    return {worker_id: len(spans) for worker_id, spans in runs.items()}


class Api:
    """Thin test client for the running API."""

    def __init__(self, base_url: str, api_key: str | None = None):
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url + "/api/v1", headers=headers, timeout=10)

    def op(self, operation_id: str) -> dict[str, Any]:
        response = self.http.get(f"/operations/{operation_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def start_diagnostic(self, **params: Any) -> dict[str, Any]:
        response = self.http.post("/diagnostics/start", json=params)
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def workers(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.http.get("/workers").json()["data"]
        return data

    def wait_status(
        self, operation_id: str, statuses: set[str], timeout_s: float
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            op = self.op(operation_id)
            seen.update(op)
            return op if op["status"] in statuses else None

        try:
            return wait_for(reached, timeout_s, f"{operation_id} to reach {sorted(statuses)}")
        except AssertionError as exc:
            # Say where it stopped (status, why, on which worker, which attempt): a bare
            # timeout on a loaded CI machine is otherwise impossible to diagnose.
            keys = ("status", "status_reason", "worker_id", "attempt", "progress")
            state = {k: seen.get(k) for k in keys}
            raise AssertionError(f"{exc}; it was {state}; workers: {self.workers()}") from None


class StackFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.stacks: list[LocalStack] = []
        self.clients: list[Api] = []

    def start(
        self,
        workers: int = 2,
        *,
        env: dict[str, str] | None = None,
        kinds: tuple[str, ...] = (),
        data_home: Path | None = None,
        api_key: str | None = None,
        worker_env: Sequence[dict[str, str]] = (),
        separate_homes: bool = False,
    ) -> tuple[LocalStack, Api]:
        """`env` reaches the API and workers (e.g. KTRDR_API_TOKEN, KTRDR_API_KEYS);
        `worker_env[i]` only the i-th worker; `separate_homes` gives each worker a data
        home of its own; `api_key` is the user key the returned client sends."""
        ports = [free_port() for _ in range(workers)]
        stack = LocalStack(
            data_home=data_home or self.tmp_path / f"home{len(self.stacks)}",
            api_port=free_port(),
            worker_ports=ports,
            worker_kinds=kinds,
            extra_env={**FAST_LIVENESS, **(env or {})},
            worker_env=dict(zip(ports, worker_env, strict=False)),
            separate_worker_homes=separate_homes,
        )
        self.stacks.append(stack)
        stack.start()
        api = Api(stack.api_url, api_key)
        self.clients.append(api)
        return stack, api

    def stop_all(self) -> None:
        """Kill everything, then fail if any process answered a 500 along the way."""
        for api in self.clients:
            api.http.close()
        for stack in self.stacks:
            for worker in stack.workers:
                worker.kill()
            if stack.api is not None:
                stack.api.kill()
        server_errors = [
            f"{log.name}: {line[:300]}"
            for stack in self.stacks
            for log in sorted((stack.data_home / "logs").glob("*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if "unhandled error" in line
        ]
        assert not server_errors, "a service answered 500:\n" + "\n".join(server_errors)
