"""`GET /operations/{id}?wait_s=`: answered when the operation ends, not polled for."""

from __future__ import annotations

import time

from tests.support.stack import StackFactory


def test_a_waiting_read_returns_the_final_record_as_soon_as_the_operation_ends(
    stack_factory: StackFactory,
) -> None:
    _stack, api = stack_factory.start(workers=1)
    op = api.start_diagnostic(steps=4, step_ms=150, label="waited")
    started = time.monotonic()
    response = api.http.get(f"/operations/{op['id']}", params={"wait_s": 20}, timeout=30)
    waited = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert body["result"]["label"] == "waited"
    # The job alone takes 0.6 s; answered at its end, long before the 20 s wait.
    assert 0.4 <= waited < 10, waited


def test_a_waiting_read_of_a_queued_operation_returns_its_state_after_the_wait(
    stack_factory: StackFactory,
) -> None:
    _stack, api = stack_factory.start(workers=0)
    op = api.start_diagnostic(steps=0, step_ms=0)
    started = time.monotonic()
    response = api.http.get(f"/operations/{op['id']}", params={"wait_s": 1.5}, timeout=30)
    waited = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending", "no worker: still queued"
    assert 1.4 <= waited < 8, waited
    # A finished operation, or no wait asked for: answered at once.
    cancelled = api.http.post(f"/operations/{op['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    started = time.monotonic()
    again = api.http.get(f"/operations/{op['id']}", params={"wait_s": 30}, timeout=30)
    assert again.json()["status"] == "cancelled" and time.monotonic() - started < 5


def test_a_wait_out_of_bounds_is_a_422_naming_the_parameter(stack_factory: StackFactory) -> None:
    _stack, api = stack_factory.start(workers=0)
    op = api.start_diagnostic(steps=0, step_ms=0)
    for bad in ("61", "-1", "nan", "soon"):
        response = api.http.get(f"/operations/{op['id']}", params={"wait_s": bad})
        assert response.status_code == 422, (bad, response.text)
        assert "wait_s" in response.text, response.text
