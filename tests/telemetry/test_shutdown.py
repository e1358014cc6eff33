"""Issue 18.1: spans are flushed on a graceful shutdown (SIGTERM), API and worker alike.

uvicorn re-raises the captured SIGTERM after its graceful shutdown, so a ``finally:``
around ``uvicorn.run`` and atexit hooks never run; the flush lives in the app's lifespan.
The batch delay is set to 30 s here: without that flush, the request's span would still
be queued when the process exits and would never reach the (real OTLP/HTTP) receiver.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.stack import free_port, wait_for

from .conftest import REPO_ROOT, subprocess_env

pytestmark = pytest.mark.integration


def _serve(args: list[str], receiver: OtlpReceiver, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = subprocess_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="30000",
        KTRDR_DATA_HOME=str(tmp_path),
        # The worker: an API nobody listens on, so it keeps trying to register.
        KTRDR_API_URL=f"http://127.0.0.1:{free_port()}",
    )
    with (tmp_path / f"{args[0]}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ktrdr.cli.main", *args], cwd=REPO_ROOT, env=env, stderr=log
        )


@pytest.mark.parametrize(
    ("kind", "path", "service"),
    [
        ("api", "/api/v1/workers", "ktrdr-api"),
        ("worker", "/health", "ktrdr-worker-general"),
    ],
)
def test_sigterm_delivers_the_last_requests_span(
    kind: str, path: str, service: str, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    port = free_port()
    process = _serve([kind, "--port", str(port)], otlp_receiver, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            assert process.poll() is None, (tmp_path / f"{kind}.log").read_text()
            try:
                return httpx.get(url + "/openapi.json", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, 60, f"the {kind} to serve", interval_s=0.1)
        assert httpx.get(url + path, timeout=10).status_code == 200
        assert otlp_receiver.spans() == [], "exported before the shutdown: the test proves nothing"
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    names = {(s.service_name, s.name) for s in otlp_receiver.spans()}
    assert (service, f"GET {path}") in names, sorted(names)
