"""Fixtures for telemetry tests: the OTLP receiver and the instrumented app as a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
REPO_ROOT = HERE.parents[1]
# `python -m pytest` (./run test) has the repo root on sys.path; a bare `pytest` does not,
# and tests.support is shared test code rather than an installed package.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.otlp_receiver import OtlpReceiver  # noqa: E402

APP_SCRIPT = HERE / "instrumented_app.py"
WORKLOAD_SCRIPT = HERE / "span_workload.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Environment for child processes without any OTLP settings of the parent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KTRDR_OTLP"))}
    # Export quickly so tests do not wait for the default 5 s batch delay.
    env.update({"OTEL_BSP_SCHEDULE_DELAY": "100", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@dataclass
class RunningApp:
    base_url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text()


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., RunningApp]]:
    """Factory: start ``instrumented_app.py`` in its own process; stopped at teardown."""
    apps: list[RunningApp] = []

    def start(*, telemetry: bool = True, **env: str) -> RunningApp:
        port = free_port()
        args = [sys.executable, str(APP_SCRIPT), "--port", str(port)]
        if not telemetry:
            args.append("--no-telemetry")
        stderr_path = tmp_path / f"app-{port}.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                args, cwd=REPO_ROOT, env=subprocess_env(**env), stderr=stderr
            )
        app = RunningApp(f"http://127.0.0.1:{port}", process, stderr_path)
        apps.append(app)
        wait_until_serving(app)
        return app

    yield start
    for app in apps:
        app.process.terminate()
        try:
            app.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait()


def wait_until_serving(app: RunningApp, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"app exited with {app.process.returncode}:\n{app.stderr()}")
        try:
            # A route the tests never count, so readiness polls add no series they look at.
            if httpx.get(f"{app.base_url}/openapi.json", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"app did not start within {timeout_s} s:\n{app.stderr()}")
