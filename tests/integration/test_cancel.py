"""Cancel on real processes: a pending and a running operation, and the worker after."""

from __future__ import annotations

from tests.support.stack import StackFactory, wait_for


def test_cancel_pending_and_running_frees_the_worker(stack_factory: StackFactory) -> None:
    _, api = stack_factory.start(workers=1)
    running = api.start_diagnostic(steps=100, step_ms=100)
    api.wait_status(running["id"], {"running"}, 15)
    pending = api.start_diagnostic(steps=1, step_ms=1)
    assert api.op(pending["id"])["status"] == "pending"

    response = api.http.post(f"/operations/{pending['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    response = api.http.post(f"/operations/{running['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    worker = wait_for(
        lambda: (ws := api.workers()) and ws[0]["current_operation_id"] is None and ws[0],
        5,
        "the worker to stop at its next checkpoint and be free",
    )
    assert worker["state"] == "online"
    assert api.op(running["id"])["progress"]["percent"] < 100
    assert api.op(pending["id"])["worker_id"] is None

    after = api.start_diagnostic(steps=1, step_ms=1)
    assert api.wait_status(after["id"], {"completed"}, 10)["worker_id"] == worker["id"]
    again = api.http.post(f"/operations/{running['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled", "idempotent"
    too_late = api.http.post(f"/operations/{after['id']}/cancel")
    assert too_late.status_code == 409
    assert "is completed and cannot become cancelled" in too_late.json()["detail"]
