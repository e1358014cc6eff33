"""kill -9 of a worker, and of the backend, on real processes."""

from __future__ import annotations

import time

import pytest

from tests.support.s3 import STORES, store_options
from tests.support.stack import FAST_LIVENESS, StackFactory, wait_for

TIMEOUT_S = float(FAST_LIVENESS["KTRDR_HEARTBEAT_TIMEOUT_S"])
MARGIN_S = 4.0  # monitor poll, dispatch and the other worker's start
# uvicorn re-raises SIGTERM after its graceful shutdown, so a clean stop reads as -15.
CLEAN_SIGTERM_EXIT = {0, -15}


def _running_on(api, op_id: str) -> str:  # type: ignore[no-untyped-def]
    op = api.wait_status(op_id, {"running"}, 15)
    wait_for(lambda: api.op(op_id)["progress"]["percent"] > 0, 10, "progress from the worker")
    return str(op["worker_id"])


@pytest.mark.parametrize("store", STORES)
def test_killed_worker_operation_is_requeued_and_completes_elsewhere(
    stack_factory: StackFactory, store: str, request: pytest.FixtureRequest
) -> None:
    stack, api = stack_factory.start(workers=2, **store_options(request, store))
    op = api.start_diagnostic(steps=40, step_ms=100)
    victim_id = _running_on(api, op["id"])
    victim = next(w for w in stack.workers if victim_id.endswith(w.url.rsplit(":", 1)[1]))
    killed_at = time.monotonic()
    victim.kill()

    requeued = wait_for(
        lambda: (o := api.op(op["id"]))["attempt"] == 2 and o,
        TIMEOUT_S + MARGIN_S,
        "re-queue to the other worker",
    )
    assert time.monotonic() - killed_at <= TIMEOUT_S + MARGIN_S
    assert requeued["worker_id"] != victim_id
    done = api.wait_status(op["id"], {"completed", "failed"}, 30)
    assert done["status"] == "completed"
    assert done["result"]["worker_id"] != victim_id and done["attempt"] == 2
    everyone = api.http.get("/workers", params={"include_gone": True}).json()["data"]
    lost = next(w for w in everyone if w["id"] == victim_id)
    assert lost["state"] == "lost" and "no heartbeat" in lost["lost_reason"]


def test_killed_worker_with_attempts_exhausted_fails_naming_the_worker(
    stack_factory: StackFactory,
) -> None:
    stack, api = stack_factory.start(workers=1, env={"KTRDR_MAX_ATTEMPTS": "1"})
    op = api.start_diagnostic(steps=40, step_ms=100)
    victim_id = _running_on(api, op["id"])
    killed_at = time.monotonic()
    stack.workers[0].kill()
    failed = api.wait_status(op["id"], {"failed", "completed", "pending"}, TIMEOUT_S + MARGIN_S)
    assert time.monotonic() - killed_at <= TIMEOUT_S + MARGIN_S
    assert failed["status"] == "failed"
    assert victim_id in failed["error"] and "lost" in failed["error"]
    assert "1 of 1 attempts" in failed["error"]


@pytest.mark.parametrize("store", STORES)
def test_backend_restart_loses_nothing_and_workers_reregister(
    stack_factory: StackFactory, store: str, request: pytest.FixtureRequest
) -> None:
    stack, api = stack_factory.start(workers=1, **store_options(request, store))
    finished = api.start_diagnostic(steps=1, step_ms=1)
    api.wait_status(finished["id"], {"completed"}, 15)
    # 10 s of work: it must still be running after a restart that is slow on a loaded machine.
    long = api.start_diagnostic(steps=100, step_ms=100, label="survivor")
    _running_on(api, long["id"])
    queued = api.start_diagnostic(steps=1, step_ms=1, label="queued")
    before = {o["id"]: o["status"] for o in api.http.get("/operations").json()["data"]}
    assert before == {finished["id"]: "completed", long["id"]: "running", queued["id"]: "pending"}

    assert stack.api is not None
    stack.api.kill()
    time.sleep(1.0)  # the worker keeps computing while the backend is gone
    stack.start_api()
    after = {o["id"]: o["status"] for o in api.http.get("/operations").json()["data"]}
    assert after[finished["id"]] == "completed"
    assert after[long["id"]] == "running"
    wait_for(lambda: len(api.workers()) == 1, 10, "the worker to re-register by itself")

    done = api.wait_status(long["id"], {"completed", "failed"}, 30)
    assert done["status"] == "completed" and done["attempt"] == 1
    assert done["result"]["label"] == "survivor"
    assert api.wait_status(queued["id"], {"completed"}, 15)["result"]["label"] == "queued"


def _process_of(stack, worker_id: str):  # type: ignore[no-untyped-def]
    return next(w for w in stack.workers if worker_id.endswith(w.url.rsplit(":", 1)[1]))


def test_sigterm_interrupts_a_long_job_which_is_requeued_not_lost(
    stack_factory: StackFactory,
) -> None:
    stack, api = stack_factory.start(workers=2)  # shutdown grace: 2 s
    op = api.start_diagnostic(steps=80, step_ms=100)
    victim_id = _running_on(api, op["id"])
    assert _process_of(stack, victim_id).stop() in CLEAN_SIGTERM_EXIT
    after = api.op(op["id"])
    assert after["attempt"] == 2 or after["status"] == "pending", "handed back at once"
    done = api.wait_status(op["id"], {"completed", "failed"}, 30)
    assert done["status"] == "completed" and done["attempt"] == 2
    assert done["result"]["worker_id"] != victim_id
    everyone = api.http.get("/workers", params={"include_gone": True}).json()["data"]
    assert next(w for w in everyone if w["id"] == victim_id)["state"] == "offline"


def test_sigterm_lets_a_short_job_finish(stack_factory: StackFactory) -> None:
    stack, api = stack_factory.start(workers=1)
    op = api.start_diagnostic(steps=10, step_ms=100)
    worker_id = _running_on(api, op["id"])
    assert _process_of(stack, worker_id).stop() in CLEAN_SIGTERM_EXIT
    done = api.op(op["id"])
    assert done["status"] == "completed" and done["attempt"] == 1
    assert done["result"]["worker_id"] == worker_id
