"""JSON log lines carry service, trace/span ids and the operation id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from ktrdr.telemetry.context import operation_id_var
from ktrdr.telemetry.logs import configure_logging
from tests.support.stack import StackFactory, wait_for


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    httpx_level = logging.getLogger("httpx").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)


def lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.mark.usefixtures("restore_root_logger")
def test_json_line_carries_trace_and_operation_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("ktrdr-api", "INFO")
    log = logging.getLogger("ktrdr.operations")
    # A private provider (not the global one) is enough: logs read the current span.
    tracer = TracerProvider().get_tracer("test")

    with tracer.start_as_current_span("operations.create") as span:
        log.info("created %s", "op_1", extra={"operation_id": "op_1", "worker_id": "bt-1"})
        ctx = span.get_span_context()
    token = operation_id_var.set("op_2")
    try:
        log.warning("from contextvar")
        log.warning("extra wins", extra={"operation_id": "op_3"})
    finally:
        operation_id_var.reset(token)
    log.info("no operation")

    first, second, third, fourth = lines(capsys.readouterr().err)
    assert first["message"] == "created op_1"
    assert first["level"] == "INFO"
    assert first["logger"] == "ktrdr.operations"
    assert first["service"] == "ktrdr-api"
    assert first["trace_id"] == format(ctx.trace_id, "032x")
    assert first["span_id"] == format(ctx.span_id, "016x")
    assert first["operation_id"] == "op_1"
    assert first["worker_id"] == "bt-1"
    assert first["timestamp"].endswith("+00:00")
    assert second["operation_id"] == "op_2"
    assert second["trace_id"] is None
    assert third["operation_id"] == "op_3"
    assert "operation_id" not in fourth


@pytest.mark.usefixtures("restore_root_logger")
def test_exception_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("ktrdr-worker-backtesting", logging.INFO)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("ktrdr.worker").exception("job failed")
    (entry,) = lines(capsys.readouterr().err)
    assert entry["message"] == "job failed"
    assert "ValueError: boom" in entry["exception"]


@pytest.mark.usefixtures("restore_root_logger")
def test_reconfiguring_does_not_duplicate_output(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("a", "INFO")
    configure_logging("b", "INFO")
    logging.getLogger("ktrdr").info("once")
    (entry,) = lines(capsys.readouterr().err)
    assert entry["service"] == "b"


@pytest.mark.usefixtures("restore_root_logger")
def test_text_mode_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("ktrdr-cli", "INFO", json=False)
    logging.getLogger("ktrdr.cli").info("hello")
    err = capsys.readouterr().err
    assert "hello" in err
    assert "ktrdr-cli" in err
    assert not err.startswith("{")


# --------------------------------------------------- on real processes (issue 10.6)


@pytest.mark.integration
def test_every_job_log_line_carries_trace_span_and_operation_ids(
    stack_factory: StackFactory,
) -> None:
    """The API's and the worker's lines about a job lead to its trace: every line with an
    operation id also has the trace and span ids, and the trace is the operation's own."""
    stack, api = stack_factory.start(workers=1)
    ops = [
        api.start_diagnostic(steps=2, step_ms=10),
        api.start_diagnostic(steps=2, step_ms=10, fail_at_step=1),
    ]
    long = api.start_diagnostic(steps=300, step_ms=100)
    api.wait_status(long["id"], {"running"}, 20)
    assert api.http.post(f"/operations/{long['id']}/cancel").status_code == 200
    finals = {
        op["id"]: api.wait_status(op["id"], {"completed", "failed", "cancelled"}, 20)
        for op in (*ops, long)
    }
    assert sorted(op["status"] for op in finals.values()) == ["cancelled", "completed", "failed"]
    logs = stack.data_home / "logs"

    def job_lines() -> list[dict[str, Any]]:
        found = [
            entry
            for path in sorted(logs.glob("*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if line.startswith("{") and (entry := json.loads(line)).get("operation_id") in finals
        ]
        return found if sum("job ended" in e["message"] for e in found) == 3 else []

    entries = wait_for(job_lines, 10, "the workers' 'job ended' lines")
    for entry in entries:
        op = finals[entry["operation_id"]]
        assert entry["trace_id"] == op["trace_id"], entry
        assert entry["span_id"] and len(entry["span_id"]) == 16, entry
    for op_id, op in finals.items():
        messages = [e["message"] for e in entries if e["operation_id"] == op_id]
        assert f"dispatched to {op['worker_id']}" in messages, messages
        assert f"job ended: {op['status']}" in messages, messages
        assert f"operation pending -> running on {op['worker_id']}" in messages, messages
        assert any(m.startswith(f"operation running -> {op['status']}") for m in messages)
