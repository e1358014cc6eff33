"""The `ktrdr` command as a user runs it: a subprocess against the real stack."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Api, StackFactory, free_port, wait_for


def ktrdr(
    *args: str, url: str | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ktrdr.cli.main", *args]
    if url:
        command += ["--url", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def stack_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    factory = StackFactory(tmp_path_factory.mktemp("cli"))
    _, api = factory.start(workers=1)
    yield api
    factory.stop_all()


@pytest.fixture
def ctrl_c_reaches_children() -> Iterator[None]:
    """Let a SIGINT sent to a child become KeyboardInterrupt, as it does in a terminal.

    A test run started in the background of a shell script inherits SIGINT as ignored,
    children inherit that, and Python then keeps ignoring it; a Python-level handler here
    is reset to the default across exec, so the child gets Python's usual Ctrl-C.
    """
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_help_does_not_load_the_telemetry_sdk() -> None:
    probe = (
        "import sys, ktrdr.cli.main; "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'ktrdr.telemetry.setup', 'fastapi', 'sqlalchemy', 'numba'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    result = ktrdr("--help")
    assert result.returncode == 0 and "ops" in result.stdout


def test_doctor_runs_a_diagnostic_and_exits_zero(stack_api: Api) -> None:
    result = ktrdr("doctor", "--steps", "3", "--step-ms", "10", url=stack_api.base_url)
    assert result.returncode == 0, result.stderr
    assert "workers online: 1" in result.stdout and "completed" in result.stdout


def test_follow_of_failing_operation_exits_one_and_shows_error(stack_api: Api) -> None:
    op = stack_api.start_diagnostic(steps=3, step_ms=10, fail_at_step=1)
    result = ktrdr("ops", "follow", op["id"], url=stack_api.base_url)
    assert result.returncode == 1
    assert "failed" in result.stdout and "diagnostic failure requested at step 1" in result.stdout


def test_list_and_show_json_are_machine_readable(stack_api: Api) -> None:
    op = stack_api.start_diagnostic(steps=1, step_ms=1, label="json-me")
    stack_api.wait_status(op["id"], {"completed"}, 15)
    listed = json.loads(ktrdr("ops", "list", "--json", url=stack_api.base_url).stdout)
    assert op["id"] in [o["id"] for o in listed["data"]] and listed["count"] >= 1
    shown = ktrdr("ops", "show", op["id"], "--json", url=stack_api.base_url)
    assert json.loads(shown.stdout)["result"]["label"] == "json-me"
    human = ktrdr("ops", "show", op["id"], url=stack_api.base_url)
    assert "completed" in human.stdout and "trace id" in human.stdout
    workers = json.loads(ktrdr("workers", "--json", url=stack_api.base_url).stdout)
    assert workers["count"] == 1


def test_cancel_from_cli(stack_api: Api) -> None:
    op = stack_api.start_diagnostic(steps=100, step_ms=100)
    result = ktrdr("ops", "cancel", op["id"], url=stack_api.base_url)
    assert result.returncode == 0 and "cancelled" in result.stdout
    assert stack_api.op(op["id"])["status"] == "cancelled"


def test_unknown_operation_is_one_line_and_exit_three(stack_api: Api) -> None:
    result = ktrdr("ops", "show", "op_nope", url=stack_api.base_url)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "error: no operation 'op_nope'" in result.stderr  # the exit code says 4xx


def test_unreachable_api_is_one_line_and_exit_four() -> None:
    result = ktrdr("ops", "list", url=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert "cannot reach the KTRDR API" in result.stderr and "ktrdr up" in result.stderr


def test_worker_refuses_a_kind_it_cannot_run() -> None:
    result = ktrdr("worker", "--kind", "astrology", "--port", str(free_port()), timeout_s=30)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "astrology" in result.stderr


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_up_starts_everything_prints_where_and_stops_all_on_ctrl_c(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    import httpx

    api_port, worker_port = free_port(), free_port()
    env = {**os.environ, "KTRDR_DATA_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    up = subprocess.Popen(
        [sys.executable, "-m", "ktrdr.cli.main", "up", "--workers", "1",
         "--api-port", str(api_port), "--worker-port", str(worker_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert up.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(up.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Ctrl-C" in line for line in lines), 60, "ktrdr up to be ready")
        assert _workers_online(f"http://127.0.0.1:{api_port}") == 1
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        reader.join(10)
        up.stdout.close()
    output = "".join(lines)
    assert up.returncode == 0, output
    assert f"http://127.0.0.1:{api_port}" in output and f"http://127.0.0.1:{worker_port}" in output
    assert output.rstrip().endswith("stopped")
    for port in (api_port, worker_port):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_while_starting_leaves_nothing_running(tmp_path: Path) -> None:
    import os
    import signal

    import httpx

    api_port, worker_port = free_port(), free_port()
    env = {**os.environ, "KTRDR_DATA_HOME": str(tmp_path)}
    up = subprocess.Popen(
        [sys.executable, "-m", "ktrdr.cli.main", "up", "--workers", "1",
         "--api-port", str(api_port), "--worker-port", str(worker_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _api_answers(f"http://127.0.0.1:{api_port}"), 60, "the API to come up")
        up.send_signal(signal.SIGINT)  # the worker is still starting
        output, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    assert up.returncode == 0, output
    for port in (api_port, worker_port):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    # A worker still importing answers no port: look for the processes themselves.
    assert _processes_with_home(tmp_path) == [], "a process of the stack outlived `ktrdr up`"


def _processes_with_home(home: Path) -> list[str]:
    """Command lines of the live processes started with KTRDR_DATA_HOME=home."""
    wanted = f"KTRDR_DATA_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                status = (proc / "status").read_text()
                if "\nState:\tZ" not in status:  # a zombie is dead, only not yet reaped
                    found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _api_answers(api_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _workers_online(api_url: str) -> int | None:
    import httpx

    try:
        return int(httpx.get(f"{api_url}/api/v1/workers", timeout=2).json()["count"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None
